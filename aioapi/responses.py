"""What write and probe handlers share: written and uncached answers (their HTTP
semantics are movies.conditional's; a read's answer is aioapi.reads') and JSON request
bodies."""

from __future__ import annotations

from aiohttp import HttpVersion11, hdrs, web
from aiohttp.compression_utils import HAS_BROTLI, HAS_ZSTD
from aiohttp.http_exceptions import ContentEncodingError
from aiohttp.web_protocol import RequestPayloadError

from aioapi.keys import SETTINGS
from aioapi.protocol import BodyTimedOut
from movies import conditional
from movies.bodies import BodyModel, parse_body
from movies.conditional import JSON_CONTENT_TYPE, NO_STORE
from movies.headers import SECURITY_HEADERS
from movies.problems import Problem

# nginx's status for "the client went away before the answer": never sent, but
# counted in the metrics and the access log as nginx counts it.
CLIENT_CLOSED = 499
# The content codings aiohttp's parser decodes (aiohttp/_http_parser.pyx): br and
# zstd only where their libraries are installed (it refuses them itself otherwise).
DECODED_CODINGS = frozenset(
    ["identity", "gzip", "deflate"] + ["br"] * HAS_BROTLI + ["zstd"] * HAS_ZSTD
)
ACCEPTED_CODINGS = ", ".join(sorted(DECODED_CODINGS))


def written(body: bytes, *, status: int = 200, location: str | None = None) -> web.Response:
    """A write's answer: the resource as a GET would show it, with its ETag."""
    headers = conditional.written_headers(conditional.etag(body))
    if location is not None:
        headers[hdrs.LOCATION] = location
    return web.Response(status=status, body=body, content_type=JSON_CONTENT_TYPE, headers=headers)


def uncached(body: bytes, *, content_type: str = JSON_CONTENT_TYPE) -> web.Response:
    """An answer no cache may keep (probes, metrics)."""
    # Set as a header, not content_type=, so parameters such as Prometheus's
    # "version=0.0.4" pass through unchanged.
    headers = {**SECURITY_HEADERS, "Content-Type": content_type, "Cache-Control": NO_STORE}
    return web.Response(body=body, headers=headers)


async def json_body(request: web.Request, model: type[BodyModel]) -> BodyModel:
    """The validated JSON body: 413 past the size limit (from Content-Length before a
    byte is read, or raised by aiohttp while reading), 415 for another media type or
    content coding, 400 for a body that does not decode, malformed JSON or invalid fields,
    408 for a body still arriving past ``API_BODY_TIMEOUT_SECONDS``."""
    limit = request.app[SETTINGS].max_body_bytes
    declared = request.content_length
    if declared is not None and declared > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=declared)
    _check_coding(request)
    charset = request.charset
    if request.content_type != JSON_CONTENT_TYPE or (
        charset is not None and charset.lower() != "utf-8"
    ):
        raise Problem(415, "The request body must be application/json (UTF-8).")
    await _continue(request)
    try:
        raw = await request.read()
    except BodyTimedOut as error:
        # The connection closes after the answer (aioapi.protocol), the rest unread.
        raise Problem(408, str(error)) from None
    except RequestPayloadError as error:
        # The connection closes after the answer (aioapi.protocol).
        raise Problem(400, f"The request body could not be read: {_reason(error)}.") from None
    return parse_body(model, raw)


async def continue_when_read(request: web.Request) -> None:
    """The ``expect_handler`` of routes that take a body: no ``100 Continue`` yet.

    aiohttp's default sends it before any middleware or handler runs, so a client
    would send a body that authentication or the size limit then refuses;
    :func:`json_body` sends it once the request has passed them.
    """


def expects_continue(request: web.Request) -> bool:
    """Whether the client waits for ``100 Continue`` before it sends the body."""
    expect = request.headers.get(hdrs.EXPECT, "")
    return request.version == HttpVersion11 and expect.lower() == "100-continue"


async def _continue(request: web.Request) -> None:
    if expects_continue(request):
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        # As aiohttp's expect handler does: the interim answer is not the response.
        request.writer.output_size = 0


def _check_coding(request: web.Request) -> None:
    # aiohttp decodes these codings (and refuses br or zstd without their libraries);
    # any other it hands over undecoded, as if it were the JSON itself.
    coding = request.headers.get(hdrs.CONTENT_ENCODING, "identity").strip().lower()
    if coding not in DECODED_CODINGS:
        unsupported = Problem(415, "The request body's Content-Encoding is not supported.")
        unsupported.headers[hdrs.ACCEPT_ENCODING] = ACCEPTED_CODINGS
        raise unsupported


def _reason(error: RequestPayloadError) -> str:
    if isinstance(error.__cause__, ContentEncodingError):
        return "it does not decode with its Content-Encoding"
    return "it is incomplete or its chunked framing is invalid"
