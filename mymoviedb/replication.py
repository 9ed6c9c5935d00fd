"""How far each read replica has replayed, measured and cached briefly per process.

The router (mymoviedb/routers.py) asks :data:`monitor` before it sends a read to
a replica: a read bearing a consistency token (a primary WAL position, LSN)
needs a replica that has replayed that far; any other read needs one lagging by
at most ``DATABASE_REPLICA_MAX_LAG_SECONDS``. A replica that cannot be reached
counts as infinitely behind, so reads move off a stopped standby within
:data:`STATUS_TTL_SECONDS` of the next measurement and back once it answers.

Lag is ``now - pg_last_xact_replay_timestamp()`` while the standby has received
WAL it has not replayed yet, else 0: an idle primary sends no commits, and a
standby that has replayed all it received is not behind, however old its last
commit. A delayed standby waiting to apply a commit reports the time since the
commit it replayed last, which is never less than its real lag: it is skipped
early, never late.

Each replica is measured on a psycopg connection of the monitor's own (one per
replica, apart from Django's), by one thread at a time; the others use the
last figure meanwhile. Positions only grow, so a figure a few milliseconds old
errs on the safe side for a token; one more measurement is taken at once when
the cached position is short of a token.
"""

from __future__ import annotations

import math
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections

# How long a measurement is trusted. Reads move off a replica that stopped
# within this (plus a refused connect); the cost is one query per replica and
# process this often under load.
STATUS_TTL_SECONDS = 0.25
CONNECT_TIMEOUT_SECONDS = 1
# Options of Django's connection that are not libpq's (or are sync-only).
NOT_LIBPQ = ("cursor_factory", "context", "prepare_threshold")
LSN = re.compile(r"([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})")

STATUS_SQL = """
SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
            ELSE pg_current_wal_lsn() END::text,
       CASE WHEN NOT pg_is_in_recovery()
              OR pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0
            ELSE extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp()) END
"""


def parse_lsn(text: str) -> int | None:
    """A WAL position as PostgreSQL writes it (``16/B374D848``), or None if malformed."""
    match = LSN.fullmatch(text.strip())
    if match is None:
        return None
    return int(match[1], 16) << 32 | int(match[2], 16)


def format_lsn(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def libpq_params(alias: str, application_name: str) -> dict[str, Any]:
    """libpq parameters of Django's ``alias`` database, for a connection of our own."""
    params = dict(connections[alias].get_connection_params())
    for name in NOT_LIBPQ:
        params.pop(name, None)
    params["application_name"] = application_name
    return params


def primary_lsn() -> int:
    """The primary's WAL position now (on an ORM thread): after a commit, at or past it."""
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()::text")
        (text,) = cursor.fetchone()
    lsn = parse_lsn(text)
    assert lsn is not None, text
    return lsn


@dataclass(frozen=True)
class Status:
    """One measurement of a replica: replayed position and lag (inf: unreachable)."""

    lsn: int
    lag_seconds: float
    measured: float  # time.monotonic()

    @property
    def reachable(self) -> bool:
        return math.isfinite(self.lag_seconds)


UNREACHABLE_LSN = -1


class Replica:
    """The cached status of one replica, and the connection that measures it."""

    def __init__(self, alias: str) -> None:
        self.alias = alias
        self.status: Status | None = None
        self._lock = threading.Lock()
        self._connection: psycopg.Connection[Any] | None = None
        self.measurements = 0

    def current(self, *, fresher_than: float = STATUS_TTL_SECONDS) -> Status:
        """The last status if younger than ``fresher_than`` seconds, else a new one.

        While another thread measures, the last status (if any) is returned."""
        status = self.status
        if status is not None and time.monotonic() - status.measured < fresher_than:
            return status
        if not self._lock.acquire(blocking=status is None):
            assert status is not None
            return status
        try:
            # Another thread may have measured while this one waited for the lock.
            if self.status is not None and self.status is not status:
                return self.status
            self.status = self._measure()
            return self.status
        finally:
            self._lock.release()

    def mark_unreachable(self) -> None:
        """A read failed on this replica: skip it until the next measurement."""
        self.status = Status(UNREACHABLE_LSN, math.inf, time.monotonic())

    def close(self) -> None:
        """Close the measuring connection (the next measurement opens another)."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
            self._connection = None
            self.status = None

    def _measure(self) -> Status:
        self.measurements += 1
        try:
            if self._connection is None or self._connection.closed:
                params = libpq_params(self.alias, "mymoviedb-replica-monitor")
                params["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
                self._connection = psycopg.connect(**params, autocommit=True)
            row = self._connection.execute(STATUS_SQL).fetchone()
        except psycopg.Error:
            if self._connection is not None:
                self._connection.close()
            self._connection = None
            return Status(UNREACHABLE_LSN, math.inf, time.monotonic())
        assert row is not None
        lsn = parse_lsn(row[0])
        lag = math.inf if row[1] is None or lsn is None else float(row[1])
        return Status(UNREACHABLE_LSN if lsn is None else lsn, lag, time.monotonic())


class Monitor:
    """The replicas of this process, by alias (made on first use)."""

    def __init__(self) -> None:
        self._replicas: dict[str, Replica] = {}
        self._lock = threading.Lock()

    def replica(self, alias: str) -> Replica:
        replica = self._replicas.get(alias)
        if replica is None:
            with self._lock:
                replica = self._replicas.setdefault(alias, Replica(alias))
        return replica

    def close(self) -> None:
        """Close every measuring connection: at shutdown, and before a test drops a database."""
        for replica in list(self._replicas.values()):
            replica.close()

    def serves(self, alias: str, *, min_lsn: int | None, max_lag_seconds: float) -> bool:
        """Whether a read may go to ``alias``: replayed to ``min_lsn`` when given,
        else lagging at most ``max_lag_seconds``; reachable either way."""
        if connections[alias].vendor != "postgresql":
            return True  # nothing to measure: a test's stand-in
        replica = self.replica(alias)
        status = replica.current()
        if min_lsn is None:
            return status.lag_seconds <= max_lag_seconds
        if status.reachable and status.lsn < min_lsn:
            status = replica.current(fresher_than=0)
        return status.reachable and status.lsn >= min_lsn


# One per process: replicas' positions are facts about the servers, shared by
# every request and thread of the process.
monitor = Monitor()
