"""movies/drf/: the typical DRF API lists the films in the API's order and pages
them as DRF's LimitOffsetPagination does, with its defaults."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from movies import selectors
from movies.schemas import DEFAULT_LIMIT, MovieListQuery
from tests.api_fixtures import Catalogue, build_catalogue

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]


@pytest.fixture
def films() -> Catalogue:
    return build_catalogue()


def get(path: str) -> tuple[int, Any]:
    response = Client().get(path)
    return response.status_code, orjson.loads(response.content)


def test_list_pages_are_the_selectors_films_in_the_same_order(films: Catalogue) -> None:
    total = len(films.movies)
    for limit, offset in ((3, 0), (3, 3), (4, 8), (DEFAULT_LIMIT, 0)):
        status, page = get(f"/drf/movies/?limit={limit}&offset={offset}")
        query = MovieListQuery.model_validate({"limit": limit, "offset": offset})
        expected = selectors.list_movies(query).items
        assert status == 200
        assert [(m["id"], m["title"]) for m in page["results"]] == [
            (m["id"], m["title"]) for m in expected
        ]
        assert page["count"] == total
    # DRF's default page size is the API's, and nothing caps a client's limit.
    status, page = get("/drf/movies/")
    assert (status, len(page["results"])) == (200, min(DEFAULT_LIMIT, total))
    assert settings.REST_FRAMEWORK["PAGE_SIZE"] == DEFAULT_LIMIT
    status, page = get("/drf/movies/?limit=1000000")
    assert (status, len(page["results"]), page["next"]) == (200, total, None)


def test_a_film_has_its_genres_and_credits_nested(films: Catalogue) -> None:
    heat = films.movies["Heat"]
    status, film = get(f"/drf/movies/{heat.pk}/")
    expected = selectors.get_movie(heat.pk)
    assert status == 200 and expected is not None
    assert (film["id"], film["title"]) == (expected["id"], expected["title"])
    assert film["genres"] == expected["genres"]
    cast = [c for c in film["credits"] if c["role"] == "cast"]
    assert [c["person"] for c in cast] == [
        {"id": c["id"], "name": c["name"]} for c in expected["cast"]
    ]
    assert get("/drf/movies/999999999/")[0] == 404


def test_the_list_prefetches_instead_of_a_query_per_film(films: Catalogue) -> None:
    with CaptureQueriesContext(connection) as queries:
        status, page = get("/drf/movies/?limit=10")
    assert status == 200 and len(page["results"]) == len(films.movies) > 1
    # DRF's COUNT, the page, the page's genres: not one query per film.
    assert len(queries) == 3


def test_it_is_read_only_and_json_only(films: Catalogue) -> None:
    client = Client()
    response = client.post("/drf/movies/", {"title": "x"}, content_type="application/json")
    assert response.status_code == 405
    response = client.get("/drf/movies/?limit=1", headers={"Accept": "text/html"})
    assert response.status_code == 406  # no browsable API


def test_the_contenders_routes_exist_only_when_asked(settings: Any) -> None:
    """Off by default (DRF's page takes any limit); the tests run with them on."""
    import importlib

    from django.urls import clear_url_caches

    from mymoviedb import urls

    def routed() -> set[str]:
        clear_url_caches()
        return {str(pattern.pattern) for pattern in importlib.reload(urls).urlpatterns}

    try:
        settings.BENCH_CONTENDERS = False
        assert {"async/movies/", "drf/movies/"}.isdisjoint(routed())
        settings.BENCH_CONTENDERS = True
        assert {"async/movies/", "drf/movies/", "movies/"} <= routed()
    finally:
        settings.BENCH_CONTENDERS = True
        routed()
