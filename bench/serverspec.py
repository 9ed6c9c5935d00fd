"""What a server under test is: the knobs it was given and how to start it.

Split from bench/servers.py (which builds the specs and runs them) so that the
contenders' modules can build specs without importing the process handling.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

# How the bench checks a server before loading it (bench/verify.py): "bytes", the
# reference's status, body and ETag exactly; "order", the same films in the same
# order, for an implementation that renders them its own way (drf).
Verification = Literal["bytes", "order"]


@dataclass(frozen=True)
class ServerOptions:
    """The knobs a user sets on the command line; results.json records them."""

    cpus: tuple[int, ...]
    workers: int
    django_threads: int
    api_db_threads: int
    api_db_max_pending: int
    api_db_funnel: bool
    api_cache: bool
    pool_size: int
    keepalive: int
    host: str
    port_base: int
    # The same on both servers. "persistent": one connection per thread kept open
    # (DB_POOL=0, aioapi's deployed policy); "pool": Django's psycopg pool, a
    # checkout per request or bridge call (the admin's).
    db_connections: str = "persistent"


@dataclass(frozen=True)
class ServerSpec:
    """One server: how to start it, where its resources are, what it was given."""

    name: str
    title: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    port: int
    list_path: str
    detail_path: str | None  # formatted with id=
    ready_path: str
    workers: int
    settings: Mapping[str, object] = field(default_factory=dict)
    verification: Verification = "bytes"
    # What a reader of the report must know to read this server's rows (results.json).
    note: str | None = None
    people_path: str | None = None  # the people list, where the server has one

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def command(self, cpus: tuple[int, ...]) -> list[str]:
        return ["taskset", "--cpu-list", ",".join(map(str, cpus)), *self.argv]


def gunicorn_argv(
    app: str, worker_class: str, options: ServerOptions, port: int, workers: int | None = None
) -> list[str]:
    """Gunicorn flags shared by every server, stated in full."""
    return [
        sys.executable, "-m", "gunicorn", app,
        "--bind", f"{options.host}:{port}",
        "--worker-class", worker_class,
        "--workers", str(workers or options.workers),
        "--keep-alive", str(options.keepalive),
        "--backlog", "2048",
        # No recycling mid-run: a worker restart is not what is being measured.
        "--max-requests", "0",
        "--timeout", "60",
        "--graceful-timeout", "5",
        "--log-level", "warning",
        "--no-control-socket",
    ]  # fmt: skip


def shared_settings(options: ServerOptions) -> dict[str, object]:
    """What every server records in results.json: its workers, CPUs and pool size."""
    return {"workers": options.workers, "cpus": list(options.cpus), "pool": options.pool_size}


def base_env(database_url: str, latency_ms: float, options: ServerOptions) -> dict[str, str]:
    """The environment both Django-based servers read: production mode, same pool."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "DJANGO_SETTINGS_MODULE": "mymoviedb.settings",
        "DATABASE_URL": database_url,
        "DEBUG": "0",
        "SECRET_KEY": "bench-only-" + os.urandom(24).hex(),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        # With the pool, a fixed size: no connection is opened mid-run.
        "DB_POOL": "1" if options.db_connections == "pool" else "0",
        "DB_POOL_MIN_SIZE": str(options.pool_size),
        "DB_POOL_MAX_SIZE": str(options.pool_size),
        "SIMULATED_DB_LATENCY_MS": f"{latency_ms:g}",
        "LOG_LEVEL": "WARNING",
        # Routes /async/movies/ and /drf/movies/ (off by default: mymoviedb/urls.py).
        "BENCH_CONTENDERS": "1",
    }


def gthread_argv(options: ServerOptions, port: int) -> list[str]:
    """Django's WSGI app under Gunicorn's gthread workers, ``--django-threads`` each."""
    argv = gunicorn_argv("mymoviedb.wsgi:application", "gthread", options, port)
    return [*argv, "--threads", str(options.django_threads)]
