"""Reference ceiling (``gunicorn bench.ceiling.raw_pool:app``): the list page straight
from psycopg's async pool, the very SQL the ORM sends for ``GET /api/movies?limit=N`` on a
pool the servers' size, rendered to the same verified bytes. What is missing is Django:
no compiler, no model layer, no thread hop. ``SIMULATED_DB_LATENCY_MS`` is awaited while
the connection is held, as bench.contenders.latency sleeps on the other servers."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import orjson
from aiohttp import web
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from movies import conditional

MAX_LIMIT = 100
POOL = web.AppKey("pool", AsyncConnectionPool)
LATENCY = web.AppKey("latency", float)

# Column for column what movies.selectors.list_movies sends (its compiled statement,
# movies.prepared, whose LIMIT is a number in the SQL and which has no OFFSET on a
# first page), with psycopg's own placeholders.
FILMS_SQL = """
SELECT "movies_movie"."id" AS "id", "movies_movie"."title" AS "title",
       "movies_movie"."year" AS "year", "movies_movie"."release_date" AS "release_date",
       "movies_movie"."runtime_minutes" AS "runtime_minutes",
       "movies_movie"."rating" AS "rating", "movies_movie"."poster_url" AS "poster_url",
       "movies_movie"."updated_at" AS "updated_at",
       ARRAY(SELECT U2."name" AS "value" FROM "movies_movie_genres" U0
             INNER JOIN "movies_genre" U2 ON (U0."genre_id" = U2."id")
             WHERE U0."movie_id" = ("movies_movie"."id") ORDER BY U2."name" ASC) AS "genres"
FROM "movies_movie" ORDER BY 2 ASC NULLS LAST, 1 ASC LIMIT {rows:d}
"""


def _cursor(title: str, movie_id: int) -> str:
    raw = orjson.dumps({"s": "title", "v": title, "i": movie_id, "b": False})
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def render(rows: list[dict[str, Any]], limit: int) -> bytes:
    """The list body, byte for byte as ``movies.cursors.Page.body`` writes it."""
    items, more = rows[:limit], len(rows) > limit
    cursor = more and _cursor(items[-1]["title"], items[-1]["id"])
    next_link = (
        "?" + urlencode({"limit": limit, "sort": "title", "cursor": cursor}) if more else None
    )
    return orjson.dumps({"items": items, "limit": limit, "next": next_link, "previous": None})


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
        statement = FILMS_SQL.format(rows=limit + 1)  # an int from 2 to 101
        films = await conn.cursor(row_factory=dict_row).execute(statement)  # type: ignore[arg-type]
        rows = await films.fetchall()
    body = render(rows, limit)
    # The same validator and caching headers the servers compute for every body.
    headers = {"ETag": conditional.etag(body), "Cache-Control": conditional.REVALIDATE}
    return web.Response(body=body, content_type="application/json", headers=headers)


async def healthz(request: web.Request) -> web.Response:
    return web.Response(body=b'{"status":"ok"}', content_type="application/json")


async def _pool(app: web.Application) -> AsyncIterator[None]:
    size = int(os.environ.get("RAW_POOL_SIZE", "16"))
    # Checked at checkout when the other servers' pool is (DB_POOL_CHECK, off by
    # default): the same round trip or none. UTC, as Django sets it, for identical dates.
    check = os.environ.get("DB_POOL_CHECK", "0").lower() in ("1", "true", "yes", "on")
    pool = AsyncConnectionPool(os.environ["DATABASE_URL"], min_size=size, max_size=size,
                               kwargs={"options": "-c TimeZone=UTC", "autocommit": True},
                               check=AsyncConnectionPool.check_connection if check else None,
                               open=False)  # fmt: skip
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
