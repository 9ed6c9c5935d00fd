"""bench/contenders/drf.py: the typical DRF API lists the films in the API's order and
pages them as DRF's LimitOffsetPagination does, with its defaults; only the bench's
settings install it."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from typing import Any

import orjson
import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from bench.servers import REPO
from movies import selectors
from movies.schemas import DEFAULT_LIMIT, MovieListQuery
from tests.api_fixtures import Catalogue, build_catalogue

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("bench_settings"),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]


@pytest.fixture
def films() -> Catalogue:
    return build_catalogue()


def get(path: str) -> tuple[int, Any]:
    response = Client().get(path)
    return response.status_code, orjson.loads(response.content)


def test_list_pages_are_the_selectors_films_in_the_same_order(
    films: Catalogue, bench_settings: Any
) -> None:
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
    assert bench_settings.REST_FRAMEWORK["PAGE_SIZE"] == DEFAULT_LIMIT
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


@pytest.mark.parametrize(
    ("module", "named"), [("mymoviedb.settings", False), ("bench.settings", True)]
)
def test_only_the_bench_settings_name_the_contenders(module: str, named: bool) -> None:
    """The product's settings install no DRF and route no contender."""
    probe = (
        "import django; django.setup(); from django.apps import apps; from django.urls import"
        " get_resolver; routes = {str(p.pattern) for p in get_resolver().url_patterns};"
        " print(apps.is_installed('rest_framework'), 'drf/movies/' in routes,"
        " 'async/movies/' in routes)"
    )
    env = {"DJANGO_SETTINGS_MODULE": module, "SECRET_KEY": "x" * 50, "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert done.stdout.split() == [str(named)] * 3, done.stderr


def test_the_runtime_dependencies_name_no_contender() -> None:
    """`pip install .` (what deploy/Dockerfile installs) brings none of them: the bench
    extra does."""
    with (REPO / "pyproject.toml").open("rb") as file:
        project = tomllib.load(file)["project"]

    def names(requirements: list[str]) -> set[str]:
        return {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].lower() for r in requirements}

    contenders = {"djangorestframework", "uvicorn", "uvicorn-worker", "httptools", "uvloop"}
    assert names(project["dependencies"]) & contenders == set()
    assert contenders <= names(project["optional-dependencies"]["bench"])
