"""The Django comparison views: ``/movies/``, ``/movies/{id}/``, ``/movies/people/``,
``/movies/people/{id}`` and ``/movies/people/{id}/films``.

They parse, select and render with exactly the code aioapi uses, so for the same
query string both servers return the same status and the same bytes; only the
server around them differs. That is what bench/ compares. The async twins in
``movies/async_views.py`` go through the same :func:`read_view` rules and the
same parsing helpers below; only the call to the selector differs.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, cast

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse

from movies import conditional, selectors
from movies.conditional import JSON_CONTENT_TYPE
from movies.errors import DomainError
from movies.headers import SECURITY_HEADERS
from movies.parsing import parse_id
from movies.problems import (
    PROBLEM_CONTENT_TYPE,
    Problem,
    database_unavailable,
    method_not_allowed,
    not_found,
    problem_of,
)
from movies.rendering import movie_detail_body, person_detail_body
from movies.schemas import FilmographyQuery, MovieListQuery, NoQuery, PeopleListQuery, parse_query
from movies.shapes import MovieDetail

READ_METHODS = ("GET", "HEAD")
DATABASE_ERRORS = (OperationalError, InterfaceError)
# What a renderer may raise that is answered, not a server error.
REFUSALS = (Problem, DomainError, *DATABASE_ERRORS)

Render = Callable[..., bytes] | Callable[..., Awaitable[bytes]]


def problem_response(problem: Problem) -> HttpResponse:
    return HttpResponse(
        problem.body(),
        status=problem.status,
        content_type=PROBLEM_CONTENT_TYPE,
        headers={**SECURITY_HEADERS, **problem.headers},
    )


def _refused(request: HttpRequest) -> HttpResponse | None:
    if request.method not in READ_METHODS:
        return problem_response(method_not_allowed(str(request.method), READ_METHODS))
    return None


def _failed(error: Exception) -> HttpResponse:
    """The answer to what a renderer raised: its problem, or 503 for the database."""
    if isinstance(error, Problem):
        return problem_response(error)
    if isinstance(error, DomainError):
        return problem_response(problem_of(error))
    return problem_response(database_unavailable(error))


def _answer(request: HttpRequest, body: bytes) -> HttpResponse:
    """200 with the body, or 304 when the client's ETag matches; both carry the ETag."""
    status, headers = conditional.read_answer(
        conditional.etag(body), request.headers.get("If-None-Match"), settings.API_CACHE_CONTROL
    )
    if status == 304:
        return HttpResponse(status=304, headers=headers)
    return HttpResponse(body, content_type=JSON_CONTENT_TYPE, headers=headers)


def read_view(render: Render) -> Callable[..., Any]:
    """Wrap a body renderer, sync or async, with the API's method, error and
    conditional-GET rules; an async renderer gives an async view."""
    if inspect.iscoroutinefunction(render):

        async def async_view(request: HttpRequest, **kwargs: str) -> HttpResponse:
            if (refused := _refused(request)) is not None:
                return refused
            try:
                body = await cast("Callable[..., Awaitable[bytes]]", render)(request, **kwargs)
            except REFUSALS as error:
                return _failed(error)
            return _answer(request, body)

        view: Callable[..., Any] = async_view
    else:

        def sync_view(request: HttpRequest, **kwargs: str) -> HttpResponse:
            if (refused := _refused(request)) is not None:
                return refused
            try:
                body = cast("Callable[..., bytes]", render)(request, **kwargs)
            except REFUSALS as error:
                return _failed(error)
            return _answer(request, body)

        view = sync_view
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


def list_query(request: HttpRequest) -> MovieListQuery:
    """The list's query string, validated (a :class:`Problem` if it is not valid)."""
    return parse_query(MovieListQuery, query_pairs(request))


def detail_key(request: HttpRequest, movie_id: str) -> int | None:
    """The film's id from the path, ``None`` if no film can have it."""
    if request.GET:  # takes none, as aioapi's route: any given is a 400
        parse_query(NoQuery, query_pairs(request))
    return parse_id(movie_id)


def detail_body(movie: MovieDetail | None) -> bytes:
    if movie is None:
        raise not_found("Movie")
    return movie_detail_body(movie)


@read_view
def movie_list(request: HttpRequest) -> bytes:
    """``GET /movies/``: the same list as ``GET /api/movies``."""
    query = list_query(request)
    return selectors.list_movies(query).body(query)


@read_view
def movie_detail(request: HttpRequest, movie_id: str) -> bytes:
    """``GET /movies/{id}/``: the same film as ``GET /api/movies/{id}``."""
    key = detail_key(request, movie_id)
    return detail_body(selectors.get_movie(key) if key is not None else None)


@read_view
def people_list(request: HttpRequest) -> bytes:
    """``GET /movies/people/``: the same page as ``GET /api/people`` (bench/'s people
    scenario; under /movies/ so its errors get the same problem handlers)."""
    query = parse_query(PeopleListQuery, query_pairs(request))
    return selectors.list_people(query).body(query)


@read_view
def person_detail(request: HttpRequest, person_id: str) -> bytes:
    """``GET /movies/people/{id}``: the same person as ``GET /api/people/{id}``. No
    trailing slash, as aioapi's path: the body's link to the rest of the filmography
    is relative to it (``42/films?...``)."""
    key = detail_key(request, person_id)
    found = selectors.get_person(key) if key is not None else None
    if found is None:
        raise not_found("Person")
    return person_detail_body(found)


@read_view
def person_films(request: HttpRequest, person_id: str) -> bytes:
    """``GET /movies/people/{id}/films``: the same page as ``GET /api/people/{id}/films``."""
    query = parse_query(FilmographyQuery, query_pairs(request))  # a 400 before the 404
    key = parse_id(person_id)
    found = selectors.get_filmography(key, query) if key is not None else None
    if found is None:
        raise not_found("Person")
    return found.page.body(query)
