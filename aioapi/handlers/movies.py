"""``/api/movies``: the film list, one film, and the writes.

Query strings (aioapi.reads, before these handlers) and bodies are validated on
the loop, so a 400 costs no thread hop; selectors and services run through the
bridge, one call each: a write's token is verified in the same call, in the
write's transaction (aioapi.auth), unless the client asked to wait for
``100 Continue``.
"""

from __future__ import annotations

from aiohttp import web

from aioapi.auth import permit, run_as, token_before_refusals
from aioapi.keys import BRIDGE
from aioapi.reads import cacheable
from aioapi.responses import json_body, written
from movies import conditional, selectors, services
from movies.bodies import MovieCreate, MovieFields
from movies.headers import SECURITY_HEADERS
from movies.parsing import parse_id
from movies.problems import not_found
from movies.rendering import movie_detail_body
from movies.schemas import MovieListQuery

DETAIL_ROUTE = "movie-detail"


async def list_movies(request: web.Request, query: MovieListQuery) -> web.Response:
    """``GET /api/movies``: a page of films, filtered and sorted."""
    page = await request.app[BRIDGE].run(selectors.list_movies, query)
    return cacheable(request, page.body(query))


async def get_movie(request: web.Request, movie_id: int) -> web.Response:
    """``GET /api/movies/{id}``: a film with genres, directors and cast."""
    movie = await request.app[BRIDGE].run(selectors.get_movie, movie_id)
    if movie is None:
        raise not_found("Movie")
    return cacheable(request, movie_detail_body(movie))


async def create_movie(request: web.Request) -> web.Response:
    """``POST /api/movies``: 201 with the new film, its Location and ETag."""
    granted = await permit(request, "movies.add_movie")
    async with token_before_refusals(request, granted):
        fields = await json_body(request, MovieCreate)
    movie = await run_as(request, granted, services.create_movie, fields=fields)
    location = request.app.router[DETAIL_ROUTE].url_for(id=str(movie["id"]))
    return written(movie_detail_body(movie), status=201, location=str(location))


async def update_movie(request: web.Request) -> web.Response:
    """``PATCH /api/movies/{id}``: 200 with the changed film; 412 on a stale If-Match.

    One hop to the ORM: the token is verified in the write's transaction
    (aioapi.auth.run_as), after the checks that need no query (the header, the
    id, the body's size, type and fields); a refusal of those waits for the
    token's verdict (aioapi.auth.token_before_refusals).
    """
    granted = await permit(request, "movies.change_movie")
    async with token_before_refusals(request, granted):
        movie_id = _movie_id(request)
        fields = await json_body(request, MovieFields)
    movie = await run_as(
        request,
        granted,
        services.update_movie,
        movie_id=movie_id,
        fields=fields,
        expected=_expected(request),
    )
    return written(movie_detail_body(movie))


async def delete_movie(request: web.Request) -> web.Response:
    """``DELETE /api/movies/{id}``: 204; 412 on a stale If-Match."""
    granted = await permit(request, "movies.delete_movie")
    async with token_before_refusals(request, granted):
        movie_id = _movie_id(request)
    await run_as(
        request, granted, services.delete_movie, movie_id=movie_id, expected=_expected(request)
    )
    return web.Response(status=204, headers=SECURITY_HEADERS)


def _movie_id(request: web.Request) -> int:
    movie_id = parse_id(request.match_info["id"])
    if movie_id is None:
        raise not_found("Movie")
    return movie_id


def _expected(request: web.Request) -> frozenset[int] | None:
    return conditional.if_match_versions(request.headers.get("If-Match"))
