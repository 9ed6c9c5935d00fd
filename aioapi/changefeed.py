"""The change feed of one API worker: what ``GET /api/events`` streams.

Each change the listener receives becomes a server-sent event, kept in a
window of the last ``events_window`` events for ``Last-Event-ID`` resume. Event
ids come from the database (movies.changes), and PostgreSQL delivers
notifications to every listener in the same order, so a client may resume on
any worker. An id that is not in the window (too old, or from before this
worker's listener last connected) gets a ``reload`` event: refetch everything.

Runs on the event loop only.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable

import orjson

from movies.changes import Change

logger = logging.getLogger(__name__)

# A stream's queue holds the replayed window plus this many new events; a client
# that falls further behind is disconnected, and resumes with Last-Event-ID.
QUEUE_SLACK = 256
Frame = bytes
# Put in a stream's queue to end the stream.
END: Frame = b""


def change_frame(change: Change) -> Frame:
    """A change as one event: ``change``, or ``reload`` when anything may have changed."""
    event = b"reload" if change.kind == "all" else b"change"
    head = b"id: %d\n" % change.id if change.id is not None else b""
    return head + b"event: %s\ndata: %s\n\n" % (event, orjson.dumps(change.as_dict()))


def reload_frame(reason: str, last_id: int | None) -> Frame:
    """Tell a client to refetch everything; ``last_id`` is where it may resume from."""
    data = orjson.dumps({"id": last_id, "kind": "all", "reason": reason})
    head = b"id: %d\n" % last_id if last_id is not None else b""
    return head + b"event: reload\ndata: %s\n\n" % data


class ChangeFeed:
    """The window of recent events and the queues of the open streams."""

    def __init__(self, window: int) -> None:
        if window < 1:
            raise ValueError("window must be positive")
        self.window = window
        self.closed = False
        # Called on each subscription: starts the listener if nothing else has.
        self.wake: Callable[[], None] | None = None
        self._events: deque[tuple[int, Frame]] = deque(maxlen=window)
        self._streams: set[asyncio.Queue[Frame]] = set()

    @property
    def streams(self) -> int:
        return len(self._streams)

    @property
    def last_id(self) -> int | None:
        return self._events[-1][0] if self._events else None

    def publish(self, change: Change) -> None:
        """Append ``change`` to the window and send it to every open stream."""
        frame = change_frame(change)
        if change.id is not None:
            self._events.append((change.id, frame))
        self._broadcast(frame)

    def reset(self, reason: str) -> None:
        """Forget the window (notifications may have been missed) and tell every
        open stream to reload."""
        self._events.clear()
        self._broadcast(reload_frame(reason, None))

    def subscribe(self, last_id: int | None) -> asyncio.Queue[Frame]:
        """A new stream's queue: the events after ``last_id`` (or a reload when it
        is not in the window), then every new one; :data:`END` ends it."""
        if self.wake is not None:
            self.wake()
        queue: asyncio.Queue[Frame] = asyncio.Queue()
        if self.closed:
            queue.put_nowait(END)
            return queue
        if last_id is not None:
            backlog = self._after(last_id)
            if backlog is None:
                reason = f"event {last_id} is not among the last {self.window} of this server"
                queue.put_nowait(reload_frame(reason, self.last_id))
            else:
                for frame in backlog:
                    queue.put_nowait(frame)
        self._streams.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Frame]) -> None:
        self._streams.discard(queue)

    def close(self) -> None:
        """End every open stream (graceful shutdown must not wait for them)."""
        self.closed = True
        for queue in list(self._streams):
            self._end(queue)

    def _after(self, last_id: int) -> list[Frame] | None:
        # Newest first: a resuming client is usually close to the end.
        for index in range(len(self._events) - 1, -1, -1):
            if self._events[index][0] == last_id:
                return [frame for _, frame in list(self._events)[index + 1 :]]
        return None

    def _broadcast(self, frame: Frame) -> None:
        for queue in list(self._streams):
            if queue.qsize() >= self.window + QUEUE_SLACK:
                logger.warning("an event stream fell %d events behind: closed", queue.qsize())
                self._end(queue)
            else:
                queue.put_nowait(frame)

    def _end(self, queue: asyncio.Queue[Frame]) -> None:
        while not queue.empty():
            queue.get_nowait()
        queue.put_nowait(END)
        self.unsubscribe(queue)
