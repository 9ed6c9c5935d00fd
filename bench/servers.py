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

from bench.plan import AIOAPI, DJANGO, DJANGO_ASGI, DJANGO_SYNC, DRF, RAW_POOL
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
    asgi = django_asgi(env, options, asgi_port)
    drf = drf_spec(env, options, drf_port)
    return {spec.name: spec for spec in (django, asgi, drf, aioapi, raw, sync)}


# Uvicorn's worker for Gunicorn, in its maintained home (uvicorn.workers is
# deprecated since uvicorn 0.30 and warns); Django's deployment guide names it.
# Its "auto" loop and HTTP parser are uvloop and httptools when installed (they are:
# pyproject), what `pip install uvicorn[standard]` gives. It writes no access log
# unless Gunicorn has one (--access-logfile), which the bench never sets.
UVICORN_WORKER = "uvicorn_worker.UvicornWorker"
# psycopg_pool's own default wait for a connection. Under ASGI every request runs
# its ORM calls on a thread of its own (asgiref's ThreadSensitiveContext, one per
# request), so threads outnumber the pool and a wait is queueing, not an outage:
# the project's 2 s (sized for gthread, whose threads never outnumber the pool)
# would turn a queue at 400 connections into 503s.
ASGI_POOL_TIMEOUT_SECONDS = 30
DRF_NOTE = (
    "drf is a different, typical implementation (ModelSerializers, DRF's "
    "LimitOffsetPagination with its COUNT, prefetched genres and credits), not the "
    "same views: its rows measure that code on the same server, not the server alone; "
    "verified by the order of its films, not by bytes"
)


def django_asgi(env: dict[str, str], options: ServerOptions, port: int) -> ServerSpec:
    """The async comparison views under uvicorn workers, Django's pool on."""
    asgi_env = {
        **env,
        # Django's databases page: "When using ASGI, persistent connections should be
        # disabled. Instead, use your database backend's built-in connection pooling";
        # a thread per request would open (and leak) a connection per request.
        "DB_POOL": "1",
        "DB_POOL_TIMEOUT_SECONDS": str(ASGI_POOL_TIMEOUT_SECONDS),
        # WhiteNoise's middleware is sync only: it would send each request through
        # a thread and back. The bench serves no static file.
        "SERVE_STATIC": "0",
    }
    return ServerSpec(
        name=DJANGO_ASGI,
        title="Django async views under Gunicorn (uvicorn worker)",
        argv=tuple(gunicorn_argv("mymoviedb.asgi:application", UVICORN_WORKER, options, port)),
        env=asgi_env,
        port=port,
        list_path="/async/movies/",
        detail_path="/async/movies/{id}/",
        ready_path="/async/movies/?limit=1",
        workers=options.workers,
        settings={
            **shared_settings(options),
            "db_connections": "pool",
            "pool_timeout_s": ASGI_POOL_TIMEOUT_SECONDS,
            "threads": "one per request (asgiref's ThreadSensitiveContext)",
            "static_files": False,
        },
    )


def drf_spec(env: dict[str, str], options: ServerOptions, port: int) -> ServerSpec:
    """The DRF API under the very Gunicorn command of ``django``."""
    return ServerSpec(
        name=DRF,
        title="Django REST framework under Gunicorn (gthread)",
        argv=tuple(gthread_argv(options, port)),
        env=env,
        port=port,
        list_path="/drf/movies/",
        detail_path="/drf/movies/{id}/",
        ready_path="/drf/movies/?limit=1",
        workers=options.workers,
        settings={**shared_settings(options), "threads": options.django_threads},
        verification="order",
        note=DRF_NOTE,
    )


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
