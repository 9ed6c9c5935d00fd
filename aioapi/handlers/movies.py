"""``/api/movies``: the film list, one film, and the writes.

Query strings and bodies are validated on the loop, so a 400 costs no
thread hop; selectors and services run through the bridge.
"""

from __future__ import annotations

from aiohttp import web

from aioapi.auth import require_permission
from aioapi.cached import cached, cached_query
from aioapi.keys import BRIDGE
from aioapi.responses import cacheable, json_body
from movies import selectors, services
from movies.headers import SECURITY_HEADERS
from movies.parsing import parse_id
from movies.problems import not_found
from movies.rendering import JSON_CONTENT_TYPE, NO_STORE, dumps, etag, movie_list_body
from movies.schemas import MovieCreate, MovieFields, MovieListQuery

DETAIL_ROUTE = "movie-detail"


@cached_query(MovieListQuery)
async def list_movies(request: web.Request, query: MovieListQuery) -> web.Response:
    """``GET /api/movies``: a page of films, filtered and sorted (the query string
    validated, its cursor decoded, once, by ``@cached_query``: a 400 costs no hop)."""
    page = await request.app[BRIDGE].run(selectors.list_movies, query)
    return cacheable(request, movie_list_body(page, query))


@cached()
async def get_movie(request: web.Request) -> web.Response:
    """``GET /api/movies/{id}``: a film with genres, directors and cast."""
    movie_id = _movie_id(request)
    movie = await request.app[BRIDGE].run(selectors.get_movie, movie_id)
    if movie is None:
        raise not_found("Movie")
    return cacheable(request, dumps(movie))


async def create_movie(request: web.Request) -> web.Response:
    """``POST /api/movies``: 201 with the new film, its Location and ETag."""
    caller = await require_permission(request, "movies.add_movie")
    fields = await json_body(request, MovieCreate)
    movie = await request.app[BRIDGE].run(
        services.create_movie, fields=fields, user_id=caller.user_id
    )
    location = request.app.router[DETAIL_ROUTE].url_for(id=str(movie["id"]))
    return _written(dumps(movie), status=201, location=str(location))


async def update_movie(request: web.Request) -> web.Response:
    """``PATCH /api/movies/{id}``: 200 with the changed film; 412 on a stale If-Match."""
    caller = await require_permission(request, "movies.change_movie")
    movie_id = _movie_id(request)
    fields = await json_body(request, MovieFields)
    if_match = _if_match(request)
    movie = await request.app[BRIDGE].run(
        services.update_movie,
        movie_id=movie_id,
        fields=fields,
        user_id=caller.user_id,
        if_match=if_match,
    )
    return _written(dumps(movie))


async def delete_movie(request: web.Request) -> web.Response:
    """``DELETE /api/movies/{id}``: 204; 412 on a stale If-Match."""
    caller = await require_permission(request, "movies.delete_movie")
    movie_id = _movie_id(request)
    if_match = _if_match(request)
    await request.app[BRIDGE].run(
        services.delete_movie, movie_id=movie_id, user_id=caller.user_id, if_match=if_match
    )
    return web.Response(status=204, headers=SECURITY_HEADERS)


def _movie_id(request: web.Request) -> int:
    movie_id = parse_id(request.match_info["id"])
    if movie_id is None:
        raise not_found("Movie")
    return movie_id


def _if_match(request: web.Request) -> str | None:
    # An empty If-Match lists no tag at all: treated as absent, not as a mismatch.
    return request.headers.get("If-Match", "").strip() or None


def _written(body: bytes, *, status: int = 200, location: str | None = None) -> web.Response:
    # The ETag of a write's answer is the one a GET would give, so a client can
    # send it straight back as If-Match.
    headers = {**SECURITY_HEADERS, "ETag": etag(body), "Cache-Control": NO_STORE}
    if location is not None:
        headers["Location"] = location
    return web.Response(status=status, body=body, content_type=JSON_CONTENT_TYPE, headers=headers)
