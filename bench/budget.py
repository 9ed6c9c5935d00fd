"""``python -m bench.budget``: where the CPU of one list request goes, in one process.

Both servers answer ``?limit=N`` with the same selector and renderer. This times each
step of that work, CPU per call (``time.process_time()``: every thread of this process,
none of PostgreSQL's), pinned to one CPU and configured as ``python -m bench`` configures
aioapi; the list's statement is captured from the selector (bench.sql), never written
here. Writes budget.json and budget.md to ``bench/results/<UTC date>-<label>/``; exit
status 2 when the database holds fewer than limit + 1 films.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import sys
import time
import warnings
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import scaffold
from bench.catalogue import DEFAULT_DATABASE_URL
from bench.plan import AIOAPI
from bench.records import HIDDEN, LEFT_OUT
from bench.scaffold import RESULTS, fmt, table
from bench.servers import default_options, server_specs
from bench.sql import Captured, captured

Batch = Callable[[int], None]  # runs a part n times
# Connection policies timed beside the servers' own, as aliases added on PostgreSQL
# before the first connection: Django's pool, the same with its checkout check, and a
# persistent connection per thread without a health check.
POOLED, CHECKED_POOL, PERSISTENT = "budget_pool", "budget_pool_checked", "budget_persistent"
SHARED = [(1, "parse"), (1, "list_movies_cycled"), (1, "render")]
# (figure, signed parts, how): sums of measured minima. A difference of two large parts
# carries both parts' noise, so the connection policies are compared on SELECT 1.
DERIVED: list[tuple[str, list[tuple[int, str]], str]] = [
    ("list_movies over its raw statement", [(1, "list_movies_held"), (-1, "list_sql")],
     "statement lookup, binding, converters, cursors"),
    ("the servers' connection cycle", [(1, "list_movies_cycled"), (-1, "list_movies_held")],
     "the settings' policy, DB_POOL above"),
    ("pool checkout and return", [(1, "select1_pool"), (-1, "select1_held")], "DB_POOL=1"),
    ("the same with the checkout check", [(1, "select1_pool_checked"), (-1, "select1_held")],
     "DB_POOL=1, DB_POOL_CHECK=1"),
    ("persistent connection per thread", [(1, "select1_persistent"), (-1, "select1_held")],
     "DB_POOL=0, no health check"),
    ("in-process work both servers share", SHARED, "parse + list_movies_cycled + render"),
    ("aioapi's whole in-process path", [(1, "aioapi_app")], "all but aiohttp's HTTP parsing"),
    ("aioapi outside the shared work", [(1, "aioapi_app"), *((-1, k) for _, k in SHARED)],
     "routing, middlewares, bridge hop, response"),
    ("Django's whole in-process path", [(1, "django_view")], "all but Gunicorn's HTTP parsing"),
    ("Django outside the shared work", [(1, "django_view"), *((-1, k) for _, k in SHARED)],
     "request, middlewares, signals, response"),
]  # fmt: skip


def cpu_per_call(batch: Batch, number: int, repeat: int) -> list[float]:
    """µs of process CPU per call, one figure per repeat, after one untimed batch
    (connections, pools and caches warm up there); the garbage collector stays on."""
    batch(min(number, 20))
    figures = []
    for _ in range(repeat):
        started = time.process_time()
        batch(number)
        figures.append((time.process_time() - started) * 1e6 / number)
    return figures


def repeated(call: Callable[[], object]) -> Batch:
    def batch(n: int) -> None:
        for _ in range(n):
            call()

    return batch


def on_loop(loop: asyncio.AbstractEventLoop, call: Callable[[], Awaitable[None]]) -> Batch:
    """Await ``call`` n times in one coroutine: one run_until_complete per batch."""

    async def many(n: int) -> None:
        for _ in range(n):
            await call()

    return lambda n: loop.run_until_complete(many(n))


def connection_variants(default: dict[str, Any], pool_size: int) -> dict[str, dict[str, Any]]:
    """Copies of ``default`` for POOLED, CHECKED_POOL and PERSISTENT; none off PostgreSQL."""
    if not default["ENGINE"].endswith("postgresql"):
        return {}
    options = {k: v for k, v in default.get("OPTIONS", {}).items() if k != "pool"}
    size = {"min_size": pool_size, "max_size": pool_size, "timeout": 2.0}
    pool = default.get("OPTIONS", {}).get("pool") or size
    pooled = {**default, "OPTIONS": {**options, "pool": pool}, "CONN_MAX_AGE": 0,
              "CONN_HEALTH_CHECKS": False}  # fmt: skip
    return {
        POOLED: pooled,
        CHECKED_POOL: {**pooled, "CONN_HEALTH_CHECKS": True},
        PERSISTENT: {**default, "OPTIONS": options, "CONN_MAX_AGE": None,
                     "CONN_HEALTH_CHECKS": False},
    }  # fmt: skip


def list_statement(query: Any, using: str) -> tuple[str, list[Any]]:
    """The one statement ``selectors.list_movies(query)`` sends, and its parameters."""
    from movies import selectors

    statements: list[Captured] = []
    with captured(statements, using):
        selectors.list_movies(query)
    [(sql, params, _)] = statements  # one statement: the page with its genre names
    return sql, params


def measure(number: int, repeat: int, limit: int = 10) -> list[dict[str, Any]]:
    """CPU µs per call of every part of a list request, in the order a request meets
    them, on the active Django configuration: the least and the median of the repeats,
    or why a part was not measured (``skipped``). The catalogue needs limit + 1 films."""
    import uvloop
    from aiohttp.test_utils import make_mocked_request
    from django.core.wsgi import get_wsgi_application
    from django.db import close_old_connections, connections, router

    from aioapi.app import create_app
    from aioapi.db import OrmBridge
    from aioapi.settings import ApiSettings
    from movies import prepared, selectors
    from movies.models import Movie
    from movies.schemas import MovieListQuery, parse_query

    using = router.db_for_read(Movie)  # where the selectors read
    loop = uvloop.new_event_loop()
    settings = ApiSettings.from_env()
    bridge = OrmBridge(threads=settings.db_threads, max_pending=settings.db_max_pending)
    executor = ThreadPoolExecutor(max_workers=bridge.threads, thread_name_prefix="plain")
    app = create_app(settings)  # its own bridge; started as aiohttp's AppRunner does
    app.on_startup.freeze()
    loop.run_until_complete(app.startup())
    app.freeze()
    query, pairs = MovieListQuery.model_validate({"limit": limit}), [("limit", str(limit))]
    page, (list_sql_text, list_params) = selectors.list_movies(query), list_statement(query, using)
    with warnings.catch_warnings():  # WhiteNoise: no STATIC_ROOT here, irrelevant
        warnings.filterwarnings("ignore", "No directory at", UserWarning)
        wsgi: Any = get_wsgi_application()
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/movies/", "QUERY_STRING": f"limit={limit}",
               "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "HTTP_HOST": "127.0.0.1",
               "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
               "wsgi.errors": io.StringIO()}  # fmt: skip
    # One request object, made once: make_mocked_request's Mock transport costs far
    # more than the work measured, and HTTP parsing is not part of this figure.
    request = make_mocked_request("GET", f"/api/movies?limit={limit}", app=app)

    def cycled(call: Callable[[], None]) -> Callable[[], None]:
        """Between two close_old_connections(), as Django's request signals and
        channels' database_sync_to_async do: a connection per call."""

        def run() -> None:
            close_old_connections()
            call()
            close_old_connections()

        return run

    def select_one(alias: str = using) -> Callable[[], None]:
        def run() -> None:
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()

        return run

    def list_sql() -> None:
        with prepared.statement_cursor(connections[using]) as cursor:
            cursor.execute(list_sql_text, list_params)
            names = [column[0] for column in cursor.description]
            [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def list_movies() -> None:
        selectors.list_movies(query)

    def django_view() -> None:
        response = wsgi(dict(environ, **{"wsgi.input": io.BytesIO()}), start_response)
        b"".join(response)
        response.close()  # request_finished: the connection goes back to the pool

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        assert status.startswith("200"), status

    async def aioapi_app() -> None:
        response = await app._handle(request)
        assert response.status == 200, response.status

    async def bridged_list() -> None:
        await bridge.run(selectors.list_movies, query)

    async def bridged_noop() -> None:
        await bridge.run(noop)

    async def plain_hop() -> None:
        await loop.run_in_executor(executor, noop)

    def variant(alias: str) -> str | None:
        added = alias in connections
        return None if added else f"no {alias} alias (bench.budget adds it on PostgreSQL)"

    parts: list[tuple[str, str, str, Batch, str | None]] = [
        ("parse", f"parse ?limit={limit}",
         "parse_query(MovieListQuery, pairs): validation, defaults (cursor decoded here)",
         repeated(lambda: parse_query(MovieListQuery, pairs)), None),
        ("list_sql", "the compiled statement, raw",
         "the list's SQL with its parameters on the statement cursor, rows zipped into "
         "dicts: the floor of list_movies", repeated(list_sql), None),
        ("list_movies_held", "selectors.list_movies, held connection",
         "the whole selector (statement lookup, binding, one query, rows, cursors) on a "
         "connection kept open", repeated(list_movies), None),
        ("list_movies_cycled", "selectors.list_movies, the servers' connection policy",
         "the same between two close_old_connections() (DB_POOL=0 keeps a connection per "
         "thread, DB_POOL=1 checks one out of the pool per call)",
         repeated(cycled(list_movies)), None),
        ("select1_held", "SELECT 1, held connection",
         "one round trip on a Django cursor: the floor of any query",
         repeated(select_one()), None),
        ("select1_pool", "SELECT 1, pool checkout",
         "the same with a checkout from Django's pool and its return around it (DB_POOL=1)",
         repeated(cycled(select_one(POOLED))), variant(POOLED)),
        ("select1_pool_checked", "SELECT 1, pool checkout with its check",
         "the same with DB_POOL_CHECK=1: the pool's round trip at every checkout",
         repeated(cycled(select_one(CHECKED_POOL))), variant(CHECKED_POOL)),
        ("select1_persistent", "SELECT 1, persistent connection",
         "the same on a connection per thread kept open (DB_POOL=0, no health check)",
         repeated(cycled(select_one(PERSISTENT))), variant(PERSISTENT)),
        ("plain_hop", "plain run_in_executor hop",
         "await loop.run_in_executor(pool, noop) on uvloop: a bare thread hop",
         on_loop(loop, plain_hop), None),
        ("bridge_hop", "OrmBridge.run(noop) hop",
         "aioapi's bridge (database_sync_to_async, close_old_connections), nothing to do",
         on_loop(loop, bridged_noop), None),
        ("bridge_list_movies", "OrmBridge.run(list_movies)",
         "what aioapi's handler awaits for the page: hop, connection cycle, selector",
         on_loop(loop, bridged_list), None),
        ("render", "Page.body",
         "the response body both servers send: the page and its links as orjson",
         repeated(lambda: page.body(query)), None),
        ("aioapi_app", "aioapi: the app's whole path, no HTTP",
         "app._handle(request): routing, middlewares, parse, bridge hop, connection "
         "cycle, selector, render, response; no HTTP parsing", on_loop(loop, aioapi_app), None),
        ("django_view", "Django: the WSGI app's whole path, no HTTP",
         f"the WSGI handler for /movies/?limit={limit}: request, middlewares, signals (the "
         "connection cycle), view, selector, render, response", repeated(django_view), None),
    ]  # fmt: skip
    try:
        timings = []
        for key, title, what, batch, skipped in parts:
            figures = [] if skipped else cpu_per_call(batch, number, repeat)
            low, mid = (min(figures), statistics.median(figures)) if figures else (None, None)
            low, mid = low and round(low, 1), mid and round(mid, 1)
            timings.append({"key": key, "title": title, "what": what, "min_us": low,
                            "median_us": mid, "repeats_us": [round(f, 1) for f in figures],
                            "skipped": skipped})  # fmt: skip
        return timings
    finally:
        loop.run_until_complete(app.cleanup())  # closes the app's own bridge
        executor.shutdown(wait=True)
        bridge.close()  # also closes this thread's connection and the pool
        loop.close()


def noop() -> None:
    """Nothing: what a thread hop costs on its own."""


def derived(timings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Figures computed from the minima (None when a part was not measured here)."""
    us = {t["key"]: t["min_us"] for t in timings}
    figures = []
    for figure, terms, how in DERIVED:
        known = [sign * us[key] for sign, key in terms if us.get(key) is not None]
        value = round(sum(known), 1) if len(known) == len(terms) else None
        parts = {key: sign for sign, key in terms}
        figures.append({"figure": figure, "us": value, "parts": parts, "how": how})
    return figures


def markdown(doc: dict[str, Any]) -> str:
    """budget.md: the facts, one row per part, then the derived figures."""
    held = next((t["min_us"] for t in doc["timings"] if t["key"] == "list_movies_held"), None)

    def share(value: float | None) -> str:
        return fmt(100 * value / held, 0, " %") if value is not None and held else "–"

    db = doc["database"]
    lines = [
        *scaffold.header(f"CPU budget of one list request (`?limit={doc.get('limit', 10)}`)", doc),
        f"Database: {db['version']}, `{db['name']}`, {db['films']:,} films; this process "
        f"pinned to CPU {doc['cpu']}; settings: "
        + ", ".join(f"{k}={v}" for k, v in doc["settings"].items()),
        "",
        "CPU of this process (`time.process_time()`: all its threads, not PostgreSQL's) per "
        f"call, {doc['number']} calls × {doc['repeat']} repeats after one warm-up batch; the "
        "least and the median of the repeats.",
        "",
        *table([
            ("part", lambda t: f"`{t['key']}` {t['title']}"),
            ("min µs", lambda t: fmt(t["min_us"])),
            ("median µs", lambda t: fmt(t["median_us"])),
            ("of list_movies", lambda t: share(t["min_us"])),
            ("what it is", lambda t: t["what"] + (f" (not measured: {t['skipped']})"
                                                   if t["skipped"] else "")),
        ], doc["timings"]),
        "## Derived (from the minima)",
        "",
        *table([
            ("figure", lambda d: d["figure"]),
            ("µs", lambda d: fmt(d["us"])),
            ("of list_movies", lambda d: share(d["us"])),
            ("how", lambda d: " ".join(f"{'+-'[s < 0]} {k}" for k, s in d["parts"].items())
             + f" ({d['how']})"),
        ], doc["derived"]),
    ]  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Pin, configure Django as the bench servers, refuse a small catalogue, measure."""
    p = argparse.ArgumentParser(prog="python -m bench.budget", description=__doc__)
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    p.add_argument("--database-url", default=url, help="a loaded catalogue, only read")
    p.add_argument("--number", type=int, default=500, help="calls per repeat (%(default)s)")
    p.add_argument("--repeat", type=int, default=7, help="min and median kept (%(default)s)")
    p.add_argument("--cpu", type=int, default=0, help="the CPU this process runs on")
    p.add_argument("--limit", type=int, default=10, help="films per page: list 10, list 100")
    p.add_argument("--label", default="budget", help="results folder suffix (%(default)s)")
    p.add_argument("--results-dir", type=Path, default=RESULTS, help="(%(default)s)")
    args = p.parse_args(argv)
    if args.cpu not in os.sched_getaffinity(0):
        p.error(f"--cpu {args.cpu} is not available ({sorted(os.sched_getaffinity(0))})")
    os.sched_setaffinity(0, {args.cpu})  # before any thread starts: they inherit it
    env = dict(server_specs(args.database_url, 0.0, default_options())[AIOAPI].env)
    os.environ.update(env)
    import django

    django.setup()  # before anything imports a model
    from django.conf import settings
    from django.db import DatabaseError, connection

    # Before the first connection: the connection handler reads DATABASES once.
    pool_size = int(env["DB_POOL_MAX_SIZE"])
    settings.DATABASES.update(connection_variants(settings.DATABASES["default"], pool_size))
    from movies.models import Movie

    name = connection.settings_dict["NAME"]
    try:
        films = Movie.objects.count()
        version = ".".join(map(str, connection.get_database_version()))
    except DatabaseError as error:
        print(f"bench.budget: cannot read the films of {name}: {error}", file=sys.stderr)
        return 2
    if films < args.limit + 1:
        print(f"bench.budget: {name} holds {films} films; a list request needs at least "
              f"{args.limit + 1} (a full page and a next link). Load the catalogue first "
              "(python -m bench does) or pass --database-url.", file=sys.stderr)  # fmt: skip
        return 2
    started, facts = datetime.now(UTC), scaffold.run_facts()
    print(f"measuring {args.number} calls x {args.repeat} repeats per part on CPU {args.cpu}")
    timings = measure(args.number, args.repeat, args.limit)
    hidden = HIDDEN | LEFT_OUT | {"LANG", "DATABASE_URL"}
    doc = {
        "command": scaffold.command_line("bench.budget", argv),
        "facts": scaffold.ended(facts), "cpu": args.cpu,
        "database": {"name": name, "version": f"{connection.display_name} {version}",
                     "films": films},
        "settings": {k: v for k, v in env.items() if k not in hidden},
        "number": args.number, "repeat": args.repeat, "limit": args.limit,
        "timings": timings, "derived": derived(timings),
    }  # fmt: skip
    outdir = scaffold.results_dir(args.label, started, base=args.results_dir)
    scaffold.write_results(outdir, doc, markdown(doc), names=("budget.json", "budget.md"))
    print(markdown(doc))
    print(f"results: {outdir}/budget.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
