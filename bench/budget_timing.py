"""How bench/budget_parts.py times a part, and what it times against: CPU per call,
the connection policies compared, and the statement the list selector runs.

The list statement is taken from ``selectors.list_movies`` itself (the builder
and compiled statement it hands to movies.prepared), never written again here,
so the budget cannot drift from what the servers run; tests/test_bench_budget.py
checks it against the SQL the selector sends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import close_old_connections, connections

from movies import prepared, selectors
from movies.schemas import MovieListQuery

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


# Connection policies compared beside the servers' own (budget.py adds these aliases
# on PostgreSQL before the first connection): Django's pool, the same with its
# checkout check, and a persistent connection per thread with no health check.
POOLED = "budget_pool"
CHECKED_POOL = "budget_pool_checked"
PERSISTENT = "budget_persistent"
VARIANTS = (POOLED, CHECKED_POOL, PERSISTENT)


def connection_variants(default: dict[str, Any], pool_size: int) -> dict[str, dict[str, Any]]:
    """Copies of the ``default`` database settings for POOLED, CHECKED_POOL and
    PERSISTENT, whichever policy ``default`` has; none off PostgreSQL."""
    if not default["ENGINE"].endswith("postgresql"):
        return {}
    options = {k: v for k, v in default.get("OPTIONS", {}).items() if k != "pool"}
    pool = default.get("OPTIONS", {}).get("pool") or {
        "min_size": pool_size,
        "max_size": pool_size,
        "timeout": 2.0,
    }
    pooled = {
        **default,
        "OPTIONS": {**options, "pool": pool},
        "CONN_MAX_AGE": 0,
        "CONN_HEALTH_CHECKS": False,
    }
    return {
        POOLED: pooled,
        CHECKED_POOL: {**pooled, "CONN_HEALTH_CHECKS": True},
        PERSISTENT: {**default, "OPTIONS": options, "CONN_MAX_AGE": None,
                     "CONN_HEALTH_CHECKS": False},
    }  # fmt: skip


@dataclass(frozen=True)
class SelectorStatement:
    """What list_movies hands movies.prepared for one query: how to build its
    QuerySet, how it is paged, and the statement compiled from it."""

    build: prepared.Builder
    limit: int | None
    offset: bool
    statement: prepared.Statement

    def compile(self, using: str) -> prepared.Statement:
        """Build and compile it anew: what every request paid before movies.prepared."""
        return prepared.compile_statement(self.build(), using, limit=self.limit, offset=self.offset)


class _Recording(prepared.StatementCache):
    """A statement cache that also keeps what it was asked for."""

    def __init__(self) -> None:
        super().__init__(max_size=8)
        self.asked: list[SelectorStatement] = []

    def statement(
        self,
        key: Hashable,
        using: str,
        build: prepared.Builder,
        *,
        limit: int | None = None,
        offset: bool = False,
    ) -> prepared.Statement:
        found = super().statement(key, using, build, limit=limit, offset=offset)
        self.asked.append(SelectorStatement(build, limit, offset, found))
        return found


def list_statement(query: MovieListQuery) -> SelectorStatement:
    """The statement ``selectors.list_movies(query)`` runs: the selector is called
    once with a recording cache in place of movies.prepared's (single-threaded,
    before any timing; the real cache is put back whatever happens)."""
    recording, shared = _Recording(), prepared.STATEMENTS
    prepared.STATEMENTS = recording
    try:
        selectors.list_movies(query)
    finally:
        prepared.STATEMENTS = shared
    [asked] = recording.asked  # one statement: the page with its genre names
    return asked


def run_sql(using: str, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
    """Run SQL made beforehand on the cursor movies.prepared runs its statements on
    (bound on the server, binary rows); rows as dicts, as ``values()`` gives."""
    with prepared.statement_cursor(connections[using]) as cursor:
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
