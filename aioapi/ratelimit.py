"""Per-client limit on failed authentications (a sliding window of one minute).

Tokens carry 256 bits of randomness, so guessing is hopeless anyway; the limit
keeps a client that keeps sending bad tokens from costing a database round trip
each time and flags it in the logs.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

WINDOW_SECONDS = 60.0
# Bounded memory under a spray of addresses: the least recently failing client
# is forgotten first.
MAX_TRACKED_CLIENTS = 50_000


class FailedAuthLimiter:
    """Counts failed authentications per client and says how long to back off."""

    def __init__(
        self,
        per_window: int,
        *,
        window: float = WINDOW_SECONDS,
        max_clients: int = MAX_TRACKED_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_window = per_window
        self.window = window
        self.max_clients = max_clients
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, client: str) -> int | None:
        """Seconds ``client`` must wait before trying again, or ``None`` if it may try."""
        failures = self._failures.get(client)
        if failures is None:
            return None
        now = self._clock()
        self._expire(failures, now)
        if not failures:
            del self._failures[client]
            return None
        if len(failures) < self.per_window:
            return None
        return max(1, math.ceil(failures[0] + self.window - now))

    def failed(self, client: str) -> None:
        """Record one failed authentication of ``client``."""
        now = self._clock()
        failures = self._failures.setdefault(client, deque())
        self._failures.move_to_end(client)
        self._expire(failures, now)
        failures.append(now)
        while len(failures) > self.per_window:
            failures.popleft()
        while len(self._failures) > self.max_clients:
            self._failures.popitem(last=False)

    @property
    def tracked_clients(self) -> int:
        return len(self._failures)

    def _expire(self, failures: deque[float], now: float) -> None:
        while failures and failures[0] <= now - self.window:
            failures.popleft()
