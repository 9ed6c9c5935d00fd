"""Per-client limits on failed authentications (sliding windows of one minute).

Tokens carry 256 bits of randomness, so guessing is hopeless anyway; the limits
keep a client that keeps sending bad tokens from testing any one token faster
than ``per_window`` times a minute, and flag it in the logs. They never refuse
a valid token because of other tokens' failures: curators behind one NAT share
an address, and one of them with a revoked token must not lock out the rest
(aioapi/auth.py explains what a guesser can still learn).

The failures are rows of the database (``movies.AuthFailure``), not a worker's
memory: a scrape or a guesser reaches any of the workers and replicas, and a
limit kept per worker would let a client try ``per_window`` times per worker.
The database is the one store every process already shares (PostgreSQL in
production; the SQLite file in development, shared by its processes as well),
and a failed authentication already costs a query there; no new service (such
as Redis) to run. Each method runs SQL: call it on an ORM thread (the bridge).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from django.db import DEFAULT_DB_ALIAS

from movies.models import AuthFailure

WINDOW_SECONDS = 60.0
KEY_MAX_LENGTH = AuthFailure._meta.get_field("key").max_length or 320


class FailedAuthLimiter:
    """Failed authentications counted per client address and per token a client tries.

    * :meth:`retry_after` (per address) says whether the client is limited: its
      failures are then answered 429 instead of 401.
    * :meth:`token_retry_after` (per address and token id) says whether this client
      has used up its attempts at one token: those are refused unchecked.

    Each is one indexed query reading at most ``per_window`` rows; :meth:`failed`
    inserts a row per key and deletes every row past the window.
    """

    def __init__(
        self,
        per_window: int,
        *,
        window: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # Wall-clock time: the processes that share the rows share no monotonic clock.
        self.per_window = per_window
        self.window = window
        self._clock = clock

    def retry_after(self, client: str) -> int | None:
        """Seconds until ``client`` is under the limit, or ``None`` if it is now."""
        return self._retry_after(_client_key(client))

    def token_retry_after(self, client: str, token_id: str) -> int | None:
        """Seconds until ``client`` may try ``token_id`` again, or ``None`` if it may now."""
        return self._retry_after(_token_key(client, token_id))

    def failed(self, client: str, token_id: str | None = None) -> None:
        """Record one failed authentication of ``client`` (with ``token_id``, if known)."""
        now = self._clock()
        keys = [_client_key(client)]
        if token_id is not None:
            keys.append(_token_key(client, token_id))
        failures = AuthFailure.objects.using(DEFAULT_DB_ALIAS)
        failures.bulk_create(AuthFailure(key=key, at=now) for key in keys)
        failures.filter(at__lte=now - self.window).delete()

    def _retry_after(self, key: str) -> int | None:
        now = self._clock()
        # The newest per_window failures within the window: the limit is reached when
        # there are that many, and lifted when the oldest of them leaves the window.
        # From the primary, never a replica: a lagging count would let a guesser
        # past the limit.
        recent = list(
            AuthFailure.objects.using(DEFAULT_DB_ALIAS)
            .filter(key=key, at__gt=now - self.window)
            .order_by("-at")
            .values_list("at", flat=True)[: self.per_window]
        )
        if len(recent) < self.per_window:
            return None
        return max(1, math.ceil(recent[-1] + self.window - now))


def _client_key(client: str) -> str:
    return client[:KEY_MAX_LENGTH]


def _token_key(client: str, token_id: str) -> str:
    # A token id never holds a space (aioapi.auth.parse_bearer), so the last space
    # splits a key unambiguously: no address and token pair can pose as another.
    return f"{client} {token_id}"[:KEY_MAX_LENGTH]
