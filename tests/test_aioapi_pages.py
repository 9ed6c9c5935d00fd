"""Every list of the API walked by its ``next`` links to the end: no link leads to
an error, and the walk meets every row once, in order.

People are walked past the offset limit (MAX_OFFSET + a page), as the real
catalogue's 28k people are; films in every sort, with and without filters.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from movies.models import Genre, Movie, Person
from movies.schemas import MAX_OFFSET, MovieSort
from tests.api_fixtures import ApiClient, Catalogue, json_of, orm

pytestmark = pytest.mark.django_db(transaction=True)
MOVIE_SORTS: tuple[str, ...] = MovieSort.__args__  # type: ignore[attr-defined]


async def walk(api: ApiClient, path: str, first: str) -> list[dict[str, Any]]:
    """Every item from ``path + first`` on, following ``next``; each page a 200."""
    items: list[dict[str, Any]] = []
    link: str | None = first
    seen: set[str] = set()
    while link is not None:
        assert link not in seen, f"{path}{link} comes back"
        seen.add(link)
        response = await api.get(path + link)
        page = await json_of(response)
        assert response.status == 200, (link, page)
        items.extend(page["items"])
        link = page["next"]
    return items


async def walk_back(api: ApiClient, path: str, last: str) -> list[dict[str, Any]]:
    """Every item up to the page ``path + last``, following ``previous``, in list order."""
    pages: list[list[dict[str, Any]]] = []
    link: str | None = last
    while link is not None:
        response = await api.get(path + link)
        page = await json_of(response)
        assert response.status == 200, (link, page)
        pages.append(page["items"])
        link = page["previous"]
    return [item for page in reversed(pages) for item in page]


def add_people(count: int) -> list[int]:
    """``count`` more people in one statement; every person's id in the list's order."""
    Person.objects.bulk_create(
        Person(name=f"Extra {n:05d}", key=f"extra {n:05d}") for n in range(count)
    )
    return list(Person.objects.order_by("name", "id").values_list("id", flat=True))


async def test_people_are_walked_by_next_past_the_offset_limit(
    api: ApiClient, catalogue: Catalogue
) -> None:
    order = await orm(add_people, MAX_OFFSET + 150)
    everyone = await walk(api, "/api/people", "?limit=100")
    assert [person["id"] for person in everyone] == order
    # A search as long: ``q`` stays in every link.
    extras = await walk(api, "/api/people", "?limit=100&q=extra")
    assert len(extras) == MAX_OFFSET + 150
    assert [person["id"] for person in extras] == [
        person_id
        for person_id in order
        if person_id not in {p.pk for p in catalogue.people.values()}
    ]


async def test_people_are_walked_back_by_previous(api: ApiClient, catalogue: Catalogue) -> None:
    order = await orm(add_people, 95)
    pages = []
    link: str | None = "?limit=10&q=e"
    while link is not None:
        page = await json_of(await api.get("/api/people" + link))
        pages.append(link)
        link = page["next"]
    forwards = await walk(api, "/api/people", "?limit=10&q=e")
    backwards = await walk_back(api, "/api/people", pages[-1])
    assert backwards == forwards
    assert {person["id"] for person in forwards} <= set(order)


async def test_a_films_cursor_is_refused_by_people(api: ApiClient, catalogue: Catalogue) -> None:
    films = await json_of(await api.get("/api/movies?limit=2&sort=title"))
    cursor = films["next"].split("cursor=")[1]
    response = await api.get(f"/api/people?cursor={cursor}")
    assert response.status == 400
    assert await json_of(response) == {
        "type": "about:blank",
        "title": "Bad Request",
        "status": 400,
        "detail": "Invalid query parameter(s): cursor.",
        "errors": [
            {
                "name": "cursor",
                "reason": "was made for another sort order; drop it or keep the sort parameter",
            }
        ],
    }
    both = await api.get("/api/people?offset=20&cursor=abc")
    assert both.status == 400


def add_films(count: int) -> None:
    """``count`` more films with ties in every sort key and unrated ones."""
    drama = Genre.objects.get(slug="drama")
    films = Movie.objects.bulk_create(
        Movie(
            title=f"Reel {n % 40:02d}",
            year=1950 + n % 7,
            rating=None if n % 5 == 0 else (n % 11) / 1.1,
        )
        for n in range(count)
    )
    Movie.genres.through.objects.bulk_create(
        Movie.genres.through(movie_id=film.pk, genre_id=drama.pk) for film in films[::3]
    )


FILTERS = ("", "&genre=drama", "&year_min=1952&year_max=1954", "&q=reel")


@pytest.mark.parametrize("sort", MOVIE_SORTS)
async def test_films_are_walked_by_next_in_every_sort_and_filter(
    api: ApiClient, catalogue: Catalogue, sort: str
) -> None:
    await orm(add_films, 120)
    for where, offset in itertools.product(FILTERS, ("", "&offset=3")):
        query = f"?limit=9&sort={sort}{where}"
        every = await walk(api, "/api/movies", query)
        ids = [film["id"] for film in every]
        assert len(ids) == len(set(ids)), query
        count = await orm(matching, where)
        assert len(ids) == count, query
        later = await walk(api, "/api/movies", query + offset)
        assert later == every[3 if offset else 0 :], query


def matching(where: str) -> int:
    films = Movie.objects.all()
    if "genre" in where:
        films = films.filter(genres__slug="drama")
    if "year_min" in where:
        films = films.filter(year__gte=1952, year__lte=1954)
    if "q=reel" in where:
        films = films.filter(title__icontains="reel")
    return films.count()


async def test_genres_have_no_next(api: ApiClient, catalogue: Catalogue) -> None:
    body = await json_of(await api.get("/api/genres"))
    assert "next" not in body
