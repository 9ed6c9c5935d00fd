"""The servers under test, and the one way every bench command starts and stops one:
Gunicorn with explicit flags, pinned with ``taskset`` to the same CPUs, one server at a
time, in its own session (stopping its process group stops every worker)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import psutil

from bench.catalogue import REPO
from bench.plan import AIOAPI, DEPLOYED, DJANGO, DJANGO_ASGI, DRF, RAW_POOL

SHARED_CATALOGUE = REPO.parent / "shared" / "data" / "wikipedia-movies.json.gz"
# deploy/gunicorn_api.conf.py's worker (it keeps Gunicorn's listen backlog); uvicorn's
# Gunicorn worker in its maintained home, as Django's deployment guide names it.
API_WORKER, UVICORN_WORKER = "aioapi.worker.DrainingWorker", "uvicorn_worker.UvicornWorker"
# psycopg_pool's wait under ASGI, where a thread per request outnumbers the pool: a
# wait there is a queue, not an outage (the project's 2 s is sized for gthread).
ASGI_POOL_TIMEOUT_SECONDS = 30
DRF_NOTE = (
    "drf is a different, typical implementation (ModelSerializers, DRF's "
    "LimitOffsetPagination with its COUNT, prefetched genres and credits), not the "
    "same views: its rows measure that code on the same server, not the server alone; "
    "verified by the order of its films, not by bytes"
)
Verification = Literal["bytes", "order"]  # bench/verify.py: bytes, or the films' order


class ServerError(RuntimeError):
    """A server did not start, or died."""


@dataclass(frozen=True)
class ServerOptions:  # the knobs a user sets on the command line; results.json records them
    cpus: tuple[int, ...]
    workers: int
    django_threads: int = 16
    api_db_threads: int = 16
    api_db_max_pending: int = 2048
    api_cache: bool = False
    pool_size: int = 16
    keepalive: int = 75
    host: str = "127.0.0.1"
    port_base: int = 20100
    # Both servers alike: "persistent", a connection per thread kept open (DB_POOL=0,
    # aioapi's deployed policy); "pool", Django's psycopg pool, a checkout per request.
    db_connections: str = "persistent"


def default_options(threads: int = 16, port_base: int = 20100) -> ServerOptions:
    """``python -m bench``'s defaults: every CPU, one worker per CPU, ``threads`` each."""
    cpus = tuple(sorted(os.sched_getaffinity(0)))
    return ServerOptions(cpus, len(cpus), threads, threads, pool_size=threads, port_base=port_base)


@dataclass(frozen=True)
class ServerSpec:  # one server: how to start it, where its resources are, what it was given
    name: str
    title: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    port: int
    list_path: str
    detail_path: str | None  # formatted with id=
    ready_path: str
    workers: int  # Gunicorn workers to wait for (0: one process)
    settings: Mapping[str, object] = field(default_factory=dict)
    verification: Verification = "bytes"
    note: str | None = None  # what a reader of its rows must know (results.json)
    people_path: str | None = None  # the people list, where the server has one

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def command(self, cpus: tuple[int, ...]) -> list[str]:
        pinned = ["taskset", "--cpu-list", ",".join(map(str, cpus))] if cpus else []
        return [*pinned, *self.argv]


def gunicorn_argv(app: str, worker_class: str, options: ServerOptions, port: int) -> list[str]:
    """Gunicorn flags shared by every server, stated in full; no recycling mid-run (a
    restart is not what is measured)."""
    return [sys.executable, "-m", "gunicorn", app, "--bind", f"{options.host}:{port}",
            "--worker-class", worker_class, "--workers", str(options.workers),
            "--keep-alive", str(options.keepalive), "--backlog", "2048", "--max-requests", "0",
            "--timeout", "60", "--graceful-timeout", "5", "--log-level", "warning",
            "--no-control-socket"]  # fmt: skip


def gthread_argv(options: ServerOptions, port: int) -> list[str]:
    """Django's WSGI app under Gunicorn's gthread workers, ``--django-threads`` each."""
    argv = gunicorn_argv("mymoviedb.wsgi:application", "gthread", options, port)
    return [*argv, "--threads", str(options.django_threads)]


def base_env(database_url: str, latency_ms: float, options: ServerOptions) -> dict[str, str]:
    """What every bench server reads: production mode, the bench settings, the same pool
    (with the pool, a fixed size: no connection is opened mid-run)."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8", "PYTHONPATH": str(REPO), "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DATABASE_URL": database_url, "DEBUG": "0", "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECRET_KEY": "bench-only-" + os.urandom(24).hex(), "SECURE_SSL_REDIRECT": "0",
        "DB_POOL": "1" if options.db_connections == "pool" else "0",
        "DB_POOL_MIN_SIZE": str(options.pool_size), "DB_POOL_MAX_SIZE": str(options.pool_size),
        "SIMULATED_DB_LATENCY_MS": f"{latency_ms:g}", "LOG_LEVEL": "WARNING",
        "API_ACCESS_LOG": "off",
    }  # fmt: skip


def server_specs(
    database_url: str, latency_ms: float, options: ServerOptions
) -> dict[str, ServerSpec]:
    """The servers of a condition, one port each from ``options.port_base``."""
    env = base_env(database_url, latency_ms, options)
    common = {"workers": options.workers, "cpus": list(options.cpus), "pool": options.pool_size}
    django_port, api_port, raw_port, deployed_port, asgi_port, drf_port = (
        options.port_base + i for i in range(6)
    )

    def spec(name: str, title: str, argv: list[str], port: int, **fields: object) -> ServerSpec:
        fields = {"env": env, "workers": options.workers, "settings": common, **fields}
        return ServerSpec(name, title, tuple(argv), port=port, **fields)  # type: ignore[arg-type]

    django_paths = {"list_path": "/movies/", "detail_path": "/movies/{id}/",
                    "ready_path": "/movies/?limit=1"}  # fmt: skip
    threads = {**common, "threads": options.django_threads}
    specs = [
        spec(DJANGO, "Django under Gunicorn (gthread)", gthread_argv(options, django_port),
             django_port, settings=threads, people_path="/movies/people/", **django_paths),
        spec(DJANGO_ASGI, "Django async views under Gunicorn (uvicorn worker)",
             gunicorn_argv("mymoviedb.asgi:application", UVICORN_WORKER, options, asgi_port),
             asgi_port, list_path="/async/movies/", detail_path="/async/movies/{id}/",
             ready_path="/async/movies/?limit=1",
             # Django's databases page: under ASGI, its pool rather than persistent
             # connections (a thread per request would open one per request). No
             # WhiteNoise: its sync-only middleware would hop every request to a thread.
             env={**env, "DB_POOL": "1", "SERVE_STATIC": "0",
                  "DB_POOL_TIMEOUT_SECONDS": str(ASGI_POOL_TIMEOUT_SECONDS)},
             settings={**common, "db_connections": "pool",
                       "pool_timeout_s": ASGI_POOL_TIMEOUT_SECONDS,
                       "threads": "one per request (asgiref's ThreadSensitiveContext)",
                       "static_files": False}),
        spec(DRF, "Django REST framework under Gunicorn (gthread)",
             gthread_argv(options, drf_port), drf_port, list_path="/drf/movies/",
             detail_path="/drf/movies/{id}/", ready_path="/drf/movies/?limit=1",
             settings=threads, verification="order", note=DRF_NOTE),
        spec(AIOAPI, "aioapi (aiohttp) under Gunicorn",
             gunicorn_argv("aioapi.gunicorn:app", API_WORKER, options, api_port), api_port,
             list_path="/api/movies", detail_path="/api/movies/{id}", ready_path="/healthz",
             people_path="/api/people",
             # The response cache answers repeated GETs without SQL and the Django views
             # have none: off unless --api-cache asks.
             env={**env, "API_DB_MAX_PENDING": str(options.api_db_max_pending),
                  "API_DB_THREADS": str(options.api_db_threads),
                  "API_CACHE": "1" if options.api_cache else "0"},
             settings={**common, "api_db_threads": options.api_db_threads,
                       "api_db_max_pending": options.api_db_max_pending,
                       "api_cache": options.api_cache}),
        spec(DEPLOYED, "aioapi as deployed (deploy/gunicorn_api.conf.py), response cache on",
             [sys.executable, "-m", "gunicorn", "--config", "deploy/gunicorn_api.conf.py"],
             deployed_port, list_path="/api/movies", detail_path="/api/movies/{id}",
             ready_path="/healthz", people_path="/api/people",
             # The deployed pool; no recycling, so that a leak cannot hide behind a restart.
             env={**{k: v for k, v in env.items() if not k.startswith("DB_POOL")},
                  "GUNICORN_API_BIND": f"{options.host}:{deployed_port}",
                  "GUNICORN_API_WORKERS": str(options.workers), "GUNICORN_API_ACCESS_LOG": "",
                  "GUNICORN_LOG_LEVEL": "warning", "GUNICORN_API_MAX_REQUESTS": "0",
                  "API_CACHE": "1", "API_AUTH_FAILURES_PER_MINUTE": "1000"},
             settings={"workers": options.workers, "cpus": list(options.cpus),
                       "config": "deploy/gunicorn_api.conf.py", "api_cache": True}),
        spec(RAW_POOL, "ceiling: psycopg AsyncConnectionPool, no ORM",
             gunicorn_argv("bench.ceiling.raw_pool:app", API_WORKER, options, raw_port),
             raw_port, list_path="/movies", detail_path=None, ready_path="/healthz",
             env={**env, "RAW_POOL_SIZE": str(options.pool_size)}),
    ]  # fmt: skip
    return {s.name: s for s in specs}


class ManagedServer:
    """A running server: its process group, its log, its processes. As a context
    manager: started and ready on entry, stopped on exit."""

    def __init__(self, spec: ServerSpec, cpus: tuple[int, ...] = (),
                 log_path: Path | None = None) -> None:  # fmt: skip
        self.spec, self.cpus = spec, cpus
        self.log_path = log_path or Path(tempfile.mkdtemp(prefix="bench-")) / f"{spec.name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.known: list[psutil.Process] = []

    def __enter__(self) -> ManagedServer:
        try:
            self.start()
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        with socket.socket() as sock:
            # As Gunicorn binds: connections of an earlier run in TIME_WAIT do not count.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", self.spec.port))
            except OSError:
                port = self.spec.port
                raise ServerError(f"port {port} is in use; pick another --port-base") from None
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(self.spec.command(self.cpus), cwd=REPO,
                                            env=dict(self.spec.env), stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)  # fmt: skip

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Until the server answers 200 and every worker is up."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise ServerError(f"{self.spec.name} exited at start-up\n{self.log_tail()}")
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

    def processes(self) -> list[psutil.Process]:
        """The Gunicorn master and its workers (or the one process)."""
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
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL the whole group now (the memory bound of bench.big_pages)."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

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
        # A worker that outlived its master is still ours (psutil checks the start time:
        # a reused pid is never signalled).
        for process in known.values():
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        self.process = None

    def leftovers(self) -> list[int]:
        """Pids of this server that still run after stop()."""
        return [p.pid for p in self.known if p.is_running() and p.status() != "zombie"]
