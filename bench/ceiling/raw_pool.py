"""Reference ceiling: the list-10 page served straight from psycopg's async pool.

    gunicorn bench.ceiling.raw_pool:app --worker-class aioapi.worker.DrainingUVLoopWorker

The same two SQL statements the ORM sends for ``GET /api/movies?limit=N`` (films
by title, then their genre names), on a pool the same size as the servers',
rendered to the very bytes aioapi and Django return (the driver verifies it).
What is missing is Django: no query compiler, no model layer, no thread hop.
``SIMULATED_DB_LATENCY_MS`` is awaited before each statement, while the
connection is held, as ``movies.latency`` does on the other servers.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import orjson
from aiohttp import web
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

MAX_LIMIT = 100
POOL = web.AppKey("pool", AsyncConnectionPool)
LATENCY = web.AppKey("latency", float)

# Column for column what the ORM sends (captured with CaptureQueriesContext).
FILMS_SQL = """
SELECT "movies_movie"."id" AS "id", "movies_movie"."title" AS "title",
       "movies_movie"."year" AS "year", "movies_movie"."release_date" AS "release_date",
       "movies_movie"."runtime_minutes" AS "runtime_minutes",
       "movies_movie"."rating" AS "rating", "movies_movie"."poster_url" AS "poster_url",
       "movies_movie"."updated_at" AS "updated_at"
FROM "movies_movie" ORDER BY 2 ASC NULLS LAST, 1 ASC LIMIT %s
"""
GENRES_SQL = """
SELECT "movies_movie_genres"."movie_id" AS "movie_id", "movies_genre"."name" AS "genre__name"
FROM "movies_movie_genres"
INNER JOIN "movies_genre" ON ("movies_movie_genres"."genre_id" = "movies_genre"."id")
WHERE "movies_movie_genres"."movie_id" = ANY(%s) ORDER BY 2 ASC
"""


def _cursor(title: str, movie_id: int) -> str:
    raw = orjson.dumps({"s": "title", "v": title, "i": movie_id, "b": False})
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def render(rows: list[dict[str, Any]], genres: list[tuple[int, str]], limit: int) -> bytes:
    """The list body, byte for byte as ``movies.rendering.movie_list_body`` writes it."""
    names: dict[int, list[str]] = defaultdict(list)
    for movie_id, name in genres:
        names[movie_id].append(name)
    items = rows[:limit]
    for row in items:
        row["genres"] = names[row["id"]]
    next_link = None
    if len(rows) > limit:
        last = items[-1]
        next_link = "?" + urlencode(
            {"limit": limit, "sort": "title", "cursor": _cursor(last["title"], last["id"])}
        )
    return orjson.dumps({"items": items, "limit": limit, "next": next_link, "previous": None})


def etag(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


async def movie_list(request: web.Request) -> web.Response:
    """``GET /movies?limit=N``: the first page by title, nothing else."""
    try:
        limit = int(request.query.get("limit", "20"))
    except ValueError:
        raise web.HTTPBadRequest(text="limit must be an integer") from None
    if not 1 <= limit <= MAX_LIMIT or set(request.query) - {"limit"}:
        raise web.HTTPBadRequest(text="only ?limit=1..100 is served here")
    latency = request.app[LATENCY]
    async with request.app[POOL].connection() as conn:
        if latency:
            await asyncio.sleep(latency)
        films = await conn.cursor(row_factory=dict_row).execute(FILMS_SQL, (limit + 1,))
        rows = await films.fetchall()
        genres: list[tuple[int, str]] = []
        if rows:
            if latency:
                await asyncio.sleep(latency)
            ids = [row["id"] for row in rows[:limit]]
            genres = await (await conn.execute(GENRES_SQL, (ids,))).fetchall()
    body = render(rows, genres, limit)
    # The same validator and caching headers the servers compute for every body.
    headers = {"ETag": etag(body), "Cache-Control": "public, max-age=0, must-revalidate"}
    return web.Response(body=body, content_type="application/json", headers=headers)


async def healthz(request: web.Request) -> web.Response:
    return web.Response(body=b'{"status":"ok"}', content_type="application/json")


async def _pool(app: web.Application) -> AsyncIterator[None]:
    size = int(os.environ.get("RAW_POOL_SIZE", "16"))
    # The other servers' pool checks each connection at checkout (CONN_HEALTH_CHECKS):
    # this one does the same round trip. UTC, as Django sets it, for identical dates.
    pool = AsyncConnectionPool(
        os.environ["DATABASE_URL"],
        min_size=size,
        max_size=size,
        kwargs={"options": "-c TimeZone=UTC", "autocommit": True},
        check=AsyncConnectionPool.check_connection,
        open=False,
    )
    await pool.open(wait=True)
    app[POOL] = pool
    yield
    await pool.close()


async def app() -> web.Application:
    """The ceiling application of one Gunicorn worker."""
    application = web.Application()
    application[LATENCY] = float(os.environ.get("SIMULATED_DB_LATENCY_MS", "0")) / 1000.0
    application.cleanup_ctx.append(_pool)
    application.router.add_get("/movies", movie_list)
    application.router.add_get("/healthz", healthz)
    return application
