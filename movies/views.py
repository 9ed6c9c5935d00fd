"""The Django comparison views: ``/movies/`` and ``/movies/{id}/``.

They parse, select and render with exactly the code aioapi uses, so for the same
query string both servers return the same status and the same bytes; only the
server around them differs. That is what bench/ compares.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse

from movies import selectors
from movies.problems import (
    PROBLEM_CONTENT_TYPE,
    Problem,
    database_unavailable,
    method_not_allowed,
    not_found,
)
from movies.rendering import JSON_CONTENT_TYPE, dumps, etag, etag_matches, movie_list_body
from movies.schemas import MovieListQuery, NoQuery, parse_id, parse_query

READ_METHODS = ("GET", "HEAD")

View = Callable[..., bytes]


def problem_response(problem: Problem) -> HttpResponse:
    response = HttpResponse(
        problem.body(), status=problem.status, content_type=PROBLEM_CONTENT_TYPE
    )
    for name, value in problem.headers.items():
        response[name] = value
    return response


def _read_view(render: View) -> Callable[..., HttpResponse]:
    """Wrap a body renderer with the API's method, error and conditional-GET rules."""

    def view(request: HttpRequest, **kwargs: str) -> HttpResponse:
        if request.method not in READ_METHODS:
            return problem_response(method_not_allowed(str(request.method), READ_METHODS))
        try:
            body = render(request, **kwargs)
        except Problem as problem:
            return problem_response(problem)
        except (OperationalError, InterfaceError) as error:
            return problem_response(database_unavailable(error))
        tag = etag(body)
        if etag_matches(request.headers.get("If-None-Match"), tag):
            response = HttpResponse(status=304)
        else:
            response = HttpResponse(body, content_type=JSON_CONTENT_TYPE)
        response["ETag"] = tag
        response["Cache-Control"] = settings.API_CACHE_CONTROL
        return response

    view.__name__ = render.__name__
    view.__doc__ = render.__doc__
    # No cookies, no session: CSRF protects nothing here, and its check would answer
    # a POST with an HTML 403 page where the API promises a 405 problem. The mark
    # csrf_exempt sets, without the extra call its wrapper adds to every request.
    setattr(view, "csrf_exempt", True)  # noqa: B010
    return view


def query_pairs(request: HttpRequest) -> Iterator[tuple[str, str]]:
    """Every (name, value) of the query string, repeats included."""
    for name, values in request.GET.lists():
        for value in values:
            yield name, value


@_read_view
def movie_list(request: HttpRequest) -> bytes:
    """``GET /movies/``: the same list as ``GET /api/movies``."""
    query = parse_query(MovieListQuery, query_pairs(request))
    return movie_list_body(selectors.list_movies(query), query)


@_read_view
def movie_detail(request: HttpRequest, movie_id: str) -> bytes:
    """``GET /movies/{id}/``: the same film as ``GET /api/movies/{id}``."""
    if request.GET:  # takes none, as aioapi's route: any given is a 400
        parse_query(NoQuery, query_pairs(request))
    key = parse_id(movie_id)
    movie = selectors.get_movie(key) if key is not None else None
    if movie is None:
        raise not_found("Movie")
    return dumps(movie)
