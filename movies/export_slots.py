"""A per-process cap on running exports, shared in shape by both servers.

An export holds one thread (aioapi's ORM bridge thread, or a Gunicorn gthread
thread for the Django view) and one pooled database connection for as long as
it streams: seconds to minutes. Uncapped, a handful of downloads would take every
thread and connection of a process and the rest of the API would wait behind
them. Past the cap an export is refused at once (never queued: a queued download
would still hold its client's connection and gain nothing) with the same 503
problem on both servers.
"""

from __future__ import annotations

import threading
from types import TracebackType

from movies.problems import Problem, retry_later

# An export lasts seconds to minutes, so a client told "1" would mostly be refused
# again; ten seconds lets a short export finish without leaving a slot idle for long.
EXPORT_RETRY_AFTER_SECONDS = 10
EXPORTS_BUSY_DETAIL = "Too many exports are running on this server; retry later."


def exports_busy() -> Problem:
    """The 503 of an export refused past the cap (the same bytes on both servers)."""
    return retry_later(503, EXPORTS_BUSY_DETAIL, seconds=EXPORT_RETRY_AFTER_SECONDS)


class ExportSlots:
    """At most ``limit`` exports at once in this process; past it, refuse at once.

    Thread-safe: Django's threads share one; on aioapi's loop the lock is never
    contended and is held for a few instructions.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"an export limit must be at least 1, not {limit}")
        self.limit = limit
        self._lock = threading.Lock()
        self._running = 0
        self._refused = 0

    @property
    def running(self) -> int:
        """Exports holding a slot now."""
        return self._running

    @property
    def refused(self) -> int:
        """Exports refused since start-up."""
        return self._refused

    def acquire(self) -> ExportSlot:
        """A slot for one export; raise the 503 problem when all are taken."""
        with self._lock:
            if self._running >= self.limit:
                self._refused += 1
                raise exports_busy()
            self._running += 1
        return ExportSlot(self)

    def _release(self) -> None:
        with self._lock:
            self._running -= 1


class ExportSlot:
    """One export's place under the cap; ``release()`` more than once is harmless."""

    def __init__(self, slots: ExportSlots) -> None:
        self._slots: ExportSlots | None = slots

    def release(self) -> None:
        # Idempotent: a response can be closed by its last chunk and again by the server.
        slots, self._slots = self._slots, None
        if slots is not None:
            slots._release()

    def __enter__(self) -> ExportSlot:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()
