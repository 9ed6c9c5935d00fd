"""``GET /movies/export/``: the Django comparison of ``GET /api/movies/export``.

The same query parsing and the same generator as aioapi, so both servers send
the same bytes; here the WSGI server's thread reads the database and writes the
socket in turn (a slow client holds that thread, its connection and its
transaction for as long as it reads). A failure after the first byte is marked
in the body and re-raised, so the WSGI server breaks the transfer as well.

Like aioapi, at most ``settings.EXPORT_MAX_CONCURRENT`` exports run at once in a
process; past it the answer is the same 503 problem. The slot is freed when the
WSGI server closes the response, whatever ended it.

A client that stays connected and reads nothing would hold its thread and slot
until the socket closed: where the server hands the view its socket (Gunicorn's
``gunicorn.socket``), each chunk must be written within
``settings.EXPORT_WRITE_TIMEOUT_SECONDS``. Past it the write fails, the server
closes the response (which frees the slot) and the view resets the connection.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import socket
import struct
import time
from collections.abc import Iterator

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from movies.conditional import NO_STORE
from movies.export import DOWNLOADS, export_chunks
from movies.export_slots import ExportSlot, ExportSlots
from movies.headers import SECURITY_HEADERS
from movies.problems import Problem, database_unavailable, method_not_allowed
from movies.schemas import MovieExportQuery, parse_query
from movies.views import READ_METHODS, problem_response, query_pairs

logger = logging.getLogger(__name__)


@csrf_exempt  # as the read views (movies/views.py): a 405 problem, not a CSRF page
def movie_export(request: HttpRequest) -> HttpResponseBase:
    """``GET /movies/export/?format=ndjson|json|csv``: a download of the films."""
    if request.method not in READ_METHODS:
        return problem_response(method_not_allowed(str(request.method), READ_METHODS))
    try:
        query = parse_query(MovieExportQuery, query_pairs(request))
    except Problem as problem:
        return problem_response(problem)
    download = DOWNLOADS[query.format]
    headers = {
        **SECURITY_HEADERS,
        "Content-Disposition": download.disposition,
        # An export is a snapshot of a moment: no cache should keep or revalidate it.
        "Cache-Control": NO_STORE,
    }
    if request.method == "HEAD":
        return HttpResponse(content_type=download.content_type, headers=headers)
    try:
        slot = export_slots().acquire()
    except Problem as problem:
        return problem_response(problem)

    chunks = export_chunks(query)
    try:
        first = next(chunks)  # the database answered: only now is the status 200
    except (OperationalError, InterfaceError) as error:
        slot.release()
        return problem_response(database_unavailable(error))
    except BaseException:
        slot.release()
        raise
    body = _Body(first, chunks, slot, _WriteTimeout(_client_socket(request)))
    return StreamingHttpResponse(body, content_type=download.content_type, headers=headers)


def export_slots() -> ExportSlots:
    """This process's export slots, for the current ``EXPORT_MAX_CONCURRENT``."""
    return _slots_for(settings.EXPORT_MAX_CONCURRENT)


@functools.cache
def _slots_for(limit: int) -> ExportSlots:
    # Per process, shared by its WSGI threads: Django has no application object to
    # hold it (aioapi keeps its own in an app key). Keyed by the limit, so a test
    # that overrides the setting counts on slots of its own.
    return ExportSlots(limit)


def _client_socket(request: HttpRequest) -> socket.socket | None:
    """The client's socket, if the WSGI server exposes it and it carries this response
    alone: an HTTP/2 connection's socket carries other streams, whose writes a
    timeout must not cut off."""
    sock = request.META.get("gunicorn.socket")
    if isinstance(sock, socket.socket) and request.META["SERVER_PROTOCOL"].startswith("HTTP/1."):
        return sock
    return None


class _WriteTimeout:
    """``settings.EXPORT_WRITE_TIMEOUT_SECONDS`` on the client's socket while the
    export streams, and whether it is what ended the export.

    A socket timeout bounds each ``sendall``, so the server's write of one chunk
    (at most ``movies.export.CHUNK_ROWS`` films) fails with ``TimeoutError`` once
    the client has not taken it within the timeout. Gunicorn then closes the
    response (our ``close()``, which frees the slot) and the connection; it logs the
    error with a traceback unless its logger is deploy/gunicorn_admin.conf.py's,
    which leaves that to the one line here.
    """

    def __init__(self, sock: socket.socket | None) -> None:
        self.seconds = settings.EXPORT_WRITE_TIMEOUT_SECONDS
        self._sock = sock
        # Gunicorn makes the socket blocking again before each request, but another
        # server might not: the next request on this connection gets it as it was.
        self._previous = sock.gettimeout() if sock is not None else None
        self._writing_since: float | None = None
        if sock is not None:
            sock.settimeout(self.seconds)

    def handed_over(self) -> None:
        """A chunk is handed to the server to write."""
        self._writing_since = time.monotonic()

    def written(self) -> None:
        """The server wrote it: it asks for the next."""
        self._writing_since = None

    def end(self) -> bool:
        """Give the socket its timeout back; whether a write outlasted the timeout."""
        sock, self._sock = self._sock, None
        if sock is None:
            return False
        with contextlib.suppress(OSError):  # already closed by the server
            sock.settimeout(self._previous)
        # The server closes the response as soon as a write fails: only a write that
        # failed by timing out has been running this long.
        since = self._writing_since
        stalled = since is not None and time.monotonic() - since >= self.seconds
        if stalled:
            _abort(sock)
        return stalled


def _abort(sock: socket.socket) -> None:
    # Nothing more will reach a client that does not read. A reset when the server
    # closes the socket (SO_LINGER 0, as nginx's reset_timedout_connection) frees the
    # megabytes the kernel still holds for it at once, and with the read side shut
    # the server's close does not wait for the client to hang up (Gunicorn's waits up
    # to 2 s for that, on the thread that accepts connections).
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RDWR)


class _Body:
    """The response's iterable. Django registers its ``close()`` and calls it when
    the response is closed (the stream ended, failed, or the client left), even if
    it was never iterated, where a generator's ``finally`` would never run."""

    def __init__(
        self, first: bytes, chunks: Iterator[bytes], slot: ExportSlot, timeout: _WriteTimeout
    ) -> None:
        self._first = first
        self._chunks = chunks
        self._slot = slot
        self._timeout = timeout

    def __iter__(self) -> Iterator[bytes]:
        for chunk in itertools.chain((self._first,), self._chunks):
            self._timeout.handed_over()
            yield chunk
            self._timeout.written()
        # Whole: free the slot before the server ends the response, so a client that
        # asks for its next export once this one is read is never refused by it. The
        # timeout stays on for the server's last write, the chunked body's end.
        self._timeout.handed_over()
        self._free()

    def close(self) -> None:
        stalled = self._timeout.end()
        self._free()
        if stalled:
            logger.warning(
                "export ended: the client did not take a chunk within %g s", self._timeout.seconds
            )

    def _free(self) -> None:
        # Closing the export's generator ends its transaction and cursor before the
        # connection goes back to the pool; only then is the slot free. Both are
        # harmless a second time.
        try:
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()
        finally:
            self._slot.release()
