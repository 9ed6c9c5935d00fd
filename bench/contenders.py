"""The two contenders built on the Django stack beside the comparison views:

- ``django-asgi``: the same views, async (movies/async_views.py), as Django deploys
  ASGI: ``mymoviedb.asgi`` under Gunicorn with ``uvicorn_worker.UvicornWorker``.
- ``drf``: a typical Django REST framework API of the same films (movies/drf/),
  under the same gthread Gunicorn as ``django``; verified by order, not bytes.
"""

from __future__ import annotations

from bench.plan import DJANGO_ASGI, DRF
from bench.serverspec import (
    ServerOptions,
    ServerSpec,
    gthread_argv,
    gunicorn_argv,
    shared_settings,
)

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


def drf(env: dict[str, str], options: ServerOptions, port: int) -> ServerSpec:
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
