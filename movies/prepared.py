"""Querysets compiled to SQL once per shape, then run with each request's values.

The selectors still write every query with the ORM; what they no longer do is
rebuild and recompile it per request (most of the list's Python before this module:
bench/results/2026-12-05-lean-8-threads/NOTES.md).
A selector names the *shape* of a query (which filters are present, the sort,
the cursor's direction: everything that changes the SQL text) and gives a
function that builds the QuerySet with ``Param("name", field)`` where a value
changes from request to request. The first call of a shape on a database alias
builds and compiles it; every later call binds the values into the stored
parameter list, runs the SQL on a Django cursor (so query logging, debug
capture and the connection's error handling still apply) and turns rows into
dicts with the same converters ``values()`` would apply. On PostgreSQL that
cursor binds on the server, and psycopg PREPAREs a statement a connection runs
often: the database then skips parsing and planning it, which for a film's
detail was most of its CPU (bench/results/2026-12-05-lean*/). Its rows come
back in PostgreSQL's binary format: psycopg's C loaders read a timestamptz from
eight bytes instead of Django's Python loader parsing its text (the list page's
``updated_at`` was a third of ``selectors.list_movies``, in one process).

* LIMIT is written into the SQL as a number, so each page size is its own
  statement (the API caps it: at most ``MAX_LIMIT`` + 1 per shape). A bound
  LIMIT left PostgreSQL's generic plan guessing 10 % of the table, far costlier
  than any plan for one page, so it planned every execution anew and preparing
  saved nothing. OFFSET is bound,
  and left out when it is 0 (first pages and every cursor page): a deep offset
  is planned per execution, as the ORM's own queries are.
* Statements are cached per (shape, alias, LIMIT, OFFSET or not) in a bounded LRU map
  (``PREPARED_STATEMENTS_MAX``); its hits, misses, compiles and size are exported
  on aioapi's ``/metrics``.
* Only values a ``Param`` stands for vary. Anything else in the shape's builder
  is compiled in, so a value that changes the SQL must be part of the key.

Chosen after a search of the ecosystem: django-prepared-query 0.3.1 (2018,
Django 1.11, PostgreSQL and MySQL only) had this ``BindParam`` idea;
django-prepared-queries 0.3.1 (2019) substitutes values into cached SQL;
django-query-preparer 1.0.1 (2020) PREPAREs raw SQL on PostgreSQL. None is
maintained for Django 5.2 or runs on SQLite, and Django's own ticket #20516
(prepared statements) is open since 2013. This module is that idea in one file:
Django's public expression API, its compiler's ``as_sql`` and converters.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from django.db.models import Expression, Field, QuerySet
from django.db.models.sql.compiler import SQLCompiler

Row = dict[str, Any]
Builder = Callable[[], QuerySet[Any, Any]]


class Param(Expression):
    """A named value of a prepared query: compiled as one placeholder, bound per run.

    ``field`` is the model field the value is compared with: binding prepares
    the value for the database as a lookup on that field would
    (``get_db_prep_value``: a datetime becomes text on SQLite, for instance).
    """

    def __init__(self, name: str, field: Field[Any, Any]) -> None:
        super().__init__(output_field=field)
        self.name = name

    # The Param itself stands in the parameter list (not a str or int, hence the
    # ignore); compile_statement finds it there and makes it a slot.
    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:  # type: ignore[override]
        return "%s", [self]

    def bind(self, value: Any, connection: BaseDatabaseWrapper) -> Any:
        return self.output_field.get_db_prep_value(value, connection, prepared=False)


@dataclass(frozen=True)
class Statement:
    """One compiled shape on one database alias."""

    sql: str
    slots: tuple[Param | None, ...]  # None: the constant at the same place in constants
    constants: tuple[Any, ...]
    names: tuple[str, ...]
    converters: tuple[tuple[int, tuple[Callable[..., Any], ...], Any], ...]
    offset: bool  # whether the SQL ends with a bound OFFSET

    def params(
        self, values: Mapping[str, Any], connection: BaseDatabaseWrapper, offset: int = 0
    ) -> list[Any]:
        params = [
            constant if slot is None else slot.bind(values[slot.name], connection)
            for slot, constant in zip(self.slots, self.constants, strict=True)
        ]
        if self.offset:
            params.append(offset)
        return params


def compile_statement(
    queryset: QuerySet[Any, Any], using: str, *, limit: int | None = None, offset: bool = False
) -> Statement:
    """Compile a ``values()`` QuerySet (unsliced) into a Statement for ``using``:
    at most ``limit`` rows, after a bound OFFSET if ``offset``."""
    query = queryset.query
    if query.low_mark or query.high_mark is not None:
        raise ValueError("slice with run(limit=, offset=), not in the builder")
    if offset and limit is None:
        raise ValueError("an offset needs a limit")
    compiler: SQLCompiler = query.get_compiler(using=using)
    sql, params = compiler.as_sql()
    if limit is not None:
        sql += f" LIMIT {_row_count(limit)}"
    if offset:
        sql += " OFFSET %s"
    if query.selected:
        names = tuple(query.selected)
    else:
        names = (*query.extra_select, *query.values_select, *query.annotation_select)
    columns = [selected[0] for selected in compiler.select[: compiler.col_count]]
    converters = tuple(
        (position, tuple(functions), expression)
        for position, (functions, expression) in compiler.get_converters(columns).items()
    )
    slots = tuple(param if isinstance(param, Param) else None for param in params)
    constants = tuple(None if isinstance(param, Param) else param for param in params)
    return Statement(sql, slots, constants, names, converters, offset)


def _row_count(limit: int) -> int:
    # Written into the SQL: only ever a non-negative int.
    if type(limit) is not int or limit < 0:
        raise ValueError(f"a limit is a non-negative int, not {limit!r}")
    return limit


class StatementCache:
    """Compiled statements by (shape key, alias), least recently used dropped first.

    Shared by every thread of the process: lookups and insertions hold a lock;
    compiling does not, so two threads may compile one new shape at once (both
    results are the same; the second insert wins).
    """

    def __init__(self, max_size: int) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        self.max_size = max_size
        # (shape key, alias, limit, offset bound or not) -> statement
        self._statements: OrderedDict[tuple[Hashable, str, int | None, bool], Statement] = (
            OrderedDict()
        )
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.compiles = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._statements)

    def statement(
        self,
        key: Hashable,
        using: str,
        build: Builder,
        *,
        limit: int | None = None,
        offset: bool = False,
    ) -> Statement:
        """The statement of ``key`` on ``using`` (paged as :func:`compile_statement`
        pages it), compiling ``build()`` on a miss."""
        cache_key = (key, using, limit, offset)
        with self._lock:
            found = self._statements.get(cache_key)
            if found is not None:
                self._statements.move_to_end(cache_key)
                self.hits += 1
                return found
            self.misses += 1
        statement = compile_statement(build(), using, limit=limit, offset=offset)
        with self._lock:
            self.compiles += 1
            self._statements[cache_key] = statement
            self._statements.move_to_end(cache_key)
            while len(self._statements) > self.max_size:
                self._statements.popitem(last=False)
                self.evictions += 1
        return statement

    def clear(self) -> None:
        with self._lock:
            self._statements.clear()


STATEMENTS = StatementCache(settings.PREPARED_STATEMENTS_MAX)


def run(
    key: Hashable,
    build: Builder,
    values: Mapping[str, Any] | None = None,
    *,
    using: str,
    limit: int | None = None,
    offset: int = 0,
    plan_each: bool = False,
) -> list[Row]:
    """Rows of the shape ``key`` (built by ``build`` on first use) with ``values``
    bound, as ``values()`` dicts; ``limit``/``offset`` page it. One statement.

    ``plan_each``: the best plan depends on the values (a filter's selectivity), so
    the statement is planned for each execution, with its values, instead of being
    PREPAREd: after five runs PostgreSQL may keep a generic plan, priced with
    default selectivities, for every value (the genre and year-range filter: a hash
    join over the genre's every link, bench/results/2026-12-07-sql/). It still binds
    on the server and reads binary rows (:func:`statement_cursor`), and is still
    compiled once.
    """
    statement = STATEMENTS.statement(key, using, build, limit=limit, offset=offset > 0)
    connection = connections[using]
    params = statement.params(values or {}, connection, offset)
    with statement_cursor(connection, prepare=not plan_each) as cursor:
        cursor.execute(statement.sql, params)
        raw = cursor.fetchall()
    names = statement.names
    # zip() without strict: the compiled SQL fixes the columns, and any keyword
    # argument takes zip off CPython's fast call path (strict= cost a fifth of
    # this loop, tests/test_prepared.py compares the rows with values()).
    if not statement.converters or not raw:
        return [dict(zip(names, row)) for row in raw]  # noqa: B905
    # Converted a column at a time: one comprehension per converter over the
    # column, instead of a Python loop over the converters for every row
    # (bench/results/2026-12-07-sql-and-cpu/: the row loop was the list-100
    # page's largest shared cost).
    columns: list[Sequence[Any]] = list(zip(*raw))  # noqa: B905
    for position, functions, expression in statement.converters:
        column = columns[position]
        for function in functions:
            column = [function(value, expression, connection) for value in column]
        columns[position] = column
    return [dict(zip(names, row)) for row in zip(*columns)]  # noqa: B905


def statement_cursor(connection: BaseDatabaseWrapper, *, prepare: bool = True) -> CursorWrapper:
    """A Django cursor (query logging, execute wrappers, Django's exceptions) that, on
    PostgreSQL, binds its parameters on the server, so that psycopg can PREPARE the
    statement (``DB_PREPARE_THRESHOLD``, mymoviedb/settings.py); with ``prepare``
    false it never does, and PostgreSQL plans each execution with its values. Django's
    own cursors bind on the client, which cannot be prepared, and read text rows: its
    ORM does not promise SQL that binds on the server (#20516). These statements do,
    and tests/test_prepared.py checks every shape against the plain ORM."""
    if connection.vendor != "postgresql":
        return connection.cursor()
    from psycopg.pq import Format

    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    with connection.wrap_database_errors:
        # django-stubs type the wrappers' argument as a wrapper; Django passes the
        # driver's cursor, as here.
        cursor: Any = _cursor_class(prepare)(connection.connection)
    # Binary rows (the module's docstring). The loaders Django registers are for
    # text; a jsonb column, which Django reads as text, would need its own here.
    cursor.format = Format.BINARY
    if connection.queries_logged:
        return connection.make_debug_cursor(cursor)
    return connection.make_cursor(cursor)


@functools.cache
def _cursor_class(prepare: bool) -> type[Any]:
    # Imported here: the PostgreSQL backend needs psycopg, which SQLite runs without.
    from django.db.backends.postgresql.base import ServerBindingCursor

    if prepare:
        return ServerBindingCursor

    class OneShotCursor(ServerBindingCursor):  # type: ignore[misc]
        """Binds on the server and never PREPAREs: each execution is an unnamed
        statement, which PostgreSQL plans with the values bound (a custom plan)."""

        prepares = False  # read by bench.sql, which explains each statement as run

        def execute(self, query: Any, params: Any = None, **options: Any) -> Any:
            # django-stubs know the class but not psycopg's execute() it inherits.
            return super().execute(query, params, **{**options, "prepare": False})  # type: ignore[misc]

    return OneShotCursor
