"""The Gunicorn worker of aioapi: aiohttp's worker that drains before it stops.

It runs asyncio's own event loop, not uvloop, on purpose. uvloop runs libuv
without the GIL and takes the GIL back for every callback (each accepted
connection, each read), so with the ORM threads busy a burst of new connections
waits in the listen queue; asyncio's loop holds the GIL while it runs its
callbacks and releases it only in ``select``, so it accepts a whole burst at
once, for a much shorter tail at a few per cent fewer requests per second
(bench/results/2026-12-06-lean-16-threads-one-statement-detail/NOTES.md).
:class:`DrainingUVLoopWorker` is the same worker on uvloop, to compare.

When aiohttp's worker stops (SIGTERM from a reload, a rolling restart or a
shutdown; recycling after ``max_requests``) it closes every idle keep-alive
connection at once. A client whose next request is already on its way on such a
connection gets a reset instead of an answer: under load, a reload lost about 45
requests of clients that do not resend (tests/test_deploy_reload.py).

This worker drains first. It stops accepting (the other workers, or the ones a
reload starts, take the new connections; the kernel queues them meanwhile), and
goes on serving the connections it has, answering each request with
``Connection: close``, so every client gets its answer and opens its next
connection elsewhere. It waits until every connection is gone that way (or
closed idle by its client; event streams are ended at once, and their clients
reconnect elsewhere), at most half the graceful timeout, and only then
stops as aiohttp's worker does: in-flight requests finish within the graceful
timeout, what is left is closed. SIGINT and SIGQUIT still stop at once.

Why wait for the connections rather than a fixed time:
closing a keep-alive connection its client holds idle races with that client's
next request, which then meets a reset. A connection its own client closes, or
that ends with an answer saying ``Connection: close``, has no such race
(tests/test_deploy_reload.py holds one idle through a drain).

Connections are accepted one per turn of the loop (:data:`ACCEPT_PER_TURN`), so
that the workers share a burst of new connections instead of the first awake
taking it all.

The reload test lost 1 to 3 requests in about one run of eight (and once in CI)
to another race, at the very start of the drain: see ``_drain_then_stop``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any

from aiohttp import hdrs, web
from aiohttp.worker import GunicornUVLoopWebWorker, GunicornWebWorker

from aioapi.protocol import ApiAppRunner, ApiServer

# How many queued connections a worker accepts each time the listening socket is
# ready. asyncio accepts up to the site's backlog (aiohttp's 128) at once, so the
# worker that woke first took a whole burst: at 64 connections one of two workers
# often held all 64 and the machine served at one process's speed, half the
# requests/s of a shared burst (bench/results/2026-12-07-accept-in-turns/). One
# per turn: every worker woken by a connection takes one, then they take turns.
ACCEPT_PER_TURN = 1
# Many loop iterations: long enough for every connection accepted before a
# draining worker stopped accepting to have joined its server.
ACCEPTED_JOIN_SECONDS = 0.1


class DrainingWorker(GunicornWebWorker):  # type: ignore[misc]
    """``worker_class = "aioapi.worker.DrainingWorker"`` (deploy/gunicorn_api.conf.py)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.runner: web.AppRunner | None = None
        self.draining: asyncio.Task[None] | None = None
        self.responses = 0
        self.backlog_restored = False
        # Recycling is counted here instead, so that it drains too.
        self.recycle_after: int = self.max_requests  # type: ignore[has-type]
        self.max_requests = 0

    def load_wsgi(self) -> None:
        """Wrap the app factory: build the runner here, to stop its sites when draining."""
        super().load_wsgi()
        factory: Callable[[], Awaitable[web.Application]] = self.wsgi  # type: ignore[has-type]

        async def runner() -> web.AppRunner:
            app = await factory()
            app.on_response_prepare.append(self._on_response_prepare)
            # The runner aiohttp's worker would build (aiohttp/worker.py) for an app,
            # with the API's connections (malformed requests as problems, header timeout).
            self.runner = ApiAppRunner(
                app,
                logger=self.log,
                keepalive_timeout=self.cfg.keepalive,
                access_log=self.log.access_log if self.cfg.accesslog else None,
                access_log_format=self._get_valid_log_format(self.cfg.access_log_format),
                shutdown_timeout=self.cfg.graceful_timeout / 100 * 95,
            )
            return self.runner

        self.wsgi = runner

    def notify(self) -> None:
        """The heartbeat, first sent once the sites listen: restore Gunicorn's backlog.

        aiohttp's sites listen again on Gunicorn's sockets with their own backlog
        (128), so a burst of connections overflowed the queue and waited for SYN
        retransmissions (1 s, 3 s) however large ``backlog`` was.
        """
        super().notify()
        if not self.backlog_restored:
            for listener in self.sockets:
                listener.sock.listen(self.cfg.backlog)
                if not accept_in_turns(self.loop, listener.sock):
                    self.log.warning("accepting as the loop does: %r", self.loop)
            self.backlog_restored = True

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """SIGTERM: drain, then stop (aiohttp's worker stops at once)."""
        self._drain()

    async def _on_response_prepare(
        self, request: web.Request, response: web.StreamResponse
    ) -> None:
        self.responses += 1
        if self.recycle_after and self.responses > self.recycle_after and not self.draining:
            self.log.info("Max requests, draining: %s", self)
            self._drain()
        if self.draining:
            # The header is already computed when this signal runs: set both.
            response.force_close()
            response.headers[hdrs.CONNECTION] = "close"

    def _drain(self) -> None:
        if self.draining is None:
            self.draining = self.loop.create_task(self._drain_then_stop())

    async def _drain_then_stop(self) -> None:
        if self.runner is not None:
            # Stop accepting, and close the sites only once the connections already
            # accepted have joined the server: asyncio makes an accepted connection's
            # transport in a task of its own, and on a closed server that fails
            # (Python 3.11's Server._attach asserts), resetting the connection under
            # the request its client sent (silently: asyncio says so in debug mode only).
            for listener in self.sockets:
                self.loop.remove_reader(listener.sock.fileno())
            await asyncio.sleep(ACCEPTED_JOIN_SECONDS)
            for site in self.runner.sites:
                await site.stop()
            # on_shutdown, aiohttp's hook for ending long-lived connections: the event
            # streams end now, and their clients reconnect to a worker that stays.
            await self.runner.shutdown()
            if isinstance(self.runner.server, ApiServer):
                # Half the graceful timeout at most: the rest is for in-flight requests.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.cfg.graceful_timeout / 2):
                        await self.runner.server.no_connections.wait()
        # What aiohttp's worker does on SIGTERM: its serving loop ends within a
        # second, then the runner finishes in-flight requests and closes the rest.
        self.alive = False


def accept_in_turns(
    loop: asyncio.AbstractEventLoop, listener: socket.socket, per_turn: int = ACCEPT_PER_TURN
) -> bool:
    """Have ``loop`` accept at most ``per_turn`` connections on ``listener`` each time
    it is ready; False where that cannot be done (uvloop, or a listener not served).

    asyncio has no public setting for it: its selector loops pass a server's
    ``backlog`` both to ``listen()`` and, as the batch, to the accept callback they
    register (``BaseSelectorEventLoop._accept_connection(protocol_factory, sock,
    sslcontext, server, backlog, ...)``). This registers that callback again with
    the batch replaced; tests/test_aioapi_accept.py pins it on the loop in use.
    """
    selector = getattr(loop, "_selector", None)
    if selector is None:
        return False
    try:
        reader = selector.get_key(listener.fileno()).data[0]
        callback, arguments = reader._callback, list(reader._args)
    except (KeyError, AttributeError, IndexError, TypeError):
        return False
    if getattr(callback, "__name__", "") != "_accept_connection" or len(arguments) < 5:
        return False
    arguments[4] = per_turn
    loop.remove_reader(listener.fileno())
    loop.add_reader(listener.fileno(), callback, *arguments)
    return True


class DrainingUVLoopWorker(DrainingWorker, GunicornUVLoopWebWorker):  # type: ignore[misc]
    """:class:`DrainingWorker` on uvloop's event loop (see the module's docstring):
    aiohttp's GunicornUVLoopWebWorker supplies ``init_process``, which installs uvloop."""
