"""``GET /movies/export/``: the Django comparison of ``GET /api/movies/export``.

The same query parsing and the same generator as aioapi, so both servers send
the same bytes; here the WSGI server's thread reads the database and writes the
socket in turn (a slow client holds that thread, its connection and its
transaction for as long as it reads). A failure after the first byte is marked
in the body and re-raised, so the WSGI server breaks the transfer as well.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse

from movies.export import DOWNLOADS, export_chunks
from movies.problems import Problem
from movies.schemas import MovieExportQuery, parse_query
from movies.views import READ_METHODS, database_unavailable, problem_response, query_pairs

EXPORT_CACHE_CONTROL = "no-store"


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

    chunks = export_chunks(query)
    try:
        first = next(chunks)  # the database answered: only now is the status 200
    except (OperationalError, InterfaceError) as error:
        return problem_response(database_unavailable(error))
    return StreamingHttpResponse(
        _stream(first, chunks), content_type=download.content_type, headers=headers
    )


def _stream(first: bytes, chunks: Iterator[bytes]) -> Iterator[bytes]:
    # A generator, so Django closes it (and so the export's transaction and cursor)
    # when the response is closed, before it hands the connection back.
    try:
        yield first
        yield from chunks
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
