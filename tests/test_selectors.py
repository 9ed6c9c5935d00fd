"""movies.selectors: keyset pagination, filters, search and query counts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, get_args

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from movies import selectors
from movies.cursors import Cursor
from movies.models import Credit, Movie, Person
from movies.schemas import FilmographyQuery, MovieListQuery, MovieSort
from tests.api_fixtures import Catalogue, build_catalogue

pytestmark = pytest.mark.django_db

SORTS: tuple[str, ...] = get_args(MovieSort)


@pytest.fixture
def films(db: None) -> Catalogue:
    catalogue = build_catalogue()
    # Ties on every sort key: a second "Heat", same year and rating as another film.
    catalogue.movies["Heat (1986)"] = Movie.objects.create(title="Heat", year=1986, rating=8.4)
    return catalogue


def list_query(**values: Any) -> MovieListQuery:
    if isinstance(values.get("cursor"), Cursor):  # sent as a client sends it: its text
        values["cursor"] = values["cursor"].encode()
    return MovieListQuery.model_validate(values)


def expected_order(sort: str) -> list[int]:
    """Ids in the API's order, computed in Python: NULLs last in both directions."""
    field = sort.lstrip("-")
    descending = sort.startswith("-")
    rows = list(Movie.objects.values_list("id", field))
    valued = sorted((row for row in rows if row[1] is not None), key=lambda row: (row[1], row[0]))
    nulls = sorted(row for row in rows if row[1] is None)
    if descending:
        valued.reverse()
        nulls.reverse()
    return [row_id for row_id, _ in valued + nulls]


def walk(query: dict[str, Any]) -> tuple[list[list[int]], list[list[int]]]:
    """Every page forwards through next cursors, then back through previous ones."""
    forwards: list[list[int]] = []
    page = selectors.list_movies(list_query(**query))
    forwards.append([item["id"] for item in page.items])
    while page.next_cursor is not None:
        page = selectors.list_movies(list_query(**query, cursor=page.next_cursor))
        forwards.append([item["id"] for item in page.items])
    backwards = [forwards[-1]]
    while page.previous_cursor is not None:
        page = selectors.list_movies(list_query(**query, cursor=page.previous_cursor))
        backwards.append([item["id"] for item in page.items])
    return forwards, backwards[::-1]


@pytest.mark.parametrize("sort", SORTS)
def test_keyset_pages_cover_the_order_both_ways(films: Catalogue, sort: str) -> None:
    expected = expected_order(sort)
    forwards, backwards = walk({"limit": 2, "sort": sort})
    assert [row_id for page in forwards for row_id in page] == expected
    assert all(len(page) == 2 for page in forwards[:-1])
    assert backwards == forwards


@pytest.mark.parametrize("sort", ["title", "-rating", "rating", "year"])
def test_cursor_pages_are_stable_under_inserts_before_them(films: Catalogue, sort: str) -> None:
    query = list_query(limit=3, sort=sort)
    first = selectors.list_movies(query)
    assert first.next_cursor is not None
    second = selectors.list_movies(list_query(limit=3, sort=sort, cursor=first.next_cursor))
    by_offset = selectors.list_movies(list_query(limit=3, offset=3, sort=sort))
    assert by_offset.items == second.items

    # Rows that sort before the cursor, as if inserted by someone else meanwhile.
    early = {"title": "AAA", "year": 1870, "rating": 0.0 if sort == "rating" else 10.0}
    Movie.objects.bulk_create(Movie(**early) for _ in range(2))
    again = selectors.list_movies(list_query(limit=3, sort=sort, cursor=first.next_cursor))
    assert again.items == second.items
    shifted = selectors.list_movies(list_query(limit=3, offset=3, sort=sort))
    assert shifted.items != second.items  # what the cursor protects against


def count_queries(function: Callable[[], Any]) -> int:
    with CaptureQueriesContext(connection) as queries:
        function()
    return len(queries)


def test_detail_takes_one_statement_whatever_the_cast(films: Catalogue) -> None:
    small = films.movies["Witness"]
    big = Movie.objects.create(title="Crowded", year=2001)
    people = Person.objects.bulk_create(
        Person(name=f"Extra {n}", key=f"extra {n}") for n in range(60)
    )
    Credit.objects.bulk_create(
        Credit(movie=big, person=person, billing_order=n) for n, person in enumerate(people)
    )
    # Compiling the shape first asks SQLite once whether it has JSON functions
    # (Django's feature check): a query per connection, not per film.
    selectors.get_movie(small.pk)
    assert count_queries(lambda: selectors.get_movie(small.pk)) == 1
    assert count_queries(lambda: selectors.get_movie(big.pk)) == 1
    cast = selectors.get_movie(big.pk)["cast"]  # type: ignore[index]
    assert [member["name"] for member in cast] == [f"Extra {n}" for n in range(60)]  # billing order
    assert count_queries(lambda: selectors.get_movie(10**9)) == 1


def test_list_takes_one_statement_whatever_the_page(films: Catalogue) -> None:
    assert count_queries(lambda: selectors.list_movies(list_query(limit=2))) == 1
    assert count_queries(lambda: selectors.list_movies(list_query(limit=100))) == 1
    query = list_query(genre="crime", q="e", sort="title")
    assert count_queries(lambda: selectors.list_movies(query)) == 1
    # In relevance order (a search's default), on PostgreSQL: one word is one
    # statement (its ranked postings and the page's rows); with other filters, the
    # word's postings, the filters among them, the page; more words: the words,
    # the ranked candidates, the filters, the page (movies.selectors.ranked).
    # SQLite: the ranked candidates, the filters, the page.
    postgres = connection.vendor == "postgresql"
    assert count_queries(lambda: selectors.list_movies(list_query(q="heat"))) == (
        1 if postgres else 2
    )
    relevance = list_query(genre="crime", q="heat")
    assert count_queries(lambda: selectors.list_movies(relevance)) == 3
    relevance = list_query(genre="crime", q="the heat")
    assert count_queries(lambda: selectors.list_movies(relevance)) == (4 if postgres else 3)


def test_person_people_and_genres_take_one_statement(films: Catalogue) -> None:
    from movies.schemas import PeopleListQuery

    ford = films.people["Harrison Ford"].pk
    assert count_queries(lambda: selectors.get_person(ford)) == 1
    first = selectors.get_filmography(ford, FilmographyQuery.model_validate({"limit": 1}))
    assert first is not None and first.page.next_cursor is not None
    rest = FilmographyQuery.model_validate({"limit": 1, "cursor": first.page.next_cursor.encode()})
    assert count_queries(lambda: selectors.get_filmography(ford, rest)) == 1
    assert count_queries(lambda: selectors.get_filmography(10**9, rest)) == 1
    assert count_queries(lambda: selectors.list_genres()) == 1
    people = PeopleListQuery.model_validate({"q": "r"})
    assert count_queries(lambda: selectors.list_people(people)) == 1


def titles(**query: Any) -> list[str]:
    return [item["title"] for item in selectors.list_movies(list_query(**query)).items]


def test_credit_copies_follow_their_film(films: Catalogue) -> None:
    # Kept by the database (migration 0013's triggers): a film retitled or moved to
    # another year passes it to its credits, and a credit takes its film's.
    heat = films.movies["Heat"]
    Movie.objects.filter(pk=heat.pk).update(title="Heat II", year=2001)
    copies = Credit.objects.filter(movie=heat).values_list("movie_title", "movie_year")
    assert set(copies) == {("Heat II", 2001)}
    alien = Movie.objects.get(title="Alien")
    alien.title = "Alien³"
    alien.save()
    credit = Credit.objects.create(movie=alien, person=films.people["James Cameron"])
    credit.refresh_from_db()
    assert (credit.movie_title, credit.movie_year) == ("Alien³", 1979)
    Credit.objects.filter(pk=credit.pk).update(movie=heat)
    credit.refresh_from_db()
    assert (credit.movie_title, credit.movie_year) == ("Heat II", 2001)


@pytest.mark.parametrize("sort", ["title", "-title", "id", "-id", "year"])
def test_the_person_filter_lists_each_film_once_in_every_sort(films: Catalogue, sort: str) -> None:
    # Credited twice in some films (cast and director), read through their credits in
    # title and id order: each film once, walked by cursor to the end and back.
    person = films.people["James Cameron"]
    for movie in Movie.objects.exclude(credits__person=person)[:2]:
        Credit.objects.create(movie=movie, person=person, role="director")
        Credit.objects.create(movie=movie, person=person, role="cast")
    expected = list(
        Movie.objects.filter(credits__person=person)
        .distinct()
        .order_by(*selectors.sort_order(sort))
        .values_list("id", flat=True)
    )
    pages = [selectors.list_movies(list_query(person=person.pk, sort=sort, limit=1))]
    while (cursor := pages[-1].next_cursor) is not None:
        pages.append(
            selectors.list_movies(list_query(person=person.pk, sort=sort, limit=1, cursor=cursor))
        )
    assert [item["id"] for page in pages for item in page.items] == expected
    back = selectors.list_movies(
        list_query(
            person=person.pk, sort=sort, limit=len(expected), cursor=pages[-1].previous_cursor
        )
    )
    assert [item["id"] for item in back.items] == expected[:-1]


def test_filters(films: Catalogue) -> None:
    cameron = films.people["James Cameron"].pk
    assert titles(genre="crime") == ["Heat", "Witness"]
    assert titles(person=cameron, sort="year") == ["The Terminator", "Aliens"]
    assert titles(year=1986) == ["Aliens", "Heat"]
    assert titles(year_min=1990, sort="-year") == ["Gladiator", "Heat"]
    assert titles(year_max=1942) == ["Casablanca"]
    assert titles(q="runner") == ["Blade Runner"]
    assert titles(genre="western") == []


@pytest.mark.postgres(reason="full-text search")
def test_full_text_search_covers_synopsis_and_stems(films: Catalogue) -> None:
    # With an explicit sort, q is the full-text filter (relevance: tests/test_search.py).
    Movie.objects.create(title="Thief", year=1981, synopsis="A safecracker takes one last job.")
    assert titles(q="safecrackers", sort="title") == ["Thief"]  # in the synopsis only, stemmed
    assert titles(q="aliens", sort="title") == ["Alien", "Aliens"]
    assert titles(q='"blade runner"', sort="title") == ["Blade Runner"]
    assert titles(q="alien -aliens", sort="title") == []  # websearch: both stem to "alien"


def test_people_pages_and_person_filmography(films: Catalogue) -> None:
    from movies.schemas import PeopleListQuery

    page = selectors.list_people(PeopleListQuery.model_validate({"limit": 3, "q": "r"}))
    assert [person["name"] for person in page.items] == sorted(
        name for name in films.people if "r" in name.lower()
    )[:3]
    assert page.next_cursor is not None  # a keyset cursor
    after = PeopleListQuery.model_validate(
        {"limit": 3, "q": "r", "cursor": page.next_cursor.encode()}
    )
    rest = selectors.list_people(after).items
    assert [person["name"] for person in rest] == sorted(
        name for name in films.people if "r" in name.lower()
    )[3:6]
    ford = selectors.get_person(films.people["Harrison Ford"].pk)
    assert ford is not None
    assert [entry["movie"]["title"] for entry in ford.page.items] == ["Witness", "Blade Runner"]
    assert selectors.get_person(10**9) is None
