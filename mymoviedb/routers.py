"""Read-replica routing: reads go to a replica, writes and reads after a write to the primary.

``settings.DATABASE_REPLICA_URLS`` adds the aliases ``replica_0``, ``replica_1``, ...
and installs :class:`ReplicaRouter`. A replica lags the primary, so the router
keeps one rule that makes the lag invisible to the request that caused it: once
a request has written, all its later reads go to the primary ("pinned").

A "request" is one context (:mod:`contextvars`):

* Django (Gunicorn): ``request_started`` clears the state, because a gthread
  worker reuses its threads, and so their context, for the next request.
* aioapi (aiohttp): every request runs in its own task, so its own copy of the
  context; ``asgiref``'s ``sync_to_async`` (and so ``database_sync_to_async``)
  copies the context into the ORM thread and the changes back, so a write in
  one bridged call pins the reads of the next one.
* Anything else (a command, a job): wrap the unit of work in :func:`request_scope`.

Each request also sticks to one replica, chosen at its first read, so two reads
in one request never see the replicas' different lags out of order.

Across requests (mymoviedb/replication.py measures the replicas): a request
may carry a consistency token, the primary's WAL position after an earlier
write (:func:`request_scope`'s ``min_lsn``; aioapi's ``X-Consistency-Token``);
its reads go to a replica that has replayed that far, else to the primary.
Without one, a replica lagging more than ``DATABASE_REPLICA_MAX_LAG_SECONDS``,
or not answering, is skipped; with none left, the primary serves.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar

from django.conf import settings
from django.core.signals import request_started
from django.db import DEFAULT_DB_ALIAS, OperationalError, connections
from django.db.models import Model

from mymoviedb.replication import monitor

REPLICA_PREFIX = "replica_"
P = ParamSpec("P")
R = TypeVar("R")

# Per-request state; each context (thread or task) sees its own values.
_pinned: ContextVar[bool] = ContextVar("mymoviedb_db_pinned", default=False)
_replica: ContextVar[str | None] = ContextVar("mymoviedb_db_replica", default=None)
_min_lsn: ContextVar[int | None] = ContextVar("mymoviedb_db_min_lsn", default=None)


def replica_aliases() -> list[str]:
    """The configured replica aliases, in ``DATABASE_REPLICA_URLS`` order."""
    return [alias for alias in settings.DATABASES if alias.startswith(REPLICA_PREFIX)]


def pin_to_primary() -> None:
    """Send the rest of this request's reads to the primary (done by every write)."""
    _pinned.set(True)


def is_pinned() -> bool:
    """Whether this request's reads go to the primary."""
    return _pinned.get()


def min_lsn() -> int | None:
    """The oldest primary WAL position this request's reads may see, if bounded."""
    return _min_lsn.get()


def require_lsn(lsn: int) -> None:
    """Read nothing older than ``lsn`` for the rest of this request (0: no bound)."""
    current = _min_lsn.get()
    if lsn and (current is None or lsn > current):
        _min_lsn.set(lsn)


def reset() -> None:
    """Forget this context's writes, token and chosen replica: a new request starts."""
    _pinned.set(False)
    _replica.set(None)
    _min_lsn.set(None)


@contextmanager
def request_scope(min_lsn: int | None = None) -> Iterator[None]:
    """Run a block as one fresh request, reading nothing older than ``min_lsn`` (a
    primary WAL position) if given; the caller's state is restored afterwards."""
    pinned_token = _pinned.set(False)
    replica_token = _replica.set(None)
    min_lsn_token = _min_lsn.set(min_lsn)
    try:
        yield
    finally:
        _min_lsn.reset(min_lsn_token)
        _replica.reset(replica_token)
        _pinned.reset(pinned_token)


def _reset_on_request_started(**_kwargs: Any) -> None:
    reset()


def falling_back(function: Callable[P, R]) -> Callable[P, R]:
    """``function``, run again on the primary if its reads failed on a replica.

    A replica that stopped (or cancelled a query for a conflict with recovery)
    costs the request nothing: a unit of work that has not written yet is run
    once more with its reads on the primary, and the replica counts as
    unreachable until the monitor's next measurement finds it back."""

    @functools.wraps(function)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except OperationalError:
            replica = _replica.get()
            if replica is None or replica == DEFAULT_DB_ALIAS or _pinned.get():
                raise
            monitor.replica(replica).mark_unreachable()
            connections[replica].close()
            _replica.set(DEFAULT_DB_ALIAS)
            return function(*args, **kwargs)

    return call


# Connected at import: Django imports the router before the first query it routes,
# and a request that has not queried yet has nothing to forget.
request_started.connect(_reset_on_request_started, dispatch_uid="mymoviedb.routers.reset")


class ReplicaRouter:
    """Django database router for one primary (``default``) and N read replicas."""

    def __init__(self) -> None:
        self.replicas = replica_aliases()
        self.max_lag_seconds: float = settings.DATABASE_REPLICA_MAX_LAG_SECONDS

    def db_for_read(self, model: type[Model], **hints: Any) -> str:
        """A replica recent enough for this request, unless it wrote or runs inside a
        transaction; the primary when no replica is recent enough."""
        if not self.replicas or _pinned.get():
            return DEFAULT_DB_ALIAS
        # Reads inside atomic() belong to that transaction (select-then-update).
        if connections[DEFAULT_DB_ALIAS].in_atomic_block:
            return DEFAULT_DB_ALIAS
        replica = _replica.get()
        if replica is None:
            replica = self._choose()
            _replica.set(replica)
        return replica

    def _choose(self) -> str:
        min_lsn = _min_lsn.get()
        for alias in random.sample(self.replicas, len(self.replicas)):
            if monitor.serves(alias, min_lsn=min_lsn, max_lag_seconds=self.max_lag_seconds):
                return alias
        return DEFAULT_DB_ALIAS

    def db_for_write(self, model: type[Model], **hints: Any) -> str:
        """Always the primary; pins the rest of the request to it."""
        pin_to_primary()
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool | None:
        """Rows of the primary and its replicas are the same rows."""
        pool = {DEFAULT_DB_ALIAS, *self.replicas}
        if obj1._state.db in pool and obj2._state.db in pool:
            return True
        return None

    def allow_migrate(
        self, db: str, app_label: str, model_name: str | None = None, **hints: Any
    ) -> bool | None:
        """No opinion: ``migrate`` targets the primary; streaming replication copies it.

        A real hot standby refuses writes, so ``migrate --database replica_0`` fails
        there by itself; the tests' stand-in replica needs the schema migrated.
        """
        return None
