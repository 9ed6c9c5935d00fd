"""The only crossing from the event loop to the Django ORM.

Thread and connection policy (figures: README "The bridge's thread policy" and
bench/results/2026-12-0[56]-lean*/):

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
* A circuit breaker (:class:`Breaker`) fails calls fast while the primary
  database is known down: a call that loses or cannot get its connection starts
  a probe of ``default``; while the probes fail, a call waits for the next
  probe (one at a time, started at once if none runs) at most
  ``ADMIT_WAIT_SECONDS``, and is refused with :class:`DatabaseUnavailable` (a
  503 through the middleware) unless it succeeded, instead of each call
  waiting out a connect or pool timeout of its own. The first call after the
  database answers again runs, so recovery costs no request; with no calls,
  the breaker probes every ``PROBE_INTERVAL_SECONDS``. Closed, it costs one bool check a call. It
  guards the primary only: a call whose reads fail on a replica runs again on
  the primary (``mymoviedb.routers.falling_back``), and the replica is skipped
  until it answers again.
* Callers pass plain functions (selectors, services) that return evaluated
  data, so no lazy QuerySet crosses back to the loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from channels.db import database_sync_to_async
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections

from mymoviedb import reconnect, replication, routers
from mymoviedb.reconnect import lost_connection

P = ParamSpec("P")
R = TypeVar("R")

logger = logging.getLogger(__name__)

THREAD_NAME_PREFIX = "orm"
# How long close() waits for every ORM thread to close its own connections.
CLOSE_TIMEOUT_SECONDS = 10.0
# While the database is down, how often the breaker tries to reach it: the
# recovery lags the database by at most this long. A refused connect costs ~1 ms.
PROBE_INTERVAL_SECONDS = 0.25
# While it is down, a call waits this long at most for a probe's answer: a refused
# connect answers in ~1 ms and a fresh one in a few, but a pool's checkout waits
# out its timeout (DB_POOL=1) and an unreachable host the connect timeout.
ADMIT_WAIT_SECONDS = 0.1


def use_api_connection_policy(environ: MutableMapping[str, str] = os.environ) -> None:
    """Before ``django.setup()`` in an API process: one connection per ORM thread,
    kept open (``DB_POOL=0``), unless ``DB_POOL`` is set (the module docstring)."""
    environ.setdefault("DB_POOL", "0")


class BridgeOverloaded(Exception):
    """More ORM calls are pending than the bridge accepts."""


class DatabaseUnavailable(OperationalError):
    """Refused at once: the primary database did not answer the breaker's last probe.

    An ``OperationalError``, so every caller that maps a down database to a 503
    (aioapi's middleware, the export stream) maps this one too.
    """


def ping_primary() -> None:
    """``SELECT 1`` on the primary (on an ORM thread): raises if it cannot answer."""
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


class Breaker:
    """Fails the bridge's calls fast while the primary database is known down.

    Runs on the event loop. ``open`` is read on every call; only a probe (one at
    a time, on an ORM thread) opens or closes it.
    """

    def __init__(
        self, probe: Callable[[], Awaitable[None]], *, interval: float = PROBE_INTERVAL_SECONDS
    ) -> None:
        self.open = False
        self.refused = 0  # calls refused while open
        self.opened = 0  # times it opened
        self.interval = interval
        self._probe = probe
        self._since = 0.0
        self._probing: asyncio.Task[bool] | None = None
        self._watching: asyncio.Task[None] | None = None

    async def admit(self) -> None:
        """While open: wait for a probe (the running one, or one started now);
        raise :class:`DatabaseUnavailable` unless it found the database back."""
        try:
            async with asyncio.timeout(ADMIT_WAIT_SECONDS):
                back = await asyncio.shield(self._probe_once())
        except TimeoutError:
            back = False
        if not back:
            self.refused += 1
            down = time.monotonic() - self._since
            raise DatabaseUnavailable(
                f"the database has not answered for {down:.1f} s (probed every {self.interval:g} s)"
            )

    def suspect(self, error: BaseException) -> None:
        """A call failed: if its connection did, watch the database (unless watching)."""
        if self._watching is None and lost_connection(error):
            self._watching = asyncio.get_running_loop().create_task(self._watch(), name="db-watch")

    def stop(self) -> None:
        """Cancel a running probe; callable from any thread (the bridge closes off the loop)."""
        for task in (self._watching, self._probing):
            if task is not None and not task.get_loop().is_closed():
                task.get_loop().call_soon_threadsafe(task.cancel)

    def _probe_once(self) -> asyncio.Task[bool]:
        if self._probing is None:
            self._probing = asyncio.get_running_loop().create_task(
                self._run_probe(), name="db-probe"
            )
        return self._probing

    async def _run_probe(self) -> bool:
        try:
            await self._probe()
        except (OperationalError, InterfaceError) as error:
            if not self.open:
                self.open, self._since = True, time.monotonic()
                self.opened += 1
                logger.warning("database down (%s): refusing calls at once", error)
            return False
        finally:
            self._probing = None
        if self.open:
            down = time.monotonic() - self._since
            logger.warning("database back after %.1f s: accepting calls", down)
        self.open = False
        return True

    async def _watch(self) -> None:
        # Probe first, open only on a failed probe: one broken connection of a
        # healthy database (a restarted proxy, an idle timeout) refuses nothing.
        try:
            while True:
                if await asyncio.shield(self._probe_once()):
                    return
                await asyncio.sleep(self.interval)
        finally:
            self._watching = None


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

        Raises :class:`DatabaseUnavailable` while the breaker is open and a probe fails.
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
