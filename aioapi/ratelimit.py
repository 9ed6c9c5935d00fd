"""Per-client limits on failed authentications (sliding windows of one minute).

Tokens carry 256 bits of randomness, so guessing is hopeless anyway; the limits
keep a client that keeps sending bad tokens from testing any one token faster
than ``per_window`` times a minute, and flag it in the logs. They never refuse
a valid token because of other tokens' failures: curators behind one NAT share
an address, and one of them with a revoked token must not lock out the rest
(aioapi/auth.py explains what a guesser can still learn).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

WINDOW_SECONDS = 60.0
# Bounded memory under a spray of addresses (or token ids): the least recently
# failing key is forgotten first.
MAX_TRACKED_CLIENTS = 50_000


class SlidingWindows:
    """Failures per key within the last ``window`` seconds, at most ``per_window`` kept."""

    def __init__(
        self,
        per_window: int,
        *,
        window: float = WINDOW_SECONDS,
        max_keys: int = MAX_TRACKED_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_window = per_window
        self.window = window
        self.max_keys = max_keys
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, key: str) -> int | None:
        """Seconds until ``key`` is under the limit again, or ``None`` if it is now."""
        failures = self._failures.get(key)
        if failures is None:
            return None
        now = self._clock()
        self._expire(failures, now)
        if not failures:
            del self._failures[key]
            return None
        if len(failures) < self.per_window:
            return None
        return max(1, math.ceil(failures[0] + self.window - now))

    def failed(self, key: str) -> None:
        """Record one failure of ``key``."""
        now = self._clock()
        failures = self._failures.setdefault(key, deque())
        self._failures.move_to_end(key)
        self._expire(failures, now)
        failures.append(now)
        while len(failures) > self.per_window:
            failures.popleft()
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def __len__(self) -> int:
        return len(self._failures)

    def _expire(self, failures: deque[float], now: float) -> None:
        while failures and failures[0] <= now - self.window:
            failures.popleft()


class FailedAuthLimiter:
    """Failed authentications counted per client address and per token a client tries.

    * :meth:`retry_after` (per address) says whether the client is limited: its
      failures are then answered 429 instead of 401.
    * :meth:`token_retry_after` (per address and token id) says whether this client
      has used up its attempts at one token: those are refused unchecked.
    """

    def __init__(
        self,
        per_window: int,
        *,
        window: float = WINDOW_SECONDS,
        max_clients: int = MAX_TRACKED_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_window = per_window
        self._clients = SlidingWindows(per_window, window=window, max_keys=max_clients, clock=clock)
        self._tokens = SlidingWindows(per_window, window=window, max_keys=max_clients, clock=clock)

    def retry_after(self, client: str) -> int | None:
        """Seconds until ``client`` is under the limit, or ``None`` if it is now."""
        return self._clients.retry_after(client)

    def token_retry_after(self, client: str, token_id: str) -> int | None:
        """Seconds until ``client`` may try ``token_id`` again, or ``None`` if it may now."""
        return self._tokens.retry_after(_token_key(client, token_id))

    def failed(self, client: str, token_id: str | None = None) -> None:
        """Record one failed authentication of ``client`` (with ``token_id``, if known)."""
        self._clients.failed(client)
        if token_id is not None:
            self._tokens.failed(_token_key(client, token_id))

    @property
    def tracked_clients(self) -> int:
        return len(self._clients)


def _token_key(client: str, token_id: str) -> str:
    # A token id never holds a space (aioapi.auth.parse_bearer), so the last space
    # splits a key unambiguously: no address and token pair can pose as another.
    return f"{client} {token_id}"
