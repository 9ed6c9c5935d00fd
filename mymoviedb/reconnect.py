"""A unit of database work is run once more when its connection turned out dead.

After PostgreSQL, PgBouncer or a standby restarts, every connection a thread or a
pool kept open is dead, and each is found out by the first statement sent on it.
Without this, that statement's request fails (a 503 per ORM thread and per
pooled connection) although the database answers again.

The rule, for one unit of work (an ORM call of aioapi's bridge, one request of
the Django side; :func:`retrying`, :func:`begin_unit`):

* It failed because an open connection broke under one of its statements
  (:func:`lost_connection`: no SQLSTATE, or the server's "terminating
  connection" ones, raised by the statement). A
  refused connect or a pool timeout fails before any statement: the database
  is down, and retrying would only double the wait.
* Nothing it did can have been committed. A statement that is not a read
  (:func:`is_read`) in autocommit mode commits by itself, so it may have; a
  write inside ``atomic()`` commits only with its transaction: a failure inside
  the transaction (raised by a statement) rolled it back on the server, while a
  failure at COMMIT leaves it in doubt, and a transaction that committed before
  the failure must not run twice. Reads (``SELECT``) never count. Before an
  autocommit write the connection's socket is polled (no round trip): one the
  server has closed is not written to, and the unit runs again.

Then the dead connections are closed (a pooled one is discarded by the pool,
which also tests its idle ones, :func:`discard_dead_connections`) and the unit
runs once more on fresh ones. Anything else fails as before: a 503.

The bookkeeping is an ``execute_wrapper`` on every connection: one ContextVar
read and a look at the statement's first word per statement.
"""

from __future__ import annotations

import functools
import logging
import re
import select
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import psycopg
from django.db import InterfaceError, OperationalError, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created

P = ParamSpec("P")
R = TypeVar("R")

logger = logging.getLogger(__name__)

# First words of statements that change nothing once their transaction is gone.
# SET changes the session only, which a rerun starts afresh.
READ_VERBS = frozenset(
    {"select", "show", "explain", "values", "savepoint", "release", "rollback", "set", "reset"}
)
# A statement starting with one of them (after spaces and opening parentheses),
# looked for in its first 32 characters: one C call per statement, not a copy of it.
_STARTS_READ = re.compile(
    r"[ \t\n(]*(?:" + "|".join(sorted(READ_VERBS)) + r")(?=\s|$)", re.IGNORECASE
).match


@dataclass
class Unit:
    """What one unit of work did that decides whether it may run again."""

    in_doubt: bool = False  # a write may have committed
    lost: str | None = None  # the alias whose connection broke under the last statement

    def committed(self) -> None:
        """``on_commit`` hook of a transaction that wrote."""
        self.in_doubt = True


_unit: ContextVar[Unit | None] = ContextVar("mymoviedb_db_unit", default=None)


def is_read(sql: str) -> bool:
    """Whether a statement, by its first word, changes nothing (a ``WITH`` may)."""
    return _STARTS_READ(sql, 0, 32) is not None


# The server ended the session: shut down (57P01, also what pg_terminate_backend
# sends), crashed (57P02), still starting (57P03), or a connection exception (08).
SESSION_ENDED = frozenset({"57P01", "57P02", "57P03"})


def lost_connection(error: BaseException) -> bool:
    """Whether ``error`` says the connection failed, rather than the statement.

    A refused or broken connection, and a pool timeout, carry no SQLSTATE; a
    server that ends the session says why (a shutdown, a crash). Any other
    SQLSTATE is the statement's (a cancelled query, a limit, a deadlock).
    """
    cause = error.__cause__
    if not isinstance(cause, psycopg.Error):
        return False
    state = cause.sqlstate
    return state is None or state in SESSION_ENDED or state.startswith("08")


def _track(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
    unit = _unit.get()
    if unit is None:
        return execute(sql, params, many, context)
    if _STARTS_READ(sql, 0, 32) is None:  # is_read(sql), without a call per statement
        connection: BaseDatabaseWrapper = context["connection"]
        if connection.in_atomic_block:
            # Once per transaction: Django forgets the hook if it rolls back.
            if not any(entry[1] == unit.committed for entry in connection.run_on_commit):
                transaction.on_commit(unit.committed, using=connection.alias)
        elif closed_by_server(connection):
            # Not sent: the unit may run again on a new connection.
            unit.lost = connection.alias
            closed = psycopg.OperationalError("the server closed the connection before a write")
            raise OperationalError(str(closed)) from closed
        else:
            unit.in_doubt = True  # autocommit: committed once the server has it
    unit.lost = None
    try:
        return execute(sql, params, many, context)
    except (OperationalError, InterfaceError) as error:
        if lost_connection(error):
            unit.lost = context["connection"].alias
        raise


def closed_by_server(connection: BaseDatabaseWrapper) -> bool:
    """Whether an idle connection's socket has something to read: the server's end
    of it (EOF, or the FATAL of a shutdown), since nothing was asked.

    A poll of the socket, no round trip: before an autocommit write, so that a
    write on a connection a restart killed is known not to have been sent.
    """
    raw: Any = connection.connection
    if connection.vendor != "postgresql" or raw is None or raw.closed:
        return False  # SQLite has no server to go away
    try:
        readable, _, _ = select.select([raw.pgconn.socket], [], [], 0)
    except (OSError, ValueError, psycopg.Error):
        return True
    return bool(readable)


def _install(sender: type, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    # Fires for every new (or newly pooled) connection of a wrapper that may
    # already carry the tracker.
    if _track not in connection.execute_wrappers:
        connection.execute_wrappers.append(_track)


connection_created.connect(_install, weak=False, dispatch_uid="mymoviedb.reconnect")


def begin_unit() -> None:
    """Start a new unit for the rest of this context (a Django request)."""
    _unit.set(Unit())


def lost_alias(error: BaseException) -> str | None:
    """The alias to reconnect if the current unit may run again after ``error``.

    Only when an open connection broke under a statement (the last one: a
    failure at COMMIT is not a statement's) and nothing may have committed; a
    write pending in a transaction was rolled back with the connection.
    """
    unit = _unit.get()
    if unit is None or unit.in_doubt or not lost_connection(error):
        return None
    return unit.lost


def discard_dead_connection(alias: str) -> None:
    """Close ``alias``'s connection of this thread if Django has not yet.

    A pooled one goes back to its pool, which drops it as broken; the pool's
    idle connections died with it, so they are tested now (psycopg_pool's
    ``check``, a round trip each, only after such a failure).
    """
    connection = connections[alias]
    connection.close()
    pool: Any = getattr(connection, "pool", None)
    if pool is not None:
        pool.check()


def retrying(function: Callable[P, R]) -> Callable[P, R]:
    """``function`` as one unit of work, run once more after a dead connection (above)."""

    @functools.wraps(function)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        # Each run is a unit of its own, tracked for the calls' statements only.
        token = _unit.set(Unit())
        try:
            return function(*args, **kwargs)
        except (OperationalError, InterfaceError) as error:
            alias = lost_alias(error)
            if alias is None:
                raise
            discard_dead_connection(alias)
            logger.info("connection lost (%s): running %s again", error, function.__name__)
        finally:
            _unit.reset(token)
        token = _unit.set(Unit())
        try:
            return function(*args, **kwargs)
        finally:
            _unit.reset(token)

    return call
