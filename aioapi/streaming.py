"""The pipe from a generator on an ORM thread to a response on the event loop.

A streamed response (the export) produces its bytes with a plain generator that
reads the database; it must run on a bridge thread, and the loop must write what
it yields. :func:`stream_from_thread` runs the generator through
``OrmBridge.run`` and hands its chunks over a bounded ``asyncio.Queue``:

* Back-pressure: the producer waits for room in the queue
  (``run_coroutine_threadsafe(queue.put(...)).result()``), and the loop takes a
  chunk only once the previous one is written to the client. A slow client
  therefore slows the database read, and at most ``QUEUE_CHUNKS`` chunks wait in
  memory.
* Stopping: leaving the ``async with`` block (the client went away, the handler
  was cancelled, or it finished) sets a stop flag. The producer checks it
  between chunks and every ``STOP_POLL_SECONDS`` while it waits for room, then
  closes the generator, which ends its transaction and cursor. A producer still
  busy after ``INTERRUPT_AFTER_SECONDS`` is inside a long query (a big sort, a
  lock wait): its running statements are cancelled. The block returns only once
  the thread is free again, so the bridge's count of pending calls and the
  pool's connections are back when the handler ends.
* A reader that waits for a chunk can :meth:`ChunkPipe.watch` its client: when
  the client is gone, the wait ends with ``ConnectionResetError`` instead of
  lasting as long as the query.
* A client that stays connected but reads nothing would hold the handler, and so
  the producer's thread, forever: :func:`write_or_stall` ends a write once the
  socket has taken no byte for the write timeout.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import struct
import sys
import termios
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import ParamSpec

from django.db import connections

from aioapi.db import OrmBridge

P = ParamSpec("P")

# A few chunks absorb the jitter between reading and writing; more only hold memory.
QUEUE_CHUNKS = 4
STOP_POLL_SECONDS = 0.1
INTERRUPT_AFTER_SECONDS = 0.5
CANCEL_TIMEOUT_SECONDS = 2.0
# How often a blocked write looks whether the client took any byte.
STALL_POLL_SECONDS = 1.0
# Linux's ioctl for a socket's bytes not yet acknowledged by the peer (SIOCOUTQ).
_OUTQ: int | None = getattr(termios, "TIOCOUTQ", None) if sys.platform == "linux" else None

logger = logging.getLogger(__name__)


class ClientStalled(Exception):
    """The client read nothing for the write timeout."""


async def write_or_stall(
    transport: asyncio.BaseTransport | None, write: Awaitable[None], stall_seconds: float
) -> None:
    """Await ``write``; raise :class:`ClientStalled` once ``transport`` has sent no
    byte for ``stall_seconds``.

    A timeout on the whole write would also end a slow client that keeps reading (a
    chunk is hundreds of kilobytes); this one measures progress, as nginx's
    ``send_timeout`` does: the transport's buffer must shrink within each period.
    """
    pending = asyncio.ensure_future(write)
    period = min(STALL_POLL_SECONDS, stall_seconds)
    buffered: int | None = None  # measured once the write has queued its bytes
    idle = 0.0
    while True:
        done, _ = await asyncio.wait({pending}, timeout=period)
        if done:
            return pending.result()
        now = _buffered(transport)
        idle = idle + period if buffered is not None and now >= buffered else 0.0
        buffered = now
        if idle >= stall_seconds:
            pending.cancel()
            with suppress(asyncio.CancelledError, ConnectionError):
                await pending
            raise ClientStalled(f"the client read nothing for {stall_seconds:g} s")


def _buffered(transport: asyncio.BaseTransport | None) -> int:
    """Bytes written and not yet taken by the client: the transport's buffer and,
    on Linux, the socket's unacknowledged bytes (SIOCOUTQ). The kernel reports a
    socket writable only once a third of its send buffer (megabytes) is free, so
    the transport's buffer alone stands still for a slow reader that keeps reading."""
    if not isinstance(transport, asyncio.WriteTransport) or transport.is_closing():
        return 0
    size = transport.get_write_buffer_size()
    sock = transport.get_extra_info("socket")
    if sock is not None and _OUTQ is not None:
        with suppress(OSError):
            size += struct.unpack("i", fcntl.ioctl(sock.fileno(), _OUTQ, b"\0" * 4))[0]
    return size


class ProducerStopped(Exception):
    """The reader went away: the producer must stop."""


@dataclass(frozen=True)
class _End:
    """The last item of a stream; ``error`` is why the producer stopped early."""

    error: BaseException | None = None


class ChunkPipe:
    """A bounded queue of byte chunks, written on a thread and read on the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_chunks: int = QUEUE_CHUNKS) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[bytes | _End] = asyncio.Queue(max_chunks)
        self._stop = threading.Event()
        self._gone: Callable[[], bool] = lambda: False
        self.interrupt: Callable[[], None] = lambda: None
        self.error: BaseException | None = None
        self.chunks_sent = 0

    # The producer's side: called on the ORM thread.

    def put(self, item: bytes | _End) -> None:
        """Wait for room and queue ``item``; raise :class:`ProducerStopped` once stopped."""
        if self._stop.is_set():
            raise ProducerStopped
        queued = asyncio.run_coroutine_threadsafe(self._queue.put(item), self._loop)
        while True:
            try:
                queued.result(timeout=STOP_POLL_SECONDS)
                return
            except TimeoutError:
                if self._stop.is_set():
                    queued.cancel()
                    raise ProducerStopped from None

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    # The reader's side: called on the loop.

    def watch(self, gone: Callable[[], bool]) -> None:
        """Give up waiting for a chunk (``ConnectionResetError``) once ``gone()`` is true."""
        self._gone = gone

    def stop(self) -> None:
        """Tell the producer to stop; drop what it queued, which wakes a waiting put."""
        self._stop.set()
        while not self._queue.empty():
            self._queue.get_nowait()

    async def finish(self, error: BaseException) -> None:
        """End the stream with ``error`` from the loop (the producer never ran)."""
        if not self.stopped:
            await self._queue.put(_End(error))

    async def first(self) -> bytes:
        """The first chunk; raise the producer's error if it failed before any.

        Called before the response starts, so that such an error can still be
        answered with its own status (503 for a database that is down).
        """
        item = await self._get()
        if isinstance(item, _End):
            if item.error is not None:
                raise item.error
            return b""
        self.chunks_sent += 1
        return item

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._rest()

    async def _rest(self) -> AsyncIterator[bytes]:
        # After the first chunk the response has started: an error is kept in
        # ``error`` for the handler, which ends the response without completing it.
        while True:
            item = await self._get()
            if isinstance(item, _End):
                self.error = item.error
                return
            self.chunks_sent += 1
            yield item

    async def _get(self) -> bytes | _End:
        with suppress(asyncio.QueueEmpty):
            return self._queue.get_nowait()  # the usual case: the producer is ahead
        while True:
            try:
                return await asyncio.wait_for(self._queue.get(), STOP_POLL_SECONDS)
            except TimeoutError:
                if self._gone():
                    raise ConnectionResetError("the client went away") from None


def _canceller() -> Callable[[], None]:
    """Made on the ORM thread: cancels, from any thread, what that thread's
    connections are running (psycopg's and sqlite3's cancels are thread-safe)."""
    wrappers = [connections[alias] for alias in connections]

    def cancel() -> None:
        for wrapper in wrappers:
            raw = wrapper.connection
            if hasattr(raw, "cancel_safe"):  # psycopg: a cancel request to the server
                raw.cancel_safe(timeout=CANCEL_TIMEOUT_SECONDS)
            elif hasattr(raw, "interrupt"):  # sqlite3
                raw.interrupt()

    return cancel


def _pump(pipe: ChunkPipe, chunks: Iterator[bytes]) -> None:
    """Runs on the ORM thread: move every chunk into the pipe, then the end mark."""
    pipe.interrupt = _canceller()
    error: BaseException | None = None
    try:
        for chunk in chunks:
            pipe.put(chunk)
            if pipe.stopped:
                return
    except ProducerStopped:
        return
    except Exception as failure:  # handed to the loop, which answers or logs it
        error = failure
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()  # a generator's finally blocks run here, on its own thread
    with suppress(ProducerStopped):
        pipe.put(_End(error))


async def _wind_down(pipe: ChunkPipe, producer: asyncio.Task[None]) -> None:
    pipe.stop()
    done, _ = await asyncio.wait({producer}, timeout=INTERRUPT_AFTER_SECONDS)
    if not done:
        logger.info("stream producer still busy after a stop: cancelling its query")
        await asyncio.get_running_loop().run_in_executor(None, pipe.interrupt)
    await producer


@asynccontextmanager
async def stream_from_thread(
    bridge: OrmBridge, produce: Callable[P, Iterator[bytes]], *args: P.args, **kwargs: P.kwargs
) -> AsyncIterator[ChunkPipe]:
    """Run ``produce(*args, **kwargs)`` on an ORM thread; read its chunks from the pipe.

    Leaving the block stops the producer and waits until its thread is free.
    """
    pipe = ChunkPipe(asyncio.get_running_loop())

    def run() -> None:
        _pump(pipe, produce(*args, **kwargs))

    async def supervise() -> None:
        try:
            await bridge.run(run)
        except Exception as error:  # BridgeOverloaded: the producer never started
            await pipe.finish(error)

    producer = asyncio.create_task(supervise())
    try:
        yield pipe
    finally:
        # Shielded: a handler cancelled again meanwhile must still not leave a
        # thread reading for a reader that is gone.
        await asyncio.shield(_wind_down(pipe, producer))
