"""The circuit breaker of the ORM bridge (aioapi.db): fail fast while the primary
database is known down.

A call that loses or cannot get its connection starts a probe of ``default``;
while the probes fail, a call waits for the next probe (one at a time, started
at once if none runs) at most ``ADMIT_WAIT_SECONDS``, and is refused with
:class:`DatabaseUnavailable` (a 503 through the middleware) unless it
succeeded, instead of each call waiting out a connect or pool timeout of its
own. The first call after the database answers again runs, so recovery costs
no request; with no calls, the breaker probes every ``PROBE_INTERVAL_SECONDS``.
Closed, it costs one bool check a call. It guards the primary only: a replica
that fails is mymoviedb.routers' business.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from django.db import InterfaceError, OperationalError

from mymoviedb.reconnect import lost_connection

logger = logging.getLogger(__name__)

# While the database is down, how often the breaker tries to reach it: the
# recovery lags the database by at most this long. A refused connect costs ~1 ms.
PROBE_INTERVAL_SECONDS = 0.25
# While it is down, a call waits this long at most for a probe's answer: a refused
# connect answers in ~1 ms and a fresh one in a few, but a pool's checkout waits
# out its timeout (DB_POOL=1) and an unreachable host the connect timeout.
ADMIT_WAIT_SECONDS = 0.1


class DatabaseUnavailable(OperationalError):
    """Refused at once: the primary database did not answer the breaker's last probe.

    An ``OperationalError``, so every caller that maps a down database to a 503
    (aioapi's middleware, the export stream) maps this one too.
    """


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
