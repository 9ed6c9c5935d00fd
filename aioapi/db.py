"""The only crossing from the event loop to the Django ORM.

Thread and connection policy (README "The bridge's thread policy"):

* Every ORM call runs through channels' ``database_sync_to_async`` with
  ``thread_sensitive=False`` on this bridge's own ``ThreadPoolExecutor`` of
  ``API_DB_THREADS`` threads (default 8). The default, ``thread_sensitive=True``,
  sends every call of the process to asgiref's ONE shared thread, which caps a
  process at 1/latency requests per second once the database is across a network.
  Measured here (wrk, /api/movies?limit=10, one process pinned to one core, the
  shared catalogue on PostgreSQL): on loopback at 64 connections one shared
  thread gave 470 req/s, 16 threads 653, 32 threads 807 (even on loopback a
  request waits ~0.5 ms of its ~1.2 ms on PostgreSQL); with 10 ms of simulated
  latency per query at 400 connections one shared thread served nothing (every
  request timed out), 8 threads 299 req/s, 32-64 threads 550-590 (CPU-bound).
* Extra threads are not free: each contends for the GIL with the loop's thread.
  In the bench (2 workers on 2 cores, list 10, medians of 3-5 interleaved
  rounds, bench/results/2026-11-21-issue3-rounds*), by threads per worker:
  4 threads: loopback 664/662 req/s at 64/400 connections (p99 at 400: 888 ms),
  but with 10 ms per query only ~300 req/s; 8 threads: loopback 605/543, 10 ms
  454/453; 16 threads: loopback 523/482 (p99 at 400: 1,810 ms), 10 ms 448/468,
  with 25 % more CPU per request than 4. 8 is the default: as fast as 16 with
  10 ms per query, faster than it nearby. Size it to the database's latency
  (threads ~ req/s x seconds per request in flight) and measure.
* Connections come from Django's psycopg pool (``DB_POOL_MAX_SIZE`` >= threads):
  channels' wrapper calls ``close_old_connections()`` after each call, which
  returns the connection to the pool, so an idle thread holds none and a
  process never opens more than its pool allows.
* At most ``API_DB_MAX_PENDING`` calls wait or run at once; past that the
  bridge refuses at once (503 + Retry-After) instead of letting latency grow
  without bound.
* Callers pass plain functions (selectors, services) that return evaluated
  data, so no lazy QuerySet crosses back to the loop.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from channels.db import database_sync_to_async
from django.db import connections

P = ParamSpec("P")
R = TypeVar("R")

THREAD_NAME_PREFIX = "orm"


class BridgeOverloaded(Exception):
    """More ORM calls are pending than the bridge accepts."""


class OrmBridge:
    """Runs ORM work on a bounded pool of threads, away from the event loop."""

    def __init__(self, *, threads: int, max_pending: int, funnel: bool = False) -> None:
        """``funnel=True`` keeps channels' default (one shared thread per process):
        it exists only so bench/ can measure what the pool of threads buys."""
        if threads < 1 or max_pending < threads:
            raise ValueError("need threads >= 1 and max_pending >= threads")
        self.threads = 1 if funnel else threads
        self.max_pending = max_pending
        self.pending = 0
        self.funnel = funnel
        self._executor = ThreadPoolExecutor(
            max_workers=self.threads, thread_name_prefix=THREAD_NAME_PREFIX
        )
        # Weak keys: a closure handed in once does not stay alive for it.
        self._wrappers: weakref.WeakKeyDictionary[Callable[..., Any], Callable[..., Any]] = (
            weakref.WeakKeyDictionary()
        )

    async def run(self, function: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``function(*args, **kwargs)`` on an ORM thread and return its result."""
        if self.pending >= self.max_pending:
            raise BridgeOverloaded(f"{self.pending} ORM calls pending")
        self.pending += 1
        try:
            return await self._wrapped(function)(*args, **kwargs)
        finally:
            self.pending -= 1

    def _wrapped(self, function: Callable[P, R]) -> Callable[P, Awaitable[R]]:
        # Made once per function: building the wrapper inspects the function
        # (~25 µs a call, measured in bench.budget's profile).
        call = self._wrappers.get(function)
        if call is None:
            call = database_sync_to_async(function, thread_sensitive=False, executor=self._executor)
            self._wrappers[function] = call
        return call

    def close(self) -> None:
        """Wait for running calls, then close every pooled connection."""
        self._executor.shutdown(wait=True)
        # Call from a thread without a running loop (Django refuses to close a
        # connection on the loop's thread). All aliases, not only the ones this
        # thread has used: the pools are shared by every thread.
        for connection in connections.all():
            close_pool = getattr(connection, "close_pool", None)
            if close_pool is not None:
                close_pool()
            connection.close()


def on_orm_thread() -> bool:
    """True on a thread where ORM calls may run (used by tests and assertions)."""
    return threading.current_thread() is not threading.main_thread()
