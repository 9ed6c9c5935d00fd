"""The API worker's listening sockets accept one connection per turn of the loop
(aioapi.worker.accept_in_turns), so that Gunicorn's workers share a burst of new
connections instead of the first awake taking it all."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from aioapi.worker import accept_in_turns

BURST = 4


class Closing(asyncio.Protocol):
    """Closes each connection the server accepted, once the loop has made it."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


@contextmanager
def burst(port: int) -> Iterator[list[socket.socket]]:
    # Connected by the kernel before anyone accepts: BURST connections queued.
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(BURST)]
    try:
        yield clients
    finally:
        for client in clients:
            client.close()


def _listener() -> socket.socket:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    listener.setblocking(False)
    return listener


def _accept_once(loop: asyncio.AbstractEventLoop, listener: socket.socket) -> None:
    # What the loop does once per turn the listener is ready: run its reader.
    reader = loop._selector.get_key(listener.fileno()).data[0]  # type: ignore[attr-defined]
    reader._run()


def _left_in_queue(listener: socket.socket) -> int:
    left = 0
    while True:
        try:
            connection, _ = listener.accept()
        except BlockingIOError:
            return left
        connection.close()
        left += 1


async def _queued_after_one_turn(in_turns: bool) -> int:
    loop = asyncio.get_running_loop()
    listener = _listener()
    server = await loop.create_server(Closing, sock=listener, backlog=128)
    try:
        if in_turns:
            assert accept_in_turns(loop, listener)
        with burst(listener.getsockname()[1]):
            _accept_once(loop, listener)
            left = _left_in_queue(listener)
            # The accepted connections are made (then closed) in tasks of their own.
            await asyncio.sleep(0.05)
            return left
    finally:
        server.close()
        await server.wait_closed()


async def test_asyncio_alone_takes_the_whole_burst_at_once() -> None:
    # The behaviour accept_in_turns changes: without it one turn empties the queue.
    assert await _queued_after_one_turn(in_turns=False) == 0


async def test_a_turn_accepts_one_connection() -> None:
    assert await _queued_after_one_turn(in_turns=True) == BURST - 1


async def test_a_listener_the_loop_does_not_serve_is_left_alone() -> None:
    loop = asyncio.get_running_loop()
    listener = _listener()
    try:
        assert not accept_in_turns(loop, listener)
    finally:
        listener.close()
