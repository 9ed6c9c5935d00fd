"""The API's HTTP connections: malformed requests answered as problems, slow heads cut off.

aiohttp answers a request its parser refuses (a request line or header too long,
too many headers, bytes HTTP does not allow, an unknown method) with a plain-text
``HTTP/1.0 400`` that quotes the offending bytes, logs a traceback per request,
and offers no hook to change either (aio-libs/aiohttp#3287). Nor does it bound
how long a request's head may take to arrive: half-sent headers hold their
connection until the keep-alive timeout, nor how long its body may take: a body
sent a byte a second held its connection (and the handler reading it) for as long
as the client liked. :class:`ApiRequestHandler` does all three,
and :class:`ApiAppRunner` is the runner that makes its connections; both entry
points (``python -m aioapi`` and the Gunicorn worker) serve through it.

The subclasses reach into aiohttp's connection protocol (``RequestHandler`` of
aiohttp 3.14: ``_ErrInfo``, ``_messages``, ``_waiter``, ``_request_count``,
``_task_handler``), so tests/test_hostile_http.py and tests/test_deploy_reload.py
drive real servers over real sockets to pin it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import (
    BadHttpMessage,
    BadHttpMethod,
    BadStatusLine,
    ContentEncodingError,
    HttpProcessingError,
    InvalidHeader,
    InvalidURLError,
    LineTooLong,
)
from aiohttp.streams import EMPTY_PAYLOAD, StreamReader
from aiohttp.web_protocol import RequestHandler, RequestPayloadError, _ErrInfo
from aiohttp.web_request import BaseRequest

from movies.headers import SECURITY_HEADERS
from movies.problems import PROBLEM_CONTENT_TYPE, Problem, internal_error

logger = logging.getLogger(__name__)

# The parser's limits, given to every connection through the app's handler_args.
# A LineTooLong carries only the limit it exceeded, so the two line limits differ
# on purpose: that is how a refusal tells a long request target (414) from a long
# header (431). 8190 is aiohttp's default; nginx's buffers are 8 KiB.
MAX_REQUEST_TARGET_BYTES = 8190
MAX_HEADER_FIELD_BYTES = 8192  # name and value of one header
MAX_HEADERS = 128
PARSER_LIMITS: dict[str, Any] = {
    "max_line_size": MAX_REQUEST_TARGET_BYTES,
    "max_field_size": MAX_HEADER_FIELD_BYTES,
    "max_headers": MAX_HEADERS,
}


# The header-read timeout of the app's connections (API_HEADER_TIMEOUT_SECONDS), set
# by aioapi.app. A key of its own, not the app's settings: this module imports no
# Django, so the bench's raw-pool ceiling is served by the same worker.
HEADER_TIMEOUT = web.AppKey("header_timeout", float)
DEFAULT_HEADER_TIMEOUT_SECONDS = 10.0
# From the end of a request's head to the last byte of its body (API_BODY_TIMEOUT_SECONDS);
# a body read whole in the head's chunk, as almost all are, never starts the timer.
BODY_TIMEOUT = web.AppKey("body_timeout", float)
DEFAULT_BODY_TIMEOUT_SECONDS = 30.0


def problem_response(problem: Problem) -> web.Response:
    """The response of a problem, with its extra headers (Allow, Retry-After, ...)."""
    return web.Response(
        status=problem.status,
        body=problem.body(),
        content_type=PROBLEM_CONTENT_TYPE,
        headers={**SECURITY_HEADERS, **problem.headers},
    )


class HeadersTimedOut(Exception):
    """A request's head did not arrive within the header-read timeout."""


class BodyTimedOut(RequestPayloadError):
    """A request's body did not arrive within the body timeout (a 408 to its reader)."""

    def __init__(self, timeout: float) -> None:
        super().__init__(f"The request body did not arrive within {timeout:g} s.")
        self.timeout = timeout


class ApiRequestHandler(RequestHandler):
    """aiohttp's connection protocol, with problem answers, a header-read timeout and a
    whole-body deadline."""

    __slots__ = (
        "_body_timeout",
        "_body_timer",
        "_header_timeout",
        "_header_timer",
        "_last_payload",
    )

    def __init__(
        self,
        manager: web.Server,
        *,
        header_timeout: float,
        body_timeout: float = DEFAULT_BODY_TIMEOUT_SECONDS,
        **kwargs: Any,
    ) -> None:
        super().__init__(manager, **kwargs)
        self._header_timeout = header_timeout
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timeout = body_timeout
        self._body_timer: asyncio.TimerHandle | None = None
        # The body of the last request parsed: while it is still arriving, bytes
        # are body, not the head of the next request.
        self._last_payload: StreamReader | None = None

    def data_received(self, data: bytes) -> None:
        """Parse as aiohttp does; time a head from its first byte to its last."""
        body = self._last_payload
        between_requests = body is None or body.is_eof()
        parsed = self._request_count
        super().data_received(data)
        if self._request_count == parsed:
            if between_requests and data and self._header_timer is None:
                self._header_timer = self._loop.call_later(
                    self._header_timeout, self._headers_timed_out
                )
            elif self._body_timer is not None and body is not None and body.is_eof():
                self._stop_body_timer()
            return
        # A head (or a refusal) is complete. A pipelined head that starts in the
        # same chunk is left to the keep-alive timeout.
        self._stop_header_timer()
        self._stop_body_timer()
        message, payload = self._messages[-1]
        if body is not None and not between_requests and isinstance(message, _ErrInfo):
            self._fail_body(body, message)
        else:
            self._last_payload = payload
            if not payload.is_eof():
                self._body_timer = self._loop.call_later(
                    self._body_timeout, self._body_timed_out, payload
                )

    def _fail_body(self, body: StreamReader, refusal: _ErrInfo) -> None:
        # The parser failed inside the body of the request being answered (it does
        # not decode, its chunked framing is broken). aiohttp would leave that
        # request waiting for the rest of its body and then answer the refusal as
        # a second response: fail the body instead, and take no further request.
        self._messages.pop()
        body.set_exception(RequestPayloadError(refusal.message), refusal.exc)
        self.close()

    async def finish_response(
        self, request: BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        """Send the response; close the connection after it if the body failed."""
        failed = request.content.exception() is not None
        if failed and not resp.prepared:
            resp.force_close()  # says so: Connection: close
        result = await super().finish_response(request, resp, start_time)
        if failed or request.content.exception() is not None:
            # Nothing more can be parsed after a failed body, and aiohttp would log
            # its error as unhandled while draining it: close instead.
            self.force_close()
        return result

    def connection_lost(self, exc: BaseException | None) -> None:
        self._stop_header_timer()
        self._stop_body_timer()
        self._last_payload = None
        super().connection_lost(exc)

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """Answer a refused request as a problem that never quotes it, then close."""
        if request.writer.output_size > 0:
            # aiohttp's own rule: an answer has begun, nothing else can be sent.
            raise ConnectionError("Response is sent already, cannot send another response")
        problem = self._problem(status, exc)
        if isinstance(exc, (HttpProcessingError, HeadersTimedOut)):
            # A client's mistake (or a scanner's): one line, no traceback, no bytes of it.
            logger.debug(
                "Refused a request from %s: %d (%s)",
                request.remote,
                problem.status,
                type(exc).__name__,
            )
        else:
            # Raised past the app's error middleware: a bug of ours, logged as aiohttp does.
            self.log_exception("Error handling request from %s", request.remote, exc_info=exc)
        response = problem_response(problem)
        response.force_close()
        return response

    def _problem(self, status: int, exc: BaseException | None) -> Problem:
        if isinstance(exc, HeadersTimedOut):
            return Problem(
                408, f"The request headers did not arrive within {self._header_timeout:g} s."
            )
        if isinstance(exc, HttpProcessingError):
            return _refusal(exc, target_limit=self.max_line_size)
        if status == 504:
            return Problem(504, "The request took too long to answer.")
        return internal_error()

    def _headers_timed_out(self) -> None:
        self._header_timer = None
        if self._force_close or self._close or self.transport is None:
            return
        if self._request_in_progress or self._messages:
            # A pipelined head behind a request being answered: close once it is.
            self.close()
            return
        # Answered as aiohttp answers a request its parser refused: queue the
        # refusal and wake the connection's loop; nothing more is parsed.
        self._close = True
        refusal = _ErrInfo(status=408, exc=HeadersTimedOut(), message="")
        self._messages.append((refusal, EMPTY_PAYLOAD))
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _body_timed_out(self, payload: StreamReader) -> None:
        self._body_timer = None
        if payload.is_eof() or payload.exception() is not None or self.transport is None:
            return
        if not self._request_in_progress:
            # Answered already: aiohttp drains the rest for its lingering time, then
            # closes; nothing waits for this body any more.
            return
        # Its reader gets a 408 (aioapi.responses.json_body); a handler that never
        # reads it answers as it would, and the connection closes after the answer
        # (finish_response), the rest of the body unread.
        payload.set_exception(BodyTimedOut(self._body_timeout))

    def _stop_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None


def _refusal(exc: HttpProcessingError, *, target_limit: int) -> Problem:
    """The problem for a request aiohttp's parser refused; never quotes the request."""
    if isinstance(exc, LineTooLong):
        if exc.args[1] == target_limit:
            return Problem(
                414,
                f"The request target (path and query) is longer than {target_limit} bytes.",
            )
        return Problem(431, f"A request header is longer than {MAX_HEADER_FIELD_BYTES} bytes.")
    if isinstance(exc, BadHttpMethod):
        return Problem(501, "The request method is not one this server implements.")
    if isinstance(exc, ContentEncodingError):
        return _undecodable_body(exc)
    if isinstance(exc, InvalidURLError):
        return Problem(
            400, "The request target has bytes HTTP does not allow; percent-encode them."
        )
    if isinstance(exc, InvalidHeader):
        return Problem(400, "A request header has a character HTTP does not allow.")
    if isinstance(exc, BadStatusLine):
        return Problem(400, "The request line is not 'METHOD target HTTP/1.1'.")
    if isinstance(exc, BadHttpMessage) and exc.message.startswith("Too many headers"):
        return Problem(431, f"The request has more than {MAX_HEADERS} header fields.")
    return Problem(
        400,
        "The request is not valid HTTP/1.1 (its headers or framing: Content-Length, "
        "Transfer-Encoding, Host).",
    )


def _undecodable_body(exc: ContentEncodingError) -> Problem:
    # aiohttp refuses codings it knows but cannot decode here (br, zstd without
    # their libraries) with an invitation to install them: those are unsupported.
    if "install" in exc.message:
        return Problem(415, "The request's Content-Encoding is not supported here.")
    return Problem(400, "The request body does not decode with its Content-Encoding.")


class ApiServer(web.Server):
    """aiohttp's server (the protocol factory), making :class:`ApiRequestHandler` s."""

    def __init__(
        self,
        *args: Any,
        header_timeout: float,
        body_timeout: float = DEFAULT_BODY_TIMEOUT_SECONDS,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        # Set while no connection is open: a draining worker waits for it (aioapi.worker).
        self.no_connections = asyncio.Event()
        self.no_connections.set()

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        self.no_connections.clear()

    def connection_lost(self, handler: RequestHandler, exc: BaseException | None = None) -> None:
        super().connection_lost(handler, exc)
        # aiohttp forgets a connection whose handler task still runs when that task
        # ends, through a callback added just now: look after it, in the same order.
        task = handler._task_handler
        if task is not None and handler in self.connections:
            task.add_done_callback(lambda _: self._note_when_none())
        else:
            self._note_when_none()

    def _note_when_none(self) -> None:
        if not self.connections:
            self.no_connections.set()

    def __call__(self) -> ApiRequestHandler:
        return ApiRequestHandler(
            self,
            loop=self._loop,
            header_timeout=self.header_timeout,
            body_timeout=self.body_timeout,
            **self._kwargs,
        )


class ApiAppRunner(web.AppRunner):
    """``web.AppRunner`` for the API app: its connections are :class:`ApiRequestHandler` s."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # aiohttp has no setting for the protocol class: remake the app's server
        # with the same arguments (its handler_args included) as an ApiServer.
        return ApiServer(
            server.request_handler,
            request_factory=server.request_factory,
            handler_cancellation=server.handler_cancellation,
            loop=server._loop,
            header_timeout=self.app.get(HEADER_TIMEOUT, DEFAULT_HEADER_TIMEOUT_SECONDS),
            body_timeout=self.app.get(BODY_TIMEOUT, DEFAULT_BODY_TIMEOUT_SECONDS),
            **server._kwargs,
        )
