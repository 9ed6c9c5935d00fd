"""Hostile query parameters and written text: input is a 200 or a 400 problem
naming the parameter (or body field), never a database error.

One test per class of input, on both servers wherever both serve the path
(``/api/movies...`` on aioapi, ``/movies/...`` on Django: the same parsing).
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

import hypothesis
import orjson
import pytest
from django.db import connection
from django.http import StreamingHttpResponse
from django.test import Client
from hypothesis import strategies as st
from yarl import URL

from movies import prepared, selectors
from movies.schemas import MovieListQuery
from movies.search import SEARCH_CONFIG, websearch_text
from tests.api_fixtures import ApiClient, Catalogue, bearer, json_of, orm

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # WhiteNoise warns when collectstatic has not run; the views need no static files.
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]

# aioapi's path -> the Django comparison view serving the same resource.
DJANGO_PATHS = {"/api/movies": "/movies/", "/api/movies/export": "/movies/export/"}


async def answers(api: ApiClient, path: str, query: str) -> list[tuple[int, Any]]:
    """(status, parsed body) from aioapi and, where it serves ``path``, from Django.

    ``query`` is sent as it is (already percent-encoded)."""
    ours = await api.get(URL(f"{path}?{query}", encoded=True))
    body = await ours.read()
    results = [(ours.status, _parsed(ours.status, body, ndjson=path.endswith("/export")))]
    django_path = DJANGO_PATHS.get(path) or _django_detail(path)
    if django_path is not None:
        results.append(await orm(_django_get, f"{django_path}?{query}"))
    return results


def _django_detail(path: str) -> str | None:
    prefix = "/api/movies/"
    return f"/movies/{path.removeprefix(prefix)}/" if path.startswith(prefix) else None


def _django_get(path: str) -> tuple[int, Any]:
    response = Client().get(path)
    if isinstance(response, StreamingHttpResponse):
        export = b"".join(response.streaming_content)
        return response.status_code, _parsed(response.status_code, export, ndjson=True)
    return response.status_code, _parsed(response.status_code, response.content)


def _parsed(status: int, body: bytes, *, ndjson: bool = False) -> Any:
    # A 200 export is NDJSON (a film a line); everything else one JSON document.
    if ndjson and status == 200:
        return [orjson.loads(line) for line in body.splitlines()]
    return orjson.loads(body)


def names(problem: dict[str, Any]) -> list[str]:
    return [error["name"] for error in problem["errors"]]


# --- 1. search text PostgreSQL's websearch parser refuses ----------------------------

HOSTILE_SEARCHES = [
    "-" * 33,
    "-" * 200,
    "- " * 100,
    "(-" * 100,
    "-(" * 100,
    "!-" * 100,
    "alien " + "-" * 100 + "alien",
    "- -" * 60,
    "-|-&-<-)" * 25,
    '"' + "-" * 100 + '"',
    "-" * 50 + '""' * 20,
    "or " * 60,
    "-or " * 50,
    "alien or -" + "-" * 60,
    "\\" * 100,
    "'" * 100,
    ":*" * 100,
    "<->" * 60,
    "!" * 200,
    "(" * 200,
]


@pytest.mark.parametrize("path", ["/api/movies", "/api/movies/export"])
async def test_any_search_text_is_a_search(api: ApiClient, catalogue: Catalogue, path: str) -> None:
    for text in HOSTILE_SEARCHES:
        for status, body in await answers(api, path, f"q={quote(text)}"):
            assert status == 200, (text, body)
    # Still a search: a run of NOTs means NOT, and the words around it still count
    # (every synopsis says "a film"; SQLite looks for the whole text in titles).
    # The full-text filter's syntax: the list's with an explicit sort (a search
    # without one is in relevance order, over titles and people).
    expected = set(catalogue.movies) - {"Alien", "Aliens"}
    query = "q=" + quote("film " + "-" * 40 + "alien") + "&sort=title"
    for status, body in await answers(api, path, query):
        assert status == 200
        # An export ends with its trailer line.
        items = body["items"] if path == "/api/movies" else body[:-1]
        assert {item["title"] for item in items} == (
            expected if connection.vendor == "postgresql" else set()
        )


@pytest.mark.postgres(reason="websearch_to_tsquery")
@hypothesis.settings(max_examples=300, deadline=None, database=None, derandomize=True)
@hypothesis.given(
    st.lists(
        st.sampled_from(["-", " ", "(", ")", "!", "&", "|", "<", '"', "or", "a", "\\", "'", ":*"]),
        max_size=200,
    ).map("".join)
)
def test_websearch_parses_whatever_operators_it_is_given(text: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT websearch_to_tsquery(%s::regconfig, %s)", [SEARCH_CONFIG, websearch_text(text)]
        )
        cursor.fetchall()


# --- 2. cursors that decode but hold values no column can -----------------------------


def forged(sort: str, value: Any, row_id: Any = 1, backwards: Any = False) -> str:
    raw = orjson.dumps({"s": sort, "v": value, "i": row_id, "b": backwards})
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


FORGED_CURSORS = [
    ("title", "Alien\x00"),
    ("title", "x" * 301),
    ("title", 5),
    ("-year", 2**62),
    ("year", "1999"),
    ("year", 1999.5),
    ("year", True),
    ("year", 1500),
    ("rating", "8.5"),
    ("rating", 1e308),
    ("-rating", -1),
    ("rating", 10.5),
    ("rating", False),
    ("updated_at", "2026-01-01T00:00:00"),
    ("updated_at", "9999-12-31T23:00:00-05:00"),
    ("-created_at", "0001-01-01T00:00:00+05:00"),
    ("created_at", "2026-01-01T00:00:00+00:00\x00"),
    ("updated_at", 1700000000),
    ("id", 0),
    ("-id", 2**63),
]


@pytest.mark.parametrize(("sort", "value"), FORGED_CURSORS)
async def test_forged_cursor_values_are_a_400(
    api: ApiClient, catalogue: Catalogue, sort: str, value: Any
) -> None:
    for status, body in await answers(
        api, "/api/movies", f"sort={sort}&cursor={forged(sort, value)}"
    ):
        assert (status, names(body)) == (400, ["cursor"]), body


@pytest.mark.parametrize(
    ("row_id", "backwards"), [(0, False), (2**63, False), ("1", False), (1, 1)]
)
async def test_forged_cursor_ids_and_directions_are_a_400(
    api: ApiClient, catalogue: Catalogue, row_id: Any, backwards: Any
) -> None:
    cursor = forged("title", "Alien", row_id, backwards)
    for status, body in await answers(api, "/api/movies", f"cursor={cursor}"):
        assert (status, names(body)) == (400, ["cursor"]), body


async def test_a_cursor_the_api_would_write_is_still_read(
    api: ApiClient, catalogue: Catalogue
) -> None:
    cursor = forged("updated_at", "2000-01-01T00:00:00+02:00", 1, False)
    for status, body in await answers(api, "/api/movies", f"sort=updated_at&cursor={cursor}"):
        assert status == 200
        assert len(body["items"]) == len(catalogue.movies)


# --- 3. unknown query parameters, on every route ---------------------------------------


async def test_unknown_parameters_are_a_400_on_every_route(
    api: ApiClient, catalogue: Catalogue
) -> None:
    heat = catalogue.movies["Heat"].pk
    scott = catalogue.people["Ridley Scott"].pk
    # Fill the response cache first (PostgreSQL): a cached answer must not hide the 400.
    for path in ("/api/genres", f"/api/movies/{heat}", f"/api/people/{scott}"):
        assert (await api.get(path)).status == 200
    paths = [
        "/api/movies", "/api/movies/export", f"/api/movies/{heat}", "/api/genres",
        "/api/people", f"/api/people/{scott}", "/api/events",
    ]  # fmt: skip
    for path in paths:
        for status, body in await answers(api, path, "colour=red"):
            assert (status, body["errors"]) == (
                400,
                [{"name": "colour", "reason": "unknown parameter"}],
            ), path


async def test_head_and_conditional_requests_still_work(
    api: ApiClient, catalogue: Catalogue
) -> None:
    for path in ("/api/genres", f"/api/movies/{catalogue.movies['Heat'].pk}"):
        first = await api.get(path)
        assert first.status == 200
        head = await api.head(path)
        assert (head.status, head.headers["ETag"]) == (200, first.headers["ETag"])
        again = await api.get(path, headers={"If-None-Match": first.headers["ETag"]})
        assert again.status == 304


# --- 4. integers spelled one way only ---------------------------------------------------

LENIENT_INTEGERS = ["1_0", "%201", "1%20", "1.0", "010", "%2B1", "-0", "1e1", "%D9%A1", "0x1"]


@pytest.mark.parametrize("name", ["limit", "offset", "year", "year_min", "person"])
async def test_integers_are_plain_digits(api: ApiClient, catalogue: Catalogue, name: str) -> None:
    path = "/api/movies"
    for raw in LENIENT_INTEGERS:
        for status, body in await answers(api, path, f"{name}={raw}"):
            assert (status, names(body)) == (400, [name]), raw
    for status, _ in await answers(api, path, f"{name}={2000 if 'year' in name else 1}"):
        assert status == 200


async def test_path_ids_are_plain_digits(api: ApiClient, catalogue: Catalogue) -> None:
    heat = catalogue.movies["Heat"].pk
    for raw in (f"0{heat}", f"%2B{heat}", f"{heat}.0", f"%20{heat}"):
        for status, body in await answers(api, f"/api/movies/{raw}", ""):
            assert (status, body["detail"]) == (404, "Movie does not exist."), raw
    scott = catalogue.people["Ridley Scott"].pk
    assert (await api.get(f"/api/people/0{scott}")).status == 404
    for status, body in await answers(api, f"/api/movies/{heat}", ""):
        assert (status, body["title"]) == (200, "Heat")


async def test_people_list_integers_are_plain_digits(api: ApiClient, catalogue: Catalogue) -> None:
    response = await api.get(URL("/api/people?limit=1_0", encoded=True))
    assert (response.status, names(await json_of(response))) == (400, ["limit"])


# --- 5. a genre by its name -----------------------------------------------------------


async def test_a_genre_may_be_named(api: ApiClient, catalogue: Catalogue) -> None:
    by_slug = await answers(api, "/api/movies", "genre=science-fiction")
    assert by_slug[0][0] == 200 and len(by_slug[0][1]["items"]) == 3
    for name in ("Science%20Fiction", "science+fiction", "SCIENCE-FICTION", "Sci-Fi"):
        assert await answers(api, "/api/movies", f"genre={name}") == by_slug, name
    for status, body in await answers(api, "/api/movies", "genre=%E6%97%A5%E6%9C%AC"):
        assert (status, names(body)) == (400, ["genre"])
        assert "/api/genres" in body["errors"][0]["reason"]


# --- 6. one error entry per parameter ---------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("year=1985&year_min=2000&year_max=1990", ["year_min", "year_max"]),
        ("cursor=abc&offset=3", ["cursor", "offset"]),
        ("limit=0&year_min=2000&year_max=1990", ["limit"]),
    ],
)
async def test_each_error_names_one_parameter(
    api: ApiClient, catalogue: Catalogue, query: str, expected: list[str]
) -> None:
    for status, body in await answers(api, "/api/movies", query):
        assert (status, names(body)) == (400, expected)


# --- 7. unrated films last, in both directions, page by page ----------------------------


@pytest.mark.parametrize("sort", ["rating", "-rating"])
@pytest.mark.parametrize("limit", [1, 2, 3])
async def test_unrated_films_come_last_and_cursors_walk_through_them(
    api: ApiClient, catalogue: Catalogue, sort: str, limit: int
) -> None:
    rated = sorted(
        (
            (movie.rating, movie.pk, title)
            for title, movie in catalogue.movies.items()
            if movie.rating
        ),
        reverse=sort.startswith("-"),
    )
    unrated = sorted(
        ((movie.pk, title) for title, movie in catalogue.movies.items() if movie.rating is None),
        reverse=sort.startswith("-"),
    )
    expected = [title for *_, title in rated] + [title for _, title in unrated]
    for path in ("/api/movies", "/movies/"):
        pages, query = [], f"?sort={sort}&limit={limit}"
        while query is not None:
            body = await _get(api, path, query)
            pages.append([item["title"] for item in body["items"]])
            query = body["next"]
        assert [title for page in pages for title in page] == expected, path
        back, query = [], body["previous"]
        while query is not None:
            body = await _get(api, path, query)
            back.append([item["title"] for item in body["items"]])
            query = body["previous"]
        assert back[::-1] == pages[:-1], path


async def _get(api: ApiClient, path: str, query: str) -> Any:
    if path.startswith("/api/"):
        response = await api.get(URL(path + query, encoded=True))
        assert response.status == 200
        return await json_of(response)
    status, body = await orm(_django_get, path + query)
    assert status == 200
    return body


@pytest.mark.postgres(reason="its B-tree indexes")
@pytest.mark.parametrize("backwards", [False, True])
def test_best_rated_first_is_read_from_an_index(catalogue: Catalogue, backwards: bool) -> None:
    values = {"sort": "-rating", "limit": "10"}
    if backwards:
        values["cursor"] = forged("-rating", 8.1, catalogue.movies["Blade Runner"].pk, True)
    # The statement runs, so it is compiled and cached.
    selectors.list_movies(MovieListQuery.model_validate(values))
    # The shape's key (selectors.films.list_movies): field, scan descending, the sort
    # descending, a cursor or not, filters. Backwards, "-rating" is scanned ascending.
    key = ("movie-list", "rating", not backwards, True, backwards, ())
    statement = next(
        statement
        for (shape, *_), statement in prepared.STATEMENTS._statements.items()
        if shape == key
    )
    params = statement.params({"after_value": 8.1, "after_id": 1}, connection)
    with connection.cursor() as db:
        # Sorting is made so costly that a plan without a Sort node is chosen if one
        # exists: an index scan in the list's order (COALESCE(rating, -1) DESC, id DESC).
        db.execute("SET enable_sort = off")
        db.execute("SET enable_seqscan = off")
        try:
            db.execute("EXPLAIN " + statement.sql, params)
            plan = "\n".join(row[0] for row in db.fetchall())
        finally:
            db.execute("RESET enable_sort")
            db.execute("RESET enable_seqscan")
    assert "movie_rating_key_desc_id" in plan, plan
    assert "Sort  " not in plan.split("SubPlan")[0], plan


# --- 8. text no title (or other written text) may hold ----------------------------------

REFUSED_TITLES = [
    " ", "   ", "\t", "\u3000", "a\u202eb", "a\u202ab", "a\u2066b", "a\u2069b", "a\u200bb",
    "a\ufeffb", "a\u2060b", "a\uffffb", "a\ufffeb", "a\ufdd0b", "a\U0001fffeb",
    "a\x07b", "a\nb", "a\x7fb", "a\x85b",
]  # fmt: skip


@pytest.mark.parametrize("title", REFUSED_TITLES)
async def test_titles_without_visible_text_or_with_hidden_characters_are_refused(
    api: ApiClient, catalogue: Catalogue, writer: Any, title: str
) -> None:
    _, token = writer
    heat = catalogue.movies["Heat"].pk
    created = await api.post(
        "/api/movies", json={"title": title, "year": 2000}, headers=bearer(token)
    )
    changed = await api.patch(f"/api/movies/{heat}", json={"title": title}, headers=bearer(token))
    for response in (created, changed):
        body = await json_of(response)
        assert (response.status, names(body)) == (400, ["title"]), body


async def test_other_written_text_follows_the_same_rules(
    api: ApiClient, catalogue: Catalogue, writer: Any
) -> None:
    _, token = writer
    heat = catalogue.movies["Heat"].pk
    pacino = catalogue.people["Al Pacino"].pk
    cases = [
        ({"synopsis": "Evil \u202etwin"}, "synopsis"),
        ({"wikipedia_slug": "Heat\u200b"}, "wikipedia_slug"),
        ({"credits": [{"person_id": pacino, "character_name": "  "}]}, "credits.0.character_name"),
        ({"credits": [{"person_id": pacino, "character_name": "Mc\u2066Cauley"}]},
         "credits.0.character_name"),
    ]  # fmt: skip
    for fields, name in cases:
        response = await api.patch(f"/api/movies/{heat}", json=fields, headers=bearer(token))
        assert (response.status, names(await json_of(response))) == (400, [name]), fields
    # What a film may hold: any script, tabs and line breaks in prose, empty fields.
    fine = {
        # Persian and Indic spelling and emoji sequences need the (non-)joiners.
        "title": "七人の侍 — Amélie, «Ça», می\u200cخواهم, क्\u200dष, 👩\u200d👧",
        "synopsis": "Line one.\n\tLine two.\r\n",
        "wikipedia_slug": "",
        "credits": [{"person_id": pacino, "character_name": "Vincent Hanna"}],
    }
    response = await api.patch(f"/api/movies/{heat}", json=fine, headers=bearer(token))
    assert response.status == 200, await response.read()
    assert (await json_of(response))["title"] == fine["title"]
