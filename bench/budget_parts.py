"""The parts of one list request (``?limit=10``), each timed in CPU per call.

Every part is a small named function doing one step of what both servers do for
``/movies/?limit=10`` and ``/api/movies?limit=10``, on whatever Django
configuration is active (``python -m bench.budget`` sets up the bench servers'
one; a test its own). CPU is ``time.process_time()``: every thread of this
process (the bridge's too), none of PostgreSQL's, no time spent waiting on it.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import uvloop
from django.db import close_old_connections, connections, router
from django.db.models import QuerySet

from aioapi.db import OrmBridge
from aioapi.settings import ApiSettings
from movies import selectors
from movies.models import Movie
from movies.rendering import movie_list_body
from movies.schemas import MovieListQuery

# What the benchmark's list scenario asks both servers for.
LIST_QUERY = {"limit": 10}
Batch = Callable[[int], None]  # runs a part n times


@dataclass(frozen=True)
class Part:
    """One step of a request, as a table row: what it is and how to run it n times."""

    key: str
    title: str
    what: str
    batch: Batch | None
    skipped: str | None = None  # why it was not measured here


@dataclass(frozen=True)
class Timing:
    """CPU µs per call of one part: the least and the median of the repeats."""

    key: str
    title: str
    what: str
    min_us: float | None
    median_us: float | None
    repeats_us: list[float]
    skipped: str | None


def cpu_per_call(batch: Batch, number: int, repeat: int) -> list[float]:
    """µs of process CPU per call, one figure per repeat of ``number`` calls.

    One untimed batch first: connections, pools and Django's caches warm up there.
    The garbage collector stays on, as it is in a server.
    """
    batch(min(number, 20))
    figures = []
    for _ in range(repeat):
        started = time.process_time()
        batch(number)
        figures.append((time.process_time() - started) * 1e6 / number)
    return figures


def measure(number: int, repeat: int) -> list[Timing]:
    """Time every part of a list request; the catalogue needs 11+ films (a full page
    and a next link)."""
    # The selectors read where the router sends them; so do the parts made here.
    using = router.db_for_read(Movie)
    loop = uvloop.new_event_loop()
    settings = ApiSettings.from_env()
    bridge = OrmBridge(threads=settings.db_threads, max_pending=settings.db_max_pending)
    executor = ThreadPoolExecutor(max_workers=bridge.threads, thread_name_prefix="plain")
    try:
        timings = []
        for part in parts(using, loop, bridge, executor):
            figures = [] if part.batch is None else cpu_per_call(part.batch, number, repeat)
            timings.append(
                Timing(
                    key=part.key,
                    title=part.title,
                    what=part.what,
                    min_us=round(min(figures), 1) if figures else None,
                    median_us=round(statistics.median(figures), 1) if figures else None,
                    repeats_us=[round(f, 1) for f in figures],
                    skipped=part.skipped,
                )
            )
        return timings
    finally:
        executor.shutdown(wait=True)
        bridge.close()  # also closes this thread's connection and the pool
        loop.close()


def parts(
    using: str, loop: asyncio.AbstractEventLoop, bridge: OrmBridge, executor: ThreadPoolExecutor
) -> list[Part]:
    """Every part, in the order a request meets them."""
    query = MovieListQuery.model_validate(LIST_QUERY)
    connection = connections[using]
    built = list_queryset(query, using)
    list_sql = built.query.get_compiler(using=using).as_sql()
    page = selectors.list_movies(query)
    rows = [dict(row) for row in page.items]
    genre_sql = genre_names_queryset(rows, using).query.get_compiler(using=using).as_sql()
    # Django's pool exists on PostgreSQL only; elsewhere close_old_connections()
    # closes nothing here or reconnects, which is no pool checkout to report.
    pooled = getattr(connection, "pool", None) is not None
    no_pool = None if pooled else f"no connection pool on {connection.vendor} ({using})"

    def select_one() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()

    def list_movies() -> None:
        selectors.list_movies(query)

    async def bridged_list() -> None:
        await bridge.run(selectors.list_movies, query)

    async def bridged_noop() -> None:
        await bridge.run(noop)

    async def plain_hop() -> None:
        await loop.run_in_executor(executor, noop)

    def part(key: str, title: str, what: str, batch: Batch, skipped: str | None = None) -> Part:
        return Part(key, title, what, None if skipped else batch, skipped)

    return [
        part("orm_build", "ORM: build the list QuerySet",
             "filters, order and slice of list_movies' query; no SQL is made or sent",
             repeated(lambda: list_queryset(query, using))),
        part("orm_compile", "ORM: compile it to SQL",
             "get_compiler().as_sql() on the built QuerySet: the SQL text and its parameters",
             repeated(lambda: built.query.get_compiler(using=using).as_sql())),
        part("list_sql", "list query: precompiled SQL + dicts",
             "that SQL run on a Django cursor, the 11 rows zipped into dicts: no ORM",
             repeated(lambda: run_sql(using, *list_sql))),
        part("orm_list_query", "list query through the ORM",
             "build, compile, run and turn into dicts: the three rows above as the ORM does them",
             repeated(lambda: list(list_queryset(query, using)))),
        part("genre_sql", "genre names: precompiled SQL",
             "the genre-names query (10 ids IN, joined, ordered by name) as raw SQL, tuples",
             repeated(lambda: run_sql(using, *genre_sql))),
        part("orm_genre_names", "genre names through the ORM",
             "list_movies' second query, built, compiled, run and attached to the 10 rows",
             repeated(lambda: selectors._attach_genre_names(rows))),
        part("list_movies_held", "selectors.list_movies, held connection",
             "the whole selector (both queries, cursors, pagination) on a connection kept open",
             repeated(list_movies)),
        part("list_movies_pool", "selectors.list_movies, pool checkout",
             "the same between two close_old_connections(), as Django's request signals and "
             "channels' database_sync_to_async do: a pool checkout and return per call",
             repeated(cycled(list_movies)), no_pool),
        part("select1_held", "SELECT 1, held connection",
             "one round trip on a Django cursor: the floor of any query",
             repeated(select_one)),
        part("select1_pool", "SELECT 1, pool checkout",
             "the same with the pool checkout (and its check) and return around it",
             repeated(cycled(select_one)), no_pool),
        part("plain_hop", "plain run_in_executor hop",
             "await loop.run_in_executor(pool, noop) on uvloop: a bare thread hop",
             on_loop(loop, plain_hop)),
        part("bridge_hop", "OrmBridge.run(noop) hop",
             "aioapi's bridge (channels' database_sync_to_async, close_old_connections) "
             "on uvloop, with nothing to do",
             on_loop(loop, bridged_noop)),
        part("bridge_list_movies", "OrmBridge.run(list_movies)",
             "what aioapi's handler awaits for the page, without HTTP: hop, pool cycle, selector",
             on_loop(loop, bridged_list)),
        part("render", "movie_list_body",
             "the response body both servers send: the page and its links as orjson",
             repeated(lambda: movie_list_body(page, query))),
    ]  # fmt: skip


def list_queryset(query: MovieListQuery, using: str) -> QuerySet[Movie, dict[str, Any]]:
    """The QuerySet list_movies evaluates for a first page (no cursor), unevaluated."""
    movies = selectors.filtered_movies(query).using(using)
    movies = movies.order_by(*selectors.sort_order(query.sort))
    start = query.offset
    return movies.values(*selectors.LIST_FIELDS)[start : start + query.limit + 1]


def genre_names_queryset(rows: list[dict[str, Any]], using: str) -> QuerySet[Any, Any]:
    """The query of ``selectors._attach_genre_names``, to compile its SQL once."""
    through = Movie.genres.through.objects.using(using)
    links = through.filter(movie_id__in=[row["id"] for row in rows]).order_by("genre__name")
    return links.values_list("movie_id", "genre__name")


def run_sql(using: str, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
    """Run SQL made beforehand on a Django cursor; rows as dicts, as ``values()`` gives."""
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def noop() -> None:
    """Nothing: what a thread hop costs on its own."""


def repeated(call: Callable[[], object]) -> Batch:
    def batch(n: int) -> None:
        for _ in range(n):
            call()

    return batch


def cycled(call: Callable[[], None]) -> Callable[[], None]:
    """``call`` between two close_old_connections(): a connection per call."""

    def with_checkout() -> None:
        close_old_connections()
        call()
        close_old_connections()

    return with_checkout


def on_loop(
    loop: asyncio.AbstractEventLoop, call: Callable[[], Coroutine[Any, Any, None]]
) -> Batch:
    """Await ``call`` n times in one coroutine: one run_until_complete per batch."""

    async def many(n: int) -> None:
        for _ in range(n):
            await call()

    return lambda n: loop.run_until_complete(many(n))
