"""Hostile input and failure modes: every error is a problem, never a 500 with a trace."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from django.db import InterfaceError, OperationalError
from yarl import URL

from aioapi.app import create_app
from aioapi.db import OrmBridge
from aioapi.settings import ApiSettings
from tests.api_fixtures import ApiClient, Catalogue, bearer, json_of, orm

# Only the tests that reach the database are marked: a 400, 404 or 405 must be
# answered without it (and unmarked tests would fail if they touched it).
db = pytest.mark.django_db(transaction=True)

AppClient = Callable[..., Awaitable[ApiClient]]
BAD = {"type": "about:blank", "title": "Bad Request", "status": 400}


def bad_query(*errors: tuple[str, str]) -> dict[str, Any]:
    names = ", ".join(dict.fromkeys(name for name, _ in errors))
    return {
        **BAD,
        "detail": f"Invalid query parameter(s): {names}.",
        "errors": [{"name": name, "reason": reason} for name, reason in errors],
    }


LE_100 = "Input should be less than or equal to 100"
NOT_DIGITS = "must be a whole number in plain digits (like 10)"
QUERY_CASES = [
    ("limit=0", bad_query(("limit", "Input should be greater than or equal to 1"))),
    ("limit=101", bad_query(("limit", LE_100))),
    ("limit=99999999999999999999999", bad_query(("limit", LE_100))),
    ("limit=" + "9" * 5000, bad_query(("limit", "Unable to parse input string as an "
     "integer, exceeded maximum size"))),
    ("limit=abc", bad_query(("limit", NOT_DIGITS))),
    ("offset=-1", bad_query(("offset", NOT_DIGITS))),
    ("offset=10001", bad_query(("offset", "Input should be less than or equal to 10000"))),
    ("cursor=%%%", bad_query(("cursor", "is not a valid cursor"))),
    ("cursor=eyJhIjoxfQ", bad_query(("cursor", "is not a valid cursor"))),
    ("cursor=" + "A" * 600, bad_query(("cursor", "String should have at most 512 characters"))),
    ("cursor=x&offset=20", bad_query(("cursor", "use either cursor or offset, not both"),
     ("offset", "use either cursor or offset, not both"))),
    ("year=1999%20OR%201%3D1", bad_query(("year", NOT_DIGITS))),
    ("sort=title;DROP%20TABLE%20movies_movie", bad_query(("sort", "Input should be 'title', "
     "'-title', 'year', '-year', 'rating', '-rating', 'updated_at', '-updated_at', "
     "'created_at', '-created_at', 'id', '-id' or 'relevance'"))),
    ("sort=relevance", bad_query(("sort", "sort=relevance needs q, the search it ranks by"))),
    ("genre=%E2%80%94", bad_query(("genre", "is not a genre: use a slug from /api/genres "
     "(like `comedy`)"))),
    ("q=%FF%FE", bad_query(("q", "must be valid UTF-8"))),
    ("q=%00", bad_query(("q", "must not contain control characters"))),
    ("year_min=2000&year_max=1990", bad_query(("year_min",
     "year_min must not be greater than year_max"), ("year_max",
     "year_min must not be greater than year_max"))),
    ("limit=1&limit=2", bad_query(("limit", "given more than once"))),
    ("colour=red", bad_query(("colour", "unknown parameter"))),
]  # fmt: skip


@pytest.mark.parametrize(("query", "problem"), QUERY_CASES)
async def test_bad_query_is_400_naming_the_parameter(
    api: ApiClient, query: str, problem: dict[str, Any]
) -> None:
    response = await api.get(URL(f"/api/movies?{query}", encoded=True))
    assert response.status == 400
    assert response.content_type == "application/problem+json"
    assert await json_of(response) == problem


@db
async def test_sql_looking_search_text_is_just_text(api: ApiClient, catalogue: Catalogue) -> None:
    response = await api.get("/api/movies", params={"q": "x' OR '1'='1'; DROP TABLE movies_movie"})
    assert response.status == 200
    assert (await json_of(response))["items"] == []
    assert (await api.get("/api/movies?limit=1")).status == 200


async def test_raw_non_ascii_request_line_is_a_400(api: ApiClient) -> None:
    # Not percent-encoded: aiohttp's HTTP parser refuses the request line itself,
    # before any application code runs (a plain 400, never a 500).
    assert api.server.host is not None and api.server.port is not None
    reader, writer = await asyncio.open_connection(api.server.host, api.server.port)
    writer.write(b"GET /api/movies?q=\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    status_line = await reader.readline()
    writer.close()
    await writer.wait_closed()
    assert status_line.split()[1] == b"400"


BODY_CASES: list[tuple[bytes, dict[str, Any]]] = [
    (b'{"title": "x", ', {**BAD, "detail": "The request body is not valid JSON."}),
    (b"\xff\xfe{}", {**BAD, "detail": "The request body is not valid JSON."}),
    (b"[1, 2]", {**BAD, "detail": "The request body must be a JSON object."}),
    (b"", {**BAD, "detail": "The request body is not valid JSON."}),
    (b'{"title": "x", "year": "1999"}', {**BAD, "detail": "Invalid body field(s): year.",
     "errors": [{"name": "year", "reason": "Input should be a valid integer"}]}),
    (b'{"title": "x", "year": 1999, "rating": 1e999}', {**BAD,
     "detail": "Invalid body field(s): rating.",
     "errors": [{"name": "rating", "reason": "Input should be a finite number"}]}),
    (b'{"title": "x", "year": 1999, "credits": [{"person_id": 0}]}', {**BAD,
     "detail": "Invalid body field(s): credits.0.person_id.",
     "errors": [{"name": "credits.0.person_id",
                 "reason": "Input should be greater than or equal to 1"}]}),
    (b'{"title": "x", "year": 1999, "release_date": "1999-02-30"}', {**BAD,
     "detail": "Invalid body field(s): release_date.",
     "errors": [{"name": "release_date", "reason": "Input should be a valid date in the "
                 "format YYYY-MM-DD, day value is outside expected range"}]}),
    (b'{"title": "x", "year": 1999, "id": 7}', {**BAD, "detail": "Invalid body field(s): id.",
     "errors": [{"name": "id", "reason": "unknown field"}]}),
]  # fmt: skip


@db
@pytest.mark.parametrize(("raw", "problem"), BODY_CASES)
async def test_bad_body_is_400(
    api: ApiClient, writer: tuple[Any, str], raw: bytes, problem: dict[str, Any]
) -> None:
    headers = {**bearer(writer[1]), "Content-Type": "application/json"}
    response = await api.post("/api/movies", data=raw, headers=headers)
    assert response.status == 400
    assert await json_of(response) == problem


@db
@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1"],
)
async def test_other_media_type_is_415(
    api: ApiClient, writer: tuple[Any, str], content_type: str
) -> None:
    headers = {**bearer(writer[1]), "Content-Type": content_type}
    response = await api.post("/api/movies", data=b'{"title": "x", "year": 1999}', headers=headers)
    assert response.status == 415
    assert await json_of(response) == {
        "type": "about:blank",
        "title": "Unsupported Media Type",
        "status": 415,
        "detail": "The request body must be application/json (UTF-8).",
    }


@db
async def test_oversized_body_is_413(
    aiohttp_client: AppClient, api_settings: ApiSettings, writer: tuple[Any, str]
) -> None:
    api = await aiohttp_client(create_app(api_settings.model_copy(update={"max_body_bytes": 1024})))
    film = {"title": "x", "year": 1999, "synopsis": "y" * 2000}
    response = await api.post("/api/movies", json=film, headers=bearer(writer[1]))
    assert response.status == 413
    assert await json_of(response) == {
        "type": "about:blank",
        "title": "Request Entity Too Large",
        "status": 413,
        "detail": "The request body is larger than the limit of 1024 bytes.",
    }


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/api/movies", "GET, HEAD, POST"),
        ("DELETE", "/api/movies", "GET, HEAD, POST"),
        ("PUT", "/api/movies/1", "DELETE, GET, HEAD, PATCH"),
        # "export" is not a film id (found by Schemathesis).
        ("PATCH", "/api/movies/export", "GET, HEAD"),
        ("DELETE", "/api/movies/export", "GET, HEAD"),
        ("POST", "/api/genres", "GET, HEAD"),
        ("DELETE", "/api/people/1", "GET, HEAD"),
        ("POST", "/healthz", "GET, HEAD"),
    ],
)
async def test_wrong_method_is_405_with_allow(
    api: ApiClient, method: str, path: str, allow: str
) -> None:
    response = await api.request(method, path)
    assert response.status == 405
    assert response.headers["Allow"] == allow
    assert await json_of(response) == {
        "type": "about:blank",
        "title": "Method Not Allowed",
        "status": 405,
        "detail": f"Method {method} is not allowed here.",
    }


@pytest.mark.parametrize("path", ["/api/nothing", "/api/movies/", "/api/movies/1/cast", "/"])
async def test_unknown_path_is_404_problem(api: ApiClient, path: str) -> None:
    response = await api.get(path)
    assert response.status == 404
    assert await json_of(response) == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "There is no resource at this URL.",
    }


@db
async def test_overloaded_bridge_sheds_load_with_503(
    aiohttp_client: AppClient, api_settings: ApiSettings, catalogue: Catalogue
) -> None:
    bridge = OrmBridge(threads=1, max_pending=1)
    api = await aiohttp_client(create_app(api_settings, bridge=bridge))
    release = threading.Event()
    blocker = asyncio.ensure_future(bridge.run(release.wait, 10))
    await asyncio.sleep(0)  # let the blocker take the only slot
    assert bridge.pending == 1
    try:
        shed = await api.get("/api/genres")
        assert shed.status == 503
        assert shed.headers["Retry-After"] == str(api_settings.overload_retry_after_seconds)
        assert await json_of(shed) == {
            "type": "about:blank",
            "title": "Service Unavailable",
            "status": 503,
            "detail": "The server is busy; try again shortly.",
        }
    finally:
        release.set()
        await blocker
    assert (await api.get("/api/genres")).status == 200


@pytest.mark.parametrize(
    ("error", "status", "detail"),
    [
        (OperationalError("connection refused"), 503,
         "The database is unavailable; try again shortly."),
        (InterfaceError("connection already closed"), 503,
         "The database is unavailable; try again shortly."),
        (RuntimeError("secret internals"), 500,
         "An unexpected error occurred; it has been logged."),
    ],
)  # fmt: skip
async def test_errors_past_the_handler_become_problems(
    aiohttp_client: AppClient,
    api_settings: ApiSettings,
    caplog: pytest.LogCaptureFixture,
    error: Exception,
    status: int,
    detail: str,
) -> None:
    # The one place these mappings live is the middleware: drive it with a
    # route that raises, as a selector would when the database is gone.
    app = create_app(api_settings)

    async def failing(request: web.Request) -> web.Response:
        raise error

    app.router.add_get("/test-failure", failing)
    api = await aiohttp_client(app)
    with caplog.at_level(logging.WARNING):
        response = await api.get("/test-failure")
    assert response.status == status
    body = await json_of(response)
    assert body == {"type": "about:blank", "title": body["title"], "status": status,
                    "detail": detail}  # fmt: skip
    assert "secret internals" not in await response.text()
    if status == 503:
        assert response.headers["Retry-After"] == "5"
    else:
        assert "secret internals" in caplog.text  # logged with its traceback
        assert "Traceback" in caplog.text


@db
async def test_failed_write_leaves_the_film_as_it_was(
    api: ApiClient, catalogue: Catalogue, writer: tuple[Any, str]
) -> None:
    url = f"/api/movies/{catalogue.movies['Gladiator'].pk}"
    before = await api.get(url)
    change = {"title": "Gladiator II", "genres": ["drama", "peplum"]}
    response = await api.patch(url, json=change, headers=bearer(writer[1]))
    assert response.status == 422
    after = await api.get(url)
    assert await after.read() == await before.read()
    assert after.headers["ETag"] == before.headers["ETag"]
    assert await orm(lambda: catalogue.movies["Gladiator"].genres.count()) == 2
