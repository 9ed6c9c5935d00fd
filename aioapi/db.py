"""The only crossing from the event loop to the Django ORM.

Thread and connection policy (measured in bench/results/2026-12-05-lean-8-threads/ and
2026-12-06-lean-16-threads-one-statement-detail/, their NOTES.md):

* Every ORM call runs through channels' ``database_sync_to_async`` with
  ``thread_sensitive=False`` on this bridge's own ``ThreadPoolExecutor`` of
  ``API_DB_THREADS`` threads (default 8). The default, ``thread_sensitive=True``,
  sends every call of the process to asgiref's ONE shared thread, which caps a
  process at 1/latency requests per second once the database is across a network.
  More threads than the latency needs cost CPU and tail latency: each one
  contends for the GIL with the loop's thread. Size it to the database's latency
  (threads ~ req/s x seconds per request in flight) and measure.
* Each thread keeps one connection open (``DB_POOL=0``, the API process's
  default, set by :func:`use_api_connection_policy`): the threads are fixed, so
  the connections are bounded (workers x threads), and a call skips the pool's
  checkout and return (bench.budget's ``select1_pool`` row measures them). A
  call whose connection turns out dead (the database, PgBouncer or a standby
  restarted) runs once more on a fresh one when that cannot apply anything
  twice (:mod:`mymoviedb.reconnect`), so a restart costs no request; a
  connection that failed otherwise is closed after the call
  (``close_old_connections``). ``DB_POOL=1`` brings back Django's pool.
* At most ``API_DB_MAX_PENDING`` calls wait or run at once; past that the
  bridge refuses at once (503 + Retry-After) instead of letting latency grow
  without bound.
* While the primary database is known down, calls fail fast: the circuit
  breaker (aioapi.breaker) refuses them with a 503 instead of each waiting out
  a connect timeout. A call whose reads fail on a replica runs again on the
  primary (``mymoviedb.routers.falling_back``, only when replicas are set).
* Callers pass plain functions (selectors, services) that return evaluated
  data, so no lazy QuerySet crosses back to the loop.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from channels.db import database_sync_to_async
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections

from aioapi.breaker import PROBE_INTERVAL_SECONDS, Breaker
from mymoviedb import reconnect, replication, routers

P = ParamSpec("P")
R = TypeVar("R")

logger = logging.getLogger(__name__)

THREAD_NAME_PREFIX = "orm"
# How long close() waits for every ORM thread to close its own connections.
CLOSE_TIMEOUT_SECONDS = 10.0


def use_api_connection_policy(environ: MutableMapping[str, str] = os.environ) -> None:
    """Before ``django.setup()`` in an API process: one connection per ORM thread,
    kept open (``DB_POOL=0``), unless ``DB_POOL`` is set (the module docstring)."""
    environ.setdefault("DB_POOL", "0")


class BridgeOverloaded(Exception):
    """More ORM calls are pending than the bridge accepts."""


def ping_primary() -> None:
    """``SELECT 1`` on the primary (on an ORM thread): raises if it cannot answer."""
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


class OrmBridge:
    """Runs ORM work on a bounded pool of threads, away from the event loop."""

    def __init__(
        self, *, threads: int, max_pending: int, probe_interval: float = PROBE_INTERVAL_SECONDS
    ) -> None:
        """``probe_interval``: the breaker's, while the database is down."""
        if threads < 1 or max_pending < threads:
            raise ValueError("need threads >= 1 and max_pending >= threads")
        self.threads = threads
        self.max_pending = max_pending
        self.pending = 0
        self._closed = False
        self._executor = ThreadPoolExecutor(
            max_workers=self.threads, thread_name_prefix=THREAD_NAME_PREFIX
        )
        # Weak keys: a closure handed in once does not stay alive for it.
        self._wrappers: weakref.WeakKeyDictionary[Callable[..., Any], Callable[..., Any]] = (
            weakref.WeakKeyDictionary()
        )
        # The probe bypasses run(): it must reach the database while the breaker is open.
        self.breaker = Breaker(self._wrapped(ping_primary), interval=probe_interval)

    async def run(self, function: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``function(*args, **kwargs)`` on an ORM thread and return its result.

        Raises :class:`aioapi.breaker.DatabaseUnavailable` while the breaker is open
        and a probe fails.
        """
        if self.breaker.open:
            await self.breaker.admit()
        if self.pending >= self.max_pending:
            raise BridgeOverloaded(f"{self.pending} ORM calls pending")
        self.pending += 1
        try:
            call = self._wrappers.get(function) or self._wrapped(function)
            return await call(*args, **kwargs)
        except (OperationalError, InterfaceError) as error:
            self.breaker.suspect(error)
            raise
        finally:
            self.pending -= 1

    def _wrapped(self, function: Callable[P, R]) -> Callable[P, Awaitable[R]]:
        # Made once per function: building the wrapper inspects the function, a
        # cost bench.budget's profile showed on every call when it was made per call.
        call = self._wrappers.get(function)
        if call is None:
            # Without replicas every read is the primary's: nothing to fall back from.
            replicated = routers.falling_back(function) if routers.replica_aliases() else function
            call = database_sync_to_async(
                reconnect.retrying(replicated),
                thread_sensitive=False,
                executor=self._executor,
            )
            self._wrappers[function] = call
        return call

    def close(self) -> None:
        """Wait for running calls, close every thread's connections, then the pools."""
        if self._closed:
            return
        self._closed = True
        self.breaker.stop()
        self._close_thread_connections()
        self._executor.shutdown(wait=True)
        # Call from a thread without a running loop (Django refuses to close a
        # connection on the loop's thread). All aliases, not only the ones this
        # thread has used: the pools are shared by every thread.
        replication.monitor.close()
        for connection in connections.all():
            close_pool = getattr(connection, "close_pool", None)
            if close_pool is not None:
                close_pool()
            connection.close()

    def _close_thread_connections(self) -> None:
        # Django's connections belong to the thread that opened them: each ORM
        # thread closes its own. The barrier holds every task until all threads
        # have one, so no thread takes two while another is left out.
        barrier = threading.Barrier(self.threads)

        def close_mine() -> None:
            barrier.wait(CLOSE_TIMEOUT_SECONDS)
            connections.close_all()

        closing = [self._executor.submit(close_mine) for _ in range(self.threads)]
        for future in closing:
            try:
                error = future.exception(timeout=CLOSE_TIMEOUT_SECONDS + 1)
            except TimeoutError as timeout:
                error = timeout
            if error is not None:
                # A thread still busy: its connection closes when the process exits.
                logger.warning("an ORM thread could not close its connections: %r", error)
