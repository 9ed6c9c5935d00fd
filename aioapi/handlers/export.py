"""``GET /api/movies/export``: every film the list's filters select, streamed.

The query is validated here on the loop; :func:`movies.export.export_chunks`
reads and encodes on an ORM thread, and aioapi.streaming carries its chunks
here with back-pressure. Each export holds one of the process's export slots
(movies.export_slots) until its thread is free. The response starts only once
the first rows are read, so a database that is down is still a 503 problem.
After that, a failure is reported inside the body (see movies.export) and the
connection is closed without the final chunk, so HTTP clients report a
truncated transfer too. A client that reads nothing for
``API_EXPORT_WRITE_TIMEOUT_SECONDS`` is cut off the same way, and its slot and
thread are freed.
"""

from __future__ import annotations

import logging

from aiohttp import hdrs, web
from aiohttp.web import ContentCoding

from aioapi.keys import BRIDGE, EXPORT_SLOTS, SETTINGS
from aioapi.responses import CLIENT_CLOSED
from aioapi.streaming import ClientStalled, stream_from_thread, write_or_stall
from movies.conditional import NO_STORE
from movies.export import DOWNLOADS, export_chunks
from movies.export_slots import ExportSlot
from movies.headers import SECURITY_HEADERS
from movies.schemas import MovieExportQuery, parse_query

logger = logging.getLogger(__name__)


async def export_movies(request: web.Request) -> web.StreamResponse:
    """``GET /api/movies/export?format=ndjson|json|csv``: a download of the films.

    Past ``API_EXPORT_MAX_CONCURRENT`` running exports the answer is a 503 problem
    at once; the slot is held until the stream's thread is free again, however
    the export ends. HEAD reads nothing and takes no slot.
    """
    query = parse_query(MovieExportQuery, request.query.items())
    download = DOWNLOADS[query.format]
    headers: dict[str, str] = {
        **SECURITY_HEADERS,
        hdrs.CONTENT_TYPE: download.content_type,
        hdrs.CONTENT_DISPOSITION: download.disposition,
        # An export is a snapshot of a moment: no cache should keep or revalidate it.
        hdrs.CACHE_CONTROL: NO_STORE,
        # gzip or not, by Accept-Encoding (a CORS app adds Origin to it).
        hdrs.VARY: hdrs.ACCEPT_ENCODING,
    }
    if request.method == hdrs.METH_HEAD:
        return web.Response(headers=headers)  # the headers, without reading a row
    with request.app[EXPORT_SLOTS].acquire() as slot:  # a 503 problem when all are taken
        return await _stream(request, query, headers, slot)


async def _stream(
    request: web.Request, query: MovieExportQuery, headers: dict[str, str], slot: ExportSlot
) -> web.StreamResponse:
    stall = request.app[SETTINGS].export_write_timeout_seconds
    async with stream_from_thread(request.app[BRIDGE], export_chunks, query) as chunks:
        chunks.watch(lambda: request.transport is None)
        try:
            first = await chunks.first()  # errors before the first byte become problems
        except ConnectionResetError:
            logger.info("export abandoned by the client before its first byte")
            return web.Response(status=CLIENT_CLOSED)  # for the logs: nobody reads it
        response = web.StreamResponse(headers=headers)
        if accepts_gzip(request.headers.get(hdrs.ACCEPT_ENCODING, "")):
            response.enable_compression(ContentCoding.gzip)
        await response.prepare(request)
        try:
            await write_or_stall(request.transport, response.write(first), stall)
            async for chunk in chunks:
                await write_or_stall(request.transport, response.write(chunk), stall)
        except ConnectionResetError:
            # The client went away; leaving the block stops the producer.
            logger.info("export abandoned by the client after %d chunks", chunks.chunks_sent)
            return response
        except ClientStalled:
            # Connected but reading nothing: end it, or it holds the slot and the
            # thread for as long as the socket stays open.
            logger.warning("export ended: the client read nothing for %g s", stall)
            _break_transfer(request)
            return response
    # Past the block the producer's thread and connection are free, and so is the
    # slot, before the client sees the end (whole or broken): a client that starts
    # its next export once this one has ended is never refused because of it.
    slot.release()
    if chunks.error is not None:
        logger.error("export failed mid-stream", exc_info=chunks.error)
        _break_transfer(request)
        return response
    try:
        await write_or_stall(request.transport, response.write_eof(), stall)
    except ClientStalled:
        _break_transfer(request)
    return response


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether ``Accept-Encoding`` allows gzip (RFC 9110: ``q=0`` refuses it)."""
    for item in accept_encoding.split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() not in ("gzip", "x-gzip", "*"):
            continue
        name, _, value = params.strip().partition("=")
        if name.strip().lower() != "q":
            return True
        try:
            return float(value) > 0
        except ValueError:
            return False
    return False


def _break_transfer(request: web.Request) -> None:
    # Closing without the chunked encoding's final empty chunk is how HTTP/1.1
    # says "this body is incomplete"; aiohttp then sees the closed transport
    # when it tries to finish the response, and drops the connection quietly.
    transport = request.transport
    if transport is not None:
        transport.close()
