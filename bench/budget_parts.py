"""The parts of one list request (``?limit=10``), each timed in CPU per call.

Every part is a small named function doing one step of what both servers do for
``/movies/?limit=10`` and ``/api/movies?limit=10``, on whatever Django
configuration is active (``python -m bench.budget`` sets up the bench servers'
one; a test its own). CPU is ``time.process_time()``: every thread of this
process (the bridge's too), none of PostgreSQL's, no time spent waiting on it.
"""

from __future__ import annotations

import asyncio
import io
import statistics
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import uvloop
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from django.core.wsgi import get_wsgi_application
from django.db import connections, router

from aioapi.app import create_app
from aioapi.db import OrmBridge
from aioapi.settings import ApiSettings
from bench.budget_timing import (
    CHECKED_POOL,
    PERSISTENT,
    POOLED,
    VARIANTS,
    Batch,
    Part,
    Timing,
    cpu_per_call,
    cycled,
    list_statement,
    noop,
    on_loop,
    repeated,
    run_sql,
)
from movies import selectors
from movies.models import Movie
from movies.schemas import MovieListQuery, parse_query

# What the benchmark's list scenario asks both servers for.


def measure(number: int, repeat: int, limit: int = 10) -> list[Timing]:
    """Time every part of a list request; the catalogue needs 11+ films (a full page
    and a next link)."""
    # The selectors read where the router sends them; so do the parts made here.
    using = router.db_for_read(Movie)
    loop = uvloop.new_event_loop()
    settings = ApiSettings.from_env()
    bridge = OrmBridge(threads=settings.db_threads, max_pending=settings.db_max_pending)
    executor = ThreadPoolExecutor(max_workers=bridge.threads, thread_name_prefix="plain")
    app = loop.run_until_complete(_started_app(settings))
    try:
        timings = []
        for p in parts(using, loop, bridge, executor, app, limit):
            figures = [] if p.batch is None else cpu_per_call(p.batch, number, repeat)
            low, mid = (min(figures), statistics.median(figures)) if figures else (None, None)
            timings.append(Timing(p.key, p.title, p.what, low and round(low, 1),
                                  mid and round(mid, 1), [round(f, 1) for f in figures],
                                  p.skipped))  # fmt: skip
        return timings
    finally:
        loop.run_until_complete(app.cleanup())  # closes the app's own bridge
        executor.shutdown(wait=True)
        bridge.close()  # also closes this thread's connection and the pool
        loop.close()


async def _started_app(settings: ApiSettings) -> web.Application:
    """aioapi's app as a worker runs it (its own bridge, cache off as in the bench)."""
    app = create_app(settings)
    # As aiohttp's AppRunner starts an app: startup first (it sets app keys), then freeze.
    app.on_startup.freeze()
    await app.startup()
    app.freeze()
    return app


def parts(
    using: str,
    loop: asyncio.AbstractEventLoop,
    bridge: OrmBridge,
    executor: ThreadPoolExecutor,
    app: web.Application,
    limit: int = 10,
) -> list[Part]:
    """Every part, in the order a request meets them."""
    query = MovieListQuery.model_validate({"limit": limit})
    pairs = [("limit", str(limit))]
    connection = connections[using]
    page = selectors.list_movies(query)
    # The statement list_movies runs for this query, taken from the selector itself.
    selected = list_statement(query)
    statement = selected.statement
    statement_params = statement.params({}, connection)
    variants = {alias for alias in VARIANTS if alias in connections}
    with warnings.catch_warnings():
        # WhiteNoise notes a missing STATIC_ROOT (no collectstatic here): irrelevant.
        warnings.filterwarnings("ignore", "No directory at", UserWarning)
        wsgi: Any = get_wsgi_application()
    environ = _wsgi_environ("/movies/", f"limit={limit}")

    def select_one(alias: str = using) -> Callable[[], None]:
        def run() -> None:
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()

        return run

    def list_movies() -> None:
        selectors.list_movies(query)

    def compile_list() -> None:
        selected.compile(using)

    def django_view() -> None:
        response = wsgi(dict(environ, **{"wsgi.input": io.BytesIO()}), _start_response)
        b"".join(response)
        response.close()  # request_finished: the connection goes back to the pool

    async def bridged_list() -> None:
        await bridge.run(selectors.list_movies, query)

    async def bridged_noop() -> None:
        await bridge.run(noop)

    async def plain_hop() -> None:
        await loop.run_in_executor(executor, noop)

    # One request object, made once: make_mocked_request's Mock transport costs far
    # more than the work measured, and HTTP parsing is not part of this figure.
    request = make_mocked_request("GET", f"/api/movies?limit={limit}", app=app)

    async def aioapi_app() -> None:
        response = await app._handle(request)
        assert response.status == 200, response.status

    def part(key: str, title: str, what: str, batch: Batch, skipped: str | None = None) -> Part:
        return Part(key, title, what, None if skipped else batch, skipped)

    def variant(alias: str) -> str | None:
        added = alias in variants
        return None if added else f"no {alias} alias (bench.budget adds it on PostgreSQL)"

    return [
        part("parse", f"parse ?limit={limit}",
             "parse_query(MovieListQuery, pairs): validation, defaults (cursor decoded here)",
             repeated(lambda: parse_query(MovieListQuery, pairs))),
        part("orm_build_compile", "ORM: build and compile (a new shape only)",
             "list_movies' QuerySet built and compiled to SQL: what every request paid "
             "before movies.prepared, now once per shape and alias",
             repeated(compile_list)),
        part("list_sql", "the compiled statement, raw",
             "the list's SQL with its parameters on a Django cursor, rows zipped into "
             "dicts: the floor of list_movies",
             repeated(lambda: run_sql(using, statement.sql, statement_params))),
        part("list_movies_held", "selectors.list_movies, held connection",
             "the whole selector (statement lookup, binding, one query, rows, cursors) on a "
             "connection kept open",
             repeated(list_movies)),
        part("list_movies_cycled", "selectors.list_movies, the servers' connection policy",
             "the same between two close_old_connections(), as Django's request signals and "
             "channels' database_sync_to_async do (the settings' policy: DB_POOL=0 keeps a "
             "connection per thread, DB_POOL=1 checks one out of the pool per call)",
             repeated(cycled(list_movies))),
        part("select1_held", "SELECT 1, held connection",
             "one round trip on a Django cursor: the floor of any query",
             repeated(select_one())),
        part("select1_pool", "SELECT 1, pool checkout",
             "the same with a checkout from Django's pool and its return around it (DB_POOL=1)",
             repeated(cycled(select_one(POOLED))), variant(POOLED)),
        part("select1_pool_checked", "SELECT 1, pool checkout with its check",
             "the same with DB_POOL_CHECK=1: the pool's round trip at every checkout",
             repeated(cycled(select_one(CHECKED_POOL))), variant(CHECKED_POOL)),
        part("select1_persistent", "SELECT 1, persistent connection",
             "the same on a connection per thread kept open (DB_POOL=0, no health check), "
             "between the same close_old_connections() calls",
             repeated(cycled(select_one(PERSISTENT))), variant(PERSISTENT)),
        part("plain_hop", "plain run_in_executor hop",
             "await loop.run_in_executor(pool, noop) on uvloop: a bare thread hop",
             on_loop(loop, plain_hop)),
        part("bridge_hop", "OrmBridge.run(noop) hop",
             "aioapi's bridge (channels' database_sync_to_async, close_old_connections) "
             "on uvloop, with nothing to do",
             on_loop(loop, bridged_noop)),
        part("bridge_list_movies", "OrmBridge.run(list_movies)",
             "what aioapi's handler awaits for the page, without HTTP: hop, connection cycle, "
             "selector",
             on_loop(loop, bridged_list)),
        part("render", "Page.body",
             "the response body both servers send: the page and its links as orjson",
             repeated(lambda: page.body(query))),
        part("aioapi_app", "aioapi: the app's whole path, no HTTP",
             "app._handle(request): routing, middlewares, @cached_query's parse, bridge "
             "hop, connection cycle, selector, render, response (its own bridge); no HTTP "
             "parsing",
             on_loop(loop, aioapi_app)),
        part("django_view", "Django: the WSGI app's whole path, no HTTP",
             f"the WSGI handler for /movies/?limit={limit}: request, middlewares, signals (the "
             "connection cycle), view, selector, render, response",
             repeated(django_view)),
    ]  # fmt: skip


def _wsgi_environ(path: str, query_string: str) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": query_string,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "HTTP_HOST": "127.0.0.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(),
    }


def _start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
    assert status.startswith("200"), status
