"""The route table of the API, in one place and one style.

GET routes answer HEAD too (aiohttp's ``allow_head``). A method a path does not
serve is a 405 problem with ``Allow``, produced by the error middleware.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from aioapi.handlers import events, export, genres, health, meta, movies, people
from aioapi.responses import continue_when_read

# "export" is a sibling resource that only GETs: PATCH or DELETE of it is a 405
# with Allow, not a write to a film whose id is "export" (found by Schemathesis).
MOVIE_DETAIL = r"/api/movies/{id:(?!export$)[^{}/]+}"


def route_table(docs_static: Path) -> list[web.AbstractRouteDef]:
    """Every route; ``docs_static`` is swagger-ui-py's bundled asset directory."""
    return [
        web.get("/api/movies", movies.list_movies, name="movie-list"),
        web.post("/api/movies", movies.create_movie, expect_handler=continue_when_read),
        web.get("/api/movies/export", export.export_movies, name="movie-export"),
        web.get(MOVIE_DETAIL, movies.get_movie, name=movies.DETAIL_ROUTE),
        web.patch(MOVIE_DETAIL, movies.update_movie, expect_handler=continue_when_read),
        web.delete(MOVIE_DETAIL, movies.delete_movie),
        web.get("/api/genres", genres.list_genres, name="genre-list"),
        web.get("/api/people", people.list_people, name="person-list"),
        web.get("/api/people/{id}", people.get_person, name="person-detail"),
        web.get("/api/events", events.stream_events, name="events"),
        web.get(meta.OPENAPI_PATH, meta.openapi, name="openapi"),
        web.get(meta.DOCS_PATH, meta.docs, name="docs"),
        web.static(f"{meta.DOCS_PATH}/static", docs_static, name="docs-static"),
        web.get("/healthz", health.healthz, name="healthz"),
        web.get("/readyz", health.readyz, name="readyz"),
        web.get("/metrics", health.metrics, name="metrics"),
    ]
