"""The Django comparison side answers every error under ``/movies/`` as problem+json.

Writes get a 405 problem with Allow (not the CSRF page), unknown URLs a 404
problem like aioapi's, and an unhandled exception with ``DEBUG=0`` a 500 problem
whose traceback is logged once. Outside the prefix Django keeps its HTML pages.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
import pytest
from django.test import Client

from movies import selectors
from tests.api_fixtures import ApiClient

pytestmark = [
    # WhiteNoise warns when collectstatic has not run; the views need no static files.
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]

PROBLEM = "application/problem+json"
WRITES = ["post", "put", "patch", "delete"]
VIEWS = ["/movies/", "/movies/1/", "/movies/export/?format=csv"]


@pytest.fixture
def production(settings: Any) -> None:
    settings.DEBUG = False


@pytest.fixture
def browser() -> Client:
    # Checks CSRF as a browser's request would be checked (the test client skips it).
    return Client(enforce_csrf_checks=True, raise_request_exception=False)


@pytest.mark.parametrize("method", WRITES)
@pytest.mark.parametrize("path", VIEWS)
def test_a_write_on_a_view_is_a_405_problem_not_the_csrf_page(
    browser: Client, path: str, method: str
) -> None:
    response = getattr(browser, method)(path, data=b"{}", content_type="application/json")
    assert response.status_code == 405
    assert response["Content-Type"] == PROBLEM
    assert response["Allow"] == "GET, HEAD"
    assert orjson.loads(response.content) == {
        "type": "about:blank",
        "title": "Method Not Allowed",
        "status": 405,
        "detail": f"Method {method.upper()} is not allowed here.",
    }


@pytest.mark.parametrize("method", ["get", "post", "delete"])
@pytest.mark.parametrize("suffix", ["1/credits/", "export/x/", "a/b/c/", "%FF/x/"])
async def test_an_unknown_url_under_movies_is_aioapis_404_problem(
    production: None, browser: Client, api: ApiClient, suffix: str, method: str
) -> None:
    response = await _in_thread(getattr(browser, method), f"/movies/{suffix}")
    assert response.status_code == 404
    assert response["Content-Type"] == PROBLEM
    aioapi = await api.get(f"/api/movies/{suffix.rstrip('/')}")
    assert aioapi.status == 404
    assert response.content == await aioapi.read()


def test_outside_movies_django_keeps_its_html_404(production: None, browser: Client) -> None:
    response = browser.get("/nothing-here/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_an_unhandled_error_is_a_500_problem_logged_once(
    production: None,
    browser: Client,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug in a selector")

    monkeypatch.setattr(selectors, "list_movies", broken)
    with caplog.at_level(logging.ERROR):
        response = browser.get("/movies/?limit=2")
    assert response.status_code == 500
    assert response["Content-Type"] == PROBLEM
    assert orjson.loads(response.content) == {
        "type": "about:blank",
        "title": "Internal Server Error",
        "status": 500,
        "detail": "An unexpected error occurred; it has been logged.",
    }
    assert b"a bug in a selector" not in response.content
    logged = [record for record in caplog.records if record.exc_info]
    assert len(logged) == 1, [record.getMessage() for record in caplog.records]
    assert logged[0].exc_info is not None and logged[0].exc_info[0] is RuntimeError


async def _in_thread(call: Any, *args: Any) -> Any:
    # The Django test client is synchronous; the aiohttp client needs the loop.
    from asgiref.sync import sync_to_async

    return await sync_to_async(call, thread_sensitive=False)(*args)
