"""``GET /movies/export/``: the Django comparison of ``GET /api/movies/export``.

The same query parsing and the same generator as aioapi, so both servers send
the same bytes; here the WSGI server's thread reads the database and writes the
socket in turn (a slow client holds that thread, its connection and its
transaction for as long as it reads). A failure after the first byte is marked
in the body and re-raised, so the WSGI server breaks the transfer as well.

Like aioapi, at most ``settings.EXPORT_MAX_CONCURRENT`` exports run at once in a
process; past it the answer is the same 503 problem. The slot is freed when the
WSGI server closes the response, whatever ended it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from movies.export import DOWNLOADS, export_chunks
from movies.export_slots import ExportSlot, ExportSlots
from movies.problems import Problem
from movies.schemas import MovieExportQuery, parse_query
from movies.views import READ_METHODS, database_unavailable, problem_response, query_pairs

EXPORT_CACHE_CONTROL = "no-store"


@csrf_exempt  # as the read views (movies/views.py): a 405 problem, not a CSRF page
def movie_export(request: HttpRequest) -> HttpResponseBase:
    """``GET /movies/export/?format=ndjson|json|csv``: a download of the films."""
    if request.method not in READ_METHODS:
        problem = Problem(405, f"Method {request.method} is not allowed here.")
        problem.headers["Allow"] = ", ".join(READ_METHODS)
        return problem_response(problem)
    try:
        query = parse_query(MovieExportQuery, query_pairs(request))
    except Problem as problem:
        return problem_response(problem)
    download = DOWNLOADS[query.format]
    headers = {
        "Content-Disposition": download.disposition,
        "Cache-Control": EXPORT_CACHE_CONTROL,
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
    return StreamingHttpResponse(
        _Body(first, chunks, slot), content_type=download.content_type, headers=headers
    )


def export_slots() -> ExportSlots:
    """This process's export slots, for the current ``EXPORT_MAX_CONCURRENT``."""
    return _slots_for(settings.EXPORT_MAX_CONCURRENT)


@functools.cache
def _slots_for(limit: int) -> ExportSlots:
    # Per process, shared by its WSGI threads: Django has no application object to
    # hold it (aioapi keeps its own in an app key). Keyed by the limit, so a test
    # that overrides the setting counts on slots of its own.
    return ExportSlots(limit)


class _Body:
    """The response's iterable. Django registers its ``close()`` and calls it when
    the response is closed (the stream ended, failed, or the client left), even if
    it was never iterated, where a generator's ``finally`` would never run."""

    def __init__(self, first: bytes, chunks: Iterator[bytes], slot: ExportSlot) -> None:
        self._first = first
        self._chunks = chunks
        self._slot = slot

    def __iter__(self) -> Iterator[bytes]:
        yield self._first
        yield from self._chunks
        # Whole: free the slot before the server ends the response, so a client that
        # asks for its next export once this one is read is never refused by it.
        self.close()

    def close(self) -> None:
        # Closing the export's generator ends its transaction and cursor before the
        # connection goes back to the pool; only then is the slot free.
        try:
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()
        finally:
            self._slot.release()
