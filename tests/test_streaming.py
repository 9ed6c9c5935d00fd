"""aioapi.streaming: back-pressure, stopping, and errors, with plain generators as producers."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from django.db import connection

from aioapi.db import BridgeOverloaded, OrmBridge
from aioapi.streaming import QUEUE_CHUNKS, stream_from_thread


@pytest.fixture
def bridge() -> Iterator[OrmBridge]:
    bridge = OrmBridge(threads=2, max_pending=2)
    yield bridge
    bridge.close()


@dataclass
class Producer:
    """A generator that counts what it made and notes how, and on which thread, it ended."""

    limit: int | None = None
    delay: float = 0.0
    fail_after: int | None = None
    made: int = 0
    closed: threading.Event = field(default_factory=threading.Event)
    thread: str = ""

    def chunks(self) -> Iterator[bytes]:
        self.thread = threading.current_thread().name
        try:
            while self.limit is None or self.made < self.limit:
                if self.fail_after is not None and self.made == self.fail_after:
                    raise ValueError(f"failed after {self.made} chunks")
                time.sleep(self.delay)
                self.made += 1
                yield b"chunk %d\n" % self.made
        finally:
            self.closed.set()


async def test_every_chunk_arrives_in_order(bridge: OrmBridge) -> None:
    producer = Producer(limit=50)
    async with stream_from_thread(bridge, producer.chunks) as pipe:
        received = [await pipe.first()] + [chunk async for chunk in pipe]
    assert received == [b"chunk %d\n" % number for number in range(1, 51)]
    assert pipe.error is None
    assert producer.thread.startswith("orm")
    assert bridge.pending == 0


async def test_a_reader_that_stops_reading_stops_the_producer(bridge: OrmBridge) -> None:
    producer = Producer()
    async with stream_from_thread(bridge, producer.chunks) as pipe:
        await pipe.first()
        await asyncio.sleep(0.3)
        # The queue is full, one chunk waits to enter it: nothing more is made.
        assert producer.made == QUEUE_CHUNKS + 2
        iterator = aiter(pipe)
        for _ in range(10):
            await anext(iterator)
        await asyncio.sleep(0.3)
        assert producer.made == QUEUE_CHUNKS + 12


async def test_leaving_stops_a_blocked_producer_and_frees_its_thread(bridge: OrmBridge) -> None:
    producer = Producer()
    started = time.monotonic()
    async with stream_from_thread(bridge, producer.chunks) as pipe:
        await pipe.first()
        await asyncio.sleep(0.2)
        assert bridge.pending == 1
        started = time.monotonic()
    assert time.monotonic() - started < 1.0
    assert producer.closed.is_set()  # the generator's finally ran: its resources are freed
    assert bridge.pending == 0


async def test_leaving_stops_a_slow_producer_between_chunks(bridge: OrmBridge) -> None:
    producer = Producer(delay=0.2)
    async with stream_from_thread(bridge, producer.chunks) as pipe:
        await pipe.first()
    assert producer.closed.is_set()
    assert producer.made <= 2
    assert bridge.pending == 0


async def test_a_cancelled_reader_still_stops_the_producer(bridge: OrmBridge) -> None:
    producer = Producer()

    async def reader() -> None:
        async with stream_from_thread(bridge, producer.chunks) as pipe:
            await pipe.first()
            await asyncio.sleep(10)

    task = asyncio.create_task(reader())
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert producer.closed.is_set()
    assert bridge.pending == 0


async def test_an_error_before_the_first_chunk_is_raised_by_first(bridge: OrmBridge) -> None:
    producer = Producer(fail_after=0)
    async with stream_from_thread(bridge, producer.chunks) as pipe:
        with pytest.raises(ValueError, match="failed after 0 chunks"):
            await pipe.first()
    assert bridge.pending == 0


async def test_an_error_later_ends_the_chunks_and_is_kept(bridge: OrmBridge) -> None:
    producer = Producer(fail_after=3)
    async with stream_from_thread(bridge, producer.chunks) as pipe:
        received = [await pipe.first()] + [chunk async for chunk in pipe]
    assert received == [b"chunk 1\n", b"chunk 2\n", b"chunk 3\n"]
    assert isinstance(pipe.error, ValueError)
    assert pipe.chunks_sent == 3


async def test_an_overloaded_bridge_is_raised_by_first(bridge: OrmBridge) -> None:
    busy = [Producer(), Producer()]
    async with (
        stream_from_thread(bridge, busy[0].chunks) as first,
        stream_from_thread(bridge, busy[1].chunks) as second,
    ):
        await first.first()
        await second.first()
        async with stream_from_thread(bridge, Producer().chunks) as third:
            with pytest.raises(BridgeOverloaded):
                await third.first()
    assert bridge.pending == 0


# A query that runs for minutes unless it is cancelled (valid SQL on both databases).
COUNT_TO_A_BILLION = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000)"
    " SELECT count(*) FROM c"
)


def endless_query() -> Iterator[bytes]:
    with connection.cursor() as cursor:
        cursor.execute(COUNT_TO_A_BILLION)
        yield b"%d" % cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
async def test_a_reader_that_gives_up_cancels_a_long_query_within_a_second(
    bridge: OrmBridge,
) -> None:
    async with stream_from_thread(bridge, endless_query) as pipe:
        pipe.watch(lambda: True)  # the client is gone
        with pytest.raises(ConnectionResetError):
            await pipe.first()
        gone = time.monotonic()
        assert bridge.pending == 1  # still inside the query
    assert time.monotonic() - gone < 1.0
    assert bridge.pending == 0
