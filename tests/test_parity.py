"""Django's comparison views and aioapi answer the same query with the same bytes.

For every request of the table, ``/movies/...`` through Django's test client and
``/api/movies...`` through aiohttp's must give the same status and byte-identical
bodies (errors and pagination links included), so the benchmark compares two
servers doing exactly the same work.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from django.test import Client
from yarl import URL

from tests.api_fixtures import ApiClient, Catalogue, busy_person, orm

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # WhiteNoise warns when collectstatic has not run; the views need no static files.
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]

LIST_QUERIES = [
    "",
    "limit=3",
    "limit=3&offset=3",
    "limit=3&offset=6",
    "sort=-rating",
    "sort=rating&limit=4",
    "sort=-year&limit=2",
    "sort=updated_at",
    "genre=drama",
    "genre=drama&sort=-year",
    "year=1984",
    "year_min=1980&year_max=1990",
    "person={scott}",
    "person={scott}&sort=-title&limit=1",
    "person={scott}&sort=id&limit=2",
    "q=alien",
    "q=caf%C3%A9",
    "q=blade+runner",
    "q=alien&limit=1",
    "q=alien&sort=relevance&genre=horror",
    "q=alien&sort=title",
    "q=aliens+1986",
    "q=weaver+alien",
    "sort=relevance",
    "limit=0",
    "limit=abc",
    "offset=10001",
    "zzz=1&limit=2",
    "limit=1&limit=2",
    "cursor=not-a-cursor",
    "cursor=x&offset=3",
    "q=%FF%FE",
    "q=%00",
    "sort=bogus",
    "genre=Drama",
    "year_min=2000&year_max=1990",
    "=",
    "=x",
    "&=",
    "limit=2&=x",
]
DETAIL_IDS = ["{heat}", "{alien}", "999999", "abc", "0", "99999999999999999999"]


# What every answer of either server says about its body (movies/headers.py).
SECURITY = ("X-Content-Type-Options", "Content-Security-Policy")


async def both(
    api: ApiClient,
    django_path: str,
    api_path: str,
    method: str = "GET",
    headers: dict[str, str] | None = None,
) -> Any:
    """(status, body, ETag, security headers) from each server."""
    client = Client()

    def fetch() -> Any:
        # Read here: an export's streamed body reads the database as it is consumed.
        response = client.generic(method, django_path, headers=headers)
        return response, response.getvalue()

    theirs, content = await orm(fetch)
    ours = await api.request(method, URL(api_path, encoded=True), headers=headers)
    return (
        (
            theirs.status_code,
            content,
            theirs.headers.get("ETag"),
            [theirs.headers.get(name) for name in SECURITY],
        ),
        (
            ours.status,
            await ours.read(),
            ours.headers.get("ETag"),
            [ours.headers.get(name) for name in SECURITY],
        ),
    )


def ids(catalogue: Catalogue) -> dict[str, int]:
    return {
        "scott": catalogue.people["Ridley Scott"].pk,
        "heat": catalogue.movies["Heat"].pk,
        "alien": catalogue.movies["Alien"].pk,
    }


async def test_lists_are_byte_identical(api: ApiClient, catalogue: Catalogue) -> None:
    statuses = set()
    for raw in LIST_QUERIES:
        query = raw.format(**ids(catalogue))
        django, aiohttp = await both(api, f"/movies/?{query}", f"/api/movies?{query}")
        assert django == aiohttp, query
        statuses.add(aiohttp[0])
    assert statuses == {200, 400}


async def test_details_are_byte_identical(api: ApiClient, catalogue: Catalogue) -> None:
    for raw in DETAIL_IDS:
        movie_id = raw.format(**ids(catalogue))
        django, aiohttp = await both(api, f"/movies/{movie_id}/", f"/api/movies/{movie_id}")
        assert django == aiohttp, movie_id


async def test_people_lists_are_byte_identical(api: ApiClient, catalogue: Catalogue) -> None:
    """``/movies/people/``, bench/'s people scenario on Django, is ``/api/people``'s page,
    its links followed to the end, and its errors."""
    link: str | None = "?limit=2"
    pages = 0
    while link is not None:
        django, aiohttp = await both(api, f"/movies/people/{link}", f"/api/people{link}")
        assert django == aiohttp, link
        assert aiohttp[0] == 200
        link = orjson.loads(aiohttp[1])["next"]
        pages += 1
    assert pages > 1
    for query in ("", "q=scott", "limit=0", "cursor=x&offset=3"):
        django, aiohttp = await both(api, f"/movies/people/?{query}", f"/api/people?{query}")
        assert django == aiohttp, query


async def test_people_and_their_films_are_byte_identical(api: ApiClient) -> None:
    """``/movies/people/{id}`` and ``.../films`` are aioapi's person and pages: the
    detail's relative link to the rest resolves on both, and so do the pages' links."""
    person_id, _ = await orm(busy_person)
    django, aiohttp = await both(api, f"/movies/people/{person_id}", f"/api/people/{person_id}")
    assert django == aiohttp
    link = orjson.loads(aiohttp[1])["filmography_next"]
    django, aiohttp = await both(api, f"/movies/people/{link}", f"/api/people/{link}")
    assert django == aiohttp
    assert orjson.loads(aiohttp[1])["previous"] is not None
    films = f"{person_id}/films"
    link = "?limit=7"
    pages = 0
    while link is not None:
        path = f"{films}{link}"
        django, aiohttp = await both(api, f"/movies/people/{path}", f"/api/people/{path}")
        assert django == aiohttp, link
        link = orjson.loads(aiohttp[1])["next"]
        pages += 1
    assert pages == 5
    for path in (f"{films}?limit=0", f"{films}?cursor=x", "424242", "424242/films", "x/films",
                 f"{person_id}?limit=1"):  # fmt: skip
        django, aiohttp = await both(api, f"/movies/people/{path}", f"/api/people/{path}")
        assert django == aiohttp, path
        assert aiohttp[0] in (400, 404), path


@pytest.mark.parametrize("sort", ["title", "-rating", "year"])
async def test_following_links_stays_identical(
    api: ApiClient, catalogue: Catalogue, sort: str
) -> None:
    link: str | None = f"?limit=3&sort={sort}"
    pages = 0
    while link is not None:
        django, aiohttp = await both(api, f"/movies/{link}", f"/api/movies{link}")
        assert django == aiohttp, link
        link = orjson.loads(aiohttp[1])["next"]
        pages += 1
    assert pages == 3


async def test_wrong_method_is_the_same_problem(api: ApiClient, catalogue: Catalogue) -> None:
    heat = catalogue.movies["Heat"].pk
    for method, django_path, api_path in [
        ("DELETE", "/movies/", "/api/movies"),
        ("PUT", f"/movies/{heat}/", f"/api/movies/{heat}"),
    ]:
        django, aiohttp = await both(api, django_path, api_path, method=method)
        assert django[:2] == aiohttp[:2]
        assert aiohttp[0] == 405


async def test_every_answer_forbids_sniffing_and_any_content(
    api: ApiClient, catalogue: Catalogue
) -> None:
    """200, 304, 400, 404 and 405 of both servers: nosniff and a CSP that allows nothing."""
    heat = catalogue.movies["Heat"].pk
    ok = await both(api, f"/movies/{heat}/", f"/api/movies/{heat}")
    tag = ok[1][2]
    cases = [
        ("GET", f"/movies/{heat}/", f"/api/movies/{heat}", {"If-None-Match": tag}, 304),
        ("GET", "/movies/?limit=1", "/api/movies?limit=1", None, 200),
        ("GET", "/movies/?limit=x", "/api/movies?limit=x", None, 400),
        ("GET", "/movies/0/", "/api/movies/0", None, 404),
        ("DELETE", "/movies/", "/api/movies", None, 405),
        ("GET", "/movies/export/?format=csv&year=1900", "/api/movies/export?format=csv&year=1900",
         None, 200),
    ]  # fmt: skip
    expected = ["nosniff", "default-src 'none'; frame-ancestors 'none'"]
    assert ok[0][3] == ok[1][3] == expected
    for method, django_path, api_path, headers, status in cases:
        django, aiohttp = await both(api, django_path, api_path, method, headers)
        assert (django[0], django[3]) == (aiohttp[0], aiohttp[3]) == (status, expected), api_path


async def test_a_nameless_parameter_is_named_as_the_query_gave_it(
    api: ApiClient, catalogue: Catalogue
) -> None:
    for query in ("=", "=x", "&="):
        django, aiohttp = await both(api, f"/movies/?{query}", f"/api/movies?{query}")
        assert django == aiohttp
        assert aiohttp[0] == 400
        assert orjson.loads(aiohttp[1]) == {
            "type": "about:blank",
            "title": "Bad Request",
            "status": 400,
            "detail": 'Invalid query parameter(s): "".',
            "errors": [{"name": "", "reason": "a parameter must have a name"}],
        }, query
