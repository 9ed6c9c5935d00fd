"""The servers under test: their exact commands, and starting and stopping them.

Every server runs under Gunicorn with explicit command-line flags (no config
file), pinned with ``taskset`` to the same CPUs, one server at a time. Each is
started in its own session so that stopping its process group stops every
worker, and a group that ignores SIGTERM is killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

from bench import contenders
from bench.plan import AIOAPI, DJANGO, DJANGO_SYNC, RAW_POOL
from bench.serverspec import (
    ServerOptions,
    ServerSpec,
    base_env,
    gthread_argv,
    gunicorn_argv,
    shared_settings,
)

REPO = Path(__file__).resolve().parent.parent
# The worker deploy/gunicorn_api.conf.py runs: aiohttp's asyncio worker that keeps
# Gunicorn's listen backlog (aiohttp's own resets it to 128) and drains on stop.
# The raw-pool ceiling runs on it too, so no aiohttp server has the smaller backlog.
API_WORKER = "aioapi.worker.DrainingWorker"


class ServerError(RuntimeError):
    """A server did not start, or died."""


def server_specs(
    database_url: str, latency_ms: float, options: ServerOptions
) -> dict[str, ServerSpec]:
    """The servers of a condition: Django, the same views async under uvicorn, a typical
    DRF API, aioapi, the raw psycopg ceiling, and the optional classic Django (sync
    workers, 2 x cores + 1); one port each from ``options.port_base``."""
    env = base_env(database_url, latency_ms, options)
    common = shared_settings(options)
    ports = (options.port_base + i for i in range(6))
    django_port, api_port, raw_port, sync_port, asgi_port, drf_port = ports
    django = ServerSpec(
        name=DJANGO,
        title="Django under Gunicorn (gthread)",
        argv=tuple(gthread_argv(options, django_port)),
        env=env,
        port=django_port,
        list_path="/movies/",
        detail_path="/movies/{id}/",
        ready_path="/movies/?limit=1",
        workers=options.workers,
        settings={**common, "threads": options.django_threads},
        people_path="/movies/people/",
    )
    api_env = {
        **env,
        "API_DB_THREADS": "1" if options.api_db_funnel else str(options.api_db_threads),
        "API_DB_MAX_PENDING": str(options.api_db_max_pending),
        # aioapi's response cache answers repeated GETs without SQL; the Django views
        # have none, so the comparison runs without it unless --api-cache asks.
        "API_CACHE": "1" if options.api_cache else "0",
        "API_ACCESS_LOG": "off",
    }
    aioapi = ServerSpec(
        name=AIOAPI,
        title="aioapi (aiohttp) under Gunicorn",
        argv=tuple(gunicorn_argv("aioapi.gunicorn:app", API_WORKER, options, api_port)),
        env=api_env,
        port=api_port,
        list_path="/api/movies",
        detail_path="/api/movies/{id}",
        ready_path="/healthz",
        workers=options.workers,
        people_path="/api/people",
        settings={
            **common,
            "api_db_threads": options.api_db_threads,
            "api_db_max_pending": options.api_db_max_pending,
            "api_db_funnel": options.api_db_funnel,
            "api_cache": options.api_cache,
        },
    )
    raw = ServerSpec(
        name=RAW_POOL,
        title="ceiling: psycopg AsyncConnectionPool, no ORM",
        argv=tuple(gunicorn_argv("bench.ceiling.raw_pool:app", API_WORKER, options, raw_port)),
        env={**env, "RAW_POOL_SIZE": str(options.pool_size)},
        port=raw_port,
        list_path="/movies",
        detail_path=None,
        ready_path="/healthz",
        workers=options.workers,
        settings=common,
    )
    sync_workers = 2 * len(options.cpus) + 1
    sync = ServerSpec(
        name=DJANGO_SYNC,
        title="Django under Gunicorn (sync, 2 x cores + 1)",
        argv=tuple(
            gunicorn_argv("mymoviedb.wsgi:application", "sync", options, sync_port, sync_workers)
        ),
        # One request at a time per process: one pooled connection is all it can use.
        env={**env, "DB_POOL_MIN_SIZE": "1", "DB_POOL_MAX_SIZE": "1"},
        port=sync_port,
        list_path=django.list_path,
        detail_path=django.detail_path,
        ready_path=django.ready_path,
        workers=sync_workers,
        settings={"workers": sync_workers, "cpus": list(options.cpus), "pool": 1},
    )
    asgi = contenders.django_asgi(env, options, asgi_port)
    drf = contenders.drf(env, options, drf_port)
    return {spec.name: spec for spec in (django, asgi, drf, aioapi, raw, sync)}


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        # As Gunicorn binds: connections of an earlier run in TIME_WAIT do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class ManagedServer:
    """A running server: its process group, its log, its processes."""

    def __init__(self, spec: ServerSpec, cpus: tuple[int, ...], log_path: Path) -> None:
        self.spec = spec
        self.cpus = cpus
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.known: list[psutil.Process] = []

    def start(self) -> None:
        if not port_is_free(self.spec.port):
            raise ServerError(f"port {self.spec.port} is in use; pick another --port-base")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.spec.command(self.cpus),
                cwd=REPO,
                env=dict(self.spec.env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Wait until the server answers 200 and every worker is up."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            if self._answers() and len(self.workers()) >= self.spec.workers:
                self.known = self.processes()
                return
            time.sleep(0.3)
        raise ServerError(
            f"{self.spec.name} was not ready after {timeout:.0f} s\n{self.log_tail()}"
        )

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.spec.url(self.spec.ready_path), timeout=5) as reply:
                return bool(reply.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def _check_alive(self) -> None:
        if self.process is None or self.process.poll() is not None:
            raise ServerError(f"{self.spec.name} exited at start-up\n{self.log_tail()}")

    def processes(self) -> list[psutil.Process]:
        """The Gunicorn master and its workers."""
        if self.process is None:
            return []
        try:
            master = psutil.Process(self.process.pid)
            return [master, *master.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def workers(self) -> list[psutil.Process]:
        return self.processes()[1:]

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the process group, then SIGKILL whatever is left of it."""
        if self.process is None:
            return
        known = {p.pid: p for p in [*self.known, *self.processes()]}
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
        # A worker that outlived its master (it should not) is still ours; psutil
        # checks the start time, so a reused pid is never signalled.
        for process in known.values():
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        self.process = None

    def leftovers(self) -> list[int]:
        """Pids of this server that still run after stop()."""
        return [p.pid for p in self.known if p.is_running() and p.status() != "zombie"]
