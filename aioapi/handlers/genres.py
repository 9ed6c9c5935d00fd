"""``/api/genres``: every genre with its number of films."""

from __future__ import annotations

from aiohttp import web

from aioapi.keys import BRIDGE
from aioapi.responses import cacheable
from movies import selectors
from movies.rendering import dumps
from movies.schemas import NoQuery
from movies.shapes import GenreList


async def list_genres(request: web.Request, _: NoQuery) -> web.Response:
    """``GET /api/genres``: all genres by name (a short list: not paginated)."""
    genres = await request.app[BRIDGE].run(selectors.list_genres)
    body: GenreList = {"items": genres}
    return cacheable(request, dumps(body))
