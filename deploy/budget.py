"""The database connection budget, checked when a Gunicorn config loads.

Both servers size themselves from the environment (the same ``.env``), so each
can count the other's connections as well as its own; the defaults of the
worker and thread counts live here, once, and the configs read them from here.
deploy/README.md ("The connection budget") gives the arithmetic:

    allowed = DB_MAX_CONNECTIONS - DB_SUPERUSER_RESERVED_CONNECTIONS - DB_RESERVED_CONNECTIONS
    API     = API_REPLICAS x API workers x (API_DB_THREADS + 1 LISTEN)
    admin   = admin workers x min(threads, DB_POOL_MAX_SIZE)
    API + admin <= allowed, or the server refuses to start, naming the numbers.

Behind PgBouncer (``DB_DISABLE_SERVER_SIDE_CURSORS=1``) the threads' connections
go to PgBouncer; PostgreSQL sees its ``PGBOUNCER_DEFAULT_POOL_SIZE`` server
connections, and per API worker one LISTEN and its exports (``direct``).
Only for PostgreSQL: without a ``postgres`` ``DATABASE_URL`` there is nothing to count.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import environ

# PostgreSQL's defaults: max_connections, superuser_reserved_connections.
MAX_CONNECTIONS = 100
SUPERUSER_RESERVED = 3
# Left for migrations, manage.py commands, psql and a standby's replication.
RESERVED = 5
ADMIN_THREADS = 4
API_DB_THREADS = 8  # aioapi.settings.ApiSettings.db_threads (a test checks they agree)
DB_POOL_MAX_SIZE = 20  # mymoviedb/settings.py's default (a test checks they agree)
PGBOUNCER_POOL_SIZE = 20  # compose.yml's PGBOUNCER_DEFAULT_POOL_SIZE default


def cores() -> int:
    """Cores this process may run on (``os.sched_getaffinity`` honours CPU pinning)."""
    return len(os.sched_getaffinity(0))


def api_workers(env: environ.Env) -> int:
    """One event loop per core (deploy/gunicorn_api.conf.py explains)."""
    return env.int("GUNICORN_API_WORKERS", default=cores())


def admin_workers(env: environ.Env) -> int:
    """Gunicorn's rule for blocking workers: (2 x cores) + 1."""
    return env.int("GUNICORN_ADMIN_WORKERS", default=2 * cores() + 1)


def admin_threads(env: environ.Env) -> int:
    return env.int("GUNICORN_ADMIN_THREADS", default=ADMIN_THREADS)


@dataclass(frozen=True)
class Share:
    """One server's connections to PostgreSQL, and how they add up."""

    connections: int
    arithmetic: str


def api_share(env: environ.Env, behind_pgbouncer: bool) -> Share:
    # compose.yml passes its API_REPLICAS (2 by default) to both servers; a server
    # started otherwise is one replica. Read plainly: .env.example shows compose's.
    replicas = int(env.ENVIRON.get("API_REPLICAS") or 1)
    workers = api_workers(env)
    threads = env.int("API_DB_THREADS", default=API_DB_THREADS)
    if env.bool("DB_POOL", default=False):  # the API's default is one per thread
        threads = min(threads, env.int("DB_POOL_MAX_SIZE", default=DB_POOL_MAX_SIZE))
    if behind_pgbouncer:
        exports = env.int("API_EXPORT_MAX_CONCURRENT", default=max(1, threads // 4))
        per_worker, label = 1 + exports, f"(1 LISTEN + {exports} exports)"
    else:
        per_worker, label = threads + 1, f"({threads} threads + 1 LISTEN)"
    return Share(
        replicas * workers * per_worker,
        f"API {replicas} replicas x {workers} workers x {label} = "
        f"{replicas * workers * per_worker}",
    )


def admin_share(env: environ.Env, behind_pgbouncer: bool) -> Share:
    workers, threads = admin_workers(env), admin_threads(env)
    if env.bool("DB_POOL", default=True):
        threads = min(threads, env.int("DB_POOL_MAX_SIZE", default=DB_POOL_MAX_SIZE))
    if behind_pgbouncer:
        exports = env.int("EXPORT_MAX_CONCURRENT", default=max(1, threads // 4))
        per_worker, label = exports, f"{exports} exports"
    else:
        per_worker, label = threads, f"{threads} threads"
    return Share(
        workers * per_worker, f"admin {workers} workers x {label} = {workers * per_worker}"
    )


def over_budget(environ_: Mapping[str, str]) -> str | None:
    """Why this deployment needs more connections than PostgreSQL allows, or None."""
    url = environ_.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://", "pgsql://")):
        return None
    env = environ.Env()
    env.ENVIRON = dict(environ_)
    behind_pgbouncer = env.bool("DB_DISABLE_SERVER_SIDE_CURSORS", default=False)
    max_connections = env.int("DB_MAX_CONNECTIONS", default=MAX_CONNECTIONS)
    superuser = env.int("DB_SUPERUSER_RESERVED_CONNECTIONS", default=SUPERUSER_RESERVED)
    reserved = env.int("DB_RESERVED_CONNECTIONS", default=RESERVED)
    allowed = max_connections - superuser - reserved
    shares = [api_share(env, behind_pgbouncer), admin_share(env, behind_pgbouncer)]
    if behind_pgbouncer:
        pool = env.int("PGBOUNCER_DEFAULT_POOL_SIZE", default=PGBOUNCER_POOL_SIZE)
        shares.append(Share(pool, f"PgBouncer's server pool {pool}"))
    needed = sum(share.connections for share in shares)
    if needed <= allowed:
        return None
    return (
        "The database connection budget is exceeded: "
        + " + ".join(share.arithmetic for share in shares)
        + f" = {needed} connections, but PostgreSQL allows {max_connections} "
        f"(DB_MAX_CONNECTIONS) - {superuser} (DB_SUPERUSER_RESERVED_CONNECTIONS) - "
        f"{reserved} (DB_RESERVED_CONNECTIONS) = {allowed}. Lower the workers or threads "
        "(GUNICORN_API_WORKERS, API_DB_THREADS, API_REPLICAS, GUNICORN_ADMIN_WORKERS, "
        "GUNICORN_ADMIN_THREADS), raise max_connections with DB_MAX_CONNECTIONS, or put "
        "PgBouncer in front (deploy/README.md, 'The connection budget')."
    )


def refuse_over_budget(environ_: Mapping[str, str] = os.environ) -> None:
    """Stop start-up with the numbers when the deployment is over budget."""
    reason = over_budget(environ_)
    if reason is not None:
        raise SystemExit(reason)
