"""``/api/genres``: every genre with its number of films, and one genre."""

from __future__ import annotations

from aiohttp import web

from aioapi.keys import BRIDGE
from aioapi.reads import cacheable
from movies import selectors
from movies.problems import not_found
from movies.rendering import dumps
from movies.schemas import NoQuery
from movies.selectors.genres import get_genre as select_genre
from movies.shapes import GenreList


async def list_genres(request: web.Request, _: NoQuery) -> web.Response:
    """``GET /api/genres``: all genres by name (a short list: not paginated)."""
    genres = await request.app[BRIDGE].run(selectors.list_genres)
    body: GenreList = {"items": genres}
    return cacheable(request, dumps(body))


async def get_genre(request: web.Request, slug: str) -> web.Response:
    """``GET /api/genres/{slug}``: one genre and its number of films."""
    genre = await request.app[BRIDGE].run(select_genre, slug)
    if genre is None:
        raise not_found("Genre")
    return cacheable(request, dumps(genre))
