"""GET /api/genres, /api/genres/{slug}, /api/people, /api/people/{id} and
/api/people/{id}/films."""

from __future__ import annotations

from collections import Counter
from typing import Any
from urllib.parse import urlencode

import pytest

from movies.models import Person
from tests.api_fixtures import FILMS, GENRES, ApiClient, Catalogue, busy_person, json_of, orm

pytestmark = pytest.mark.django_db(transaction=True)


async def test_genres_with_film_counts(api: ApiClient, catalogue: Catalogue) -> None:
    counts = Counter(slug for _, _, slugs, _, _ in FILMS.values() for slug in slugs)
    response = await api.get("/api/genres")
    assert response.status == 200
    assert await json_of(response) == {
        "items": [
            {"slug": slug, "name": name, "movie_count": counts[slug]}
            for slug, name in sorted(GENRES.items(), key=lambda item: item[1])
        ]
    }
    again = await api.get("/api/genres", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status == 304


async def test_one_genre_with_its_film_count(api: ApiClient, catalogue: Catalogue) -> None:
    counts = Counter(slug for _, _, slugs, _, _ in FILMS.values() for slug in slugs)
    response = await api.get("/api/genres/drama")
    assert response.status == 200
    assert await json_of(response) == {"slug": "drama", "name": "Drama", "movie_count": 4}
    assert counts["drama"] == 4
    # The same item as the list shows, byte for byte.
    listed = await json_of(await api.get("/api/genres"))
    assert await json_of(await api.get("/api/genres/western")) in listed["items"]
    again = await api.get("/api/genres/drama", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status == 304
    assert again.headers["ETag"] == response.headers["ETag"]


@pytest.mark.parametrize("slug", ["musical", "Drama", "drama-", "a" * 65, "%C3%A9"])
async def test_a_slug_no_genre_has_is_404(api: ApiClient, catalogue: Catalogue, slug: str) -> None:
    response = await api.get(f"/api/genres/{slug}")
    assert response.status == 404
    assert (await json_of(response))["detail"] == "Genre does not exist."


async def test_one_genre_takes_no_query(api: ApiClient, catalogue: Catalogue) -> None:
    response = await api.get("/api/genres/drama?limit=1")
    assert response.status == 400
    assert (await json_of(response))["errors"] == [{"name": "limit", "reason": "unknown parameter"}]


async def test_people_pages_by_name(api: ApiClient, catalogue: Catalogue) -> None:
    people = sorted(catalogue.people.values(), key=lambda person: (person.name, person.pk))
    first = await json_of(await api.get("/api/people?limit=4"))
    assert first == {
        "items": [{"id": person.pk, "name": person.name} for person in people[:4]],
        "limit": 4,
        "next": first["next"],
        "previous": None,
    }
    # Every next is a keyset cursor (never the offset limit's 400).
    assert first["next"].startswith("?limit=4&cursor=")
    second = await json_of(await api.get("/api/people" + first["next"]))
    assert [item["name"] for item in second["items"]] == [p.name for p in people[4:8]]
    back = await json_of(await api.get("/api/people" + second["previous"]))
    assert back["items"] == first["items"]
    shallow = await json_of(await api.get("/api/people?limit=4&offset=4"))
    assert shallow["items"] == second["items"]
    assert shallow["previous"] == "?limit=4"


async def test_people_search(api: ApiClient, catalogue: Catalogue) -> None:
    body = await json_of(await api.get("/api/people?q=ford"))
    assert body["items"] == [{"id": catalogue.people["Harrison Ford"].pk, "name": "Harrison Ford"}]
    assert body["next"] is None
    nobody = await json_of(await api.get("/api/people?q=zzz"))
    assert nobody["items"] == []


NAMES = [
    "John Smith", "Elton John", "Johnny Cash", "DeJohnette", "Jo Hnson", "Mary Jones",
    "Ann Jones", "50% Off", "a_b", "Ümit Öz", "Al", "Bo Jo", "JOHN", "john", "Jon",
]  # fmt: skip


def named(names: list[str]) -> None:
    Person.objects.bulk_create(Person(name=name, key=f"named {n}") for n, name in enumerate(names))


def renamed() -> None:
    # The name keys follow a rename and a delete (PostgreSQL's triggers).
    Person.objects.filter(name="Mary Jones").update(name="Mary Johnson")
    Person.objects.filter(name="Johnny Cash").delete()


def substring_matches(q: str) -> list[dict[str, Any]]:
    people = Person.objects.filter(name__icontains=q).order_by("name", "id")
    return [{"id": pk, "name": name} for pk, name in people.values_list("id", "name")]


@pytest.mark.parametrize(
    "q", ["john", "JOHN", "ohn", "jo", "n j", "n", "50%", "a_b", "%", "_", "ümit", "zzz", "ohnso"]
)
async def test_people_search_is_every_name_holding_the_text_in_name_order(
    api: ApiClient, catalogue: Catalogue, q: str
) -> None:
    await orm(named, NAMES)
    await orm(renamed)
    expected = await orm(substring_matches, q)
    items: list[dict[str, Any]] = []
    link: str | None = "?" + urlencode({"q": q, "limit": 2})
    while link is not None:
        page = await json_of(await api.get("/api/people" + link))
        items += page["items"]
        link = page["next"]
    assert items == expected
    if q in ("john", "ohn"):
        assert "Mary Johnson" in [item["name"] for item in items]
        assert "Johnny Cash" not in [item["name"] for item in items]


async def test_person_with_filmography_newest_first(api: ApiClient, catalogue: Catalogue) -> None:
    scott = catalogue.people["Ridley Scott"]
    response = await api.get(f"/api/people/{scott.pk}")
    assert response.status == 200
    films = [catalogue.movies[title] for title in ("Gladiator", "Blade Runner", "Alien")]
    assert await json_of(response) == {
        "id": scott.pk,
        "name": "Ridley Scott",
        "filmography": [
            {
                "movie": {"id": movie.pk, "title": movie.title, "year": movie.year},
                "role": "director",
                "character": "",
            }
            for movie in films
        ],
        "filmography_next": None,
    }
    # The first page of the films is the detail's.
    page = await json_of(await api.get(f"/api/people/{scott.pk}/films"))
    assert page == {
        "items": (await json_of(response))["filmography"],
        "limit": 20,
        "next": None,
        "previous": None,
    }


def entries(credits: list[tuple[int, str, int, str]]) -> list[dict[str, Any]]:
    return [
        {"movie": {"id": movie, "title": title, "year": year}, "role": role, "character": ""}
        for year, title, movie, role in credits
    ]


async def test_a_long_filmography_is_paged_from_the_person(api: ApiClient) -> None:
    person_id, credits = await orm(busy_person)
    detail = await json_of(await api.get(f"/api/people/{person_id}"))
    assert detail["filmography"] == entries(credits[:20])
    # Relative to the person's URL: /api/people/{id} + "{id}/films?..." is the films page.
    link = detail["filmography_next"]
    assert link.startswith(f"{person_id}/films?limit=20&cursor=")
    rest = await json_of(await api.get(f"/api/people/{link}"))
    assert rest["items"] == entries(credits[20:])
    assert rest["next"] is None
    back = await json_of(await api.get(f"/api/people/{person_id}/films{rest['previous']}"))
    assert back["items"] == detail["filmography"]
    assert back["previous"] is None


@pytest.mark.parametrize("limit", [1, 4, 29, 100])
async def test_filmography_pages_walk_both_ways(api: ApiClient, limit: int) -> None:
    person_id, credits = await orm(busy_person)
    path = f"/api/people/{person_id}/films"
    pages: list[dict[str, Any]] = []
    link: str | None = f"?limit={limit}"
    while link is not None:
        pages.append(await json_of(await api.get(path + link)))
        link = pages[-1]["next"]
    assert [item for page in pages for item in page["items"]] == entries(credits)
    assert all(len(page["items"]) == limit for page in pages[:-1])
    # Back from the last page by previous: the same pages, in reverse.
    link = pages[-1]["previous"]
    for page in reversed(pages[:-1]):
        assert link is not None
        again = await json_of(await api.get(path + link))
        assert again["items"] == page["items"]
        link = again["previous"]
    assert link is None


@pytest.mark.parametrize(
    ("query", "name", "reason"),
    [
        ("?limit=0", "limit", "Input should be greater than or equal to 1"),
        ("?offset=20", "offset", "unknown parameter"),
        ("?cursor=bad!", "cursor", "is not a valid cursor"),
        # A cursor of the people list: another order's.
        ("?cursor=eyJzIjoibmFtZSIsInYiOiJBIiwiaSI6MSwiYiI6ZmFsc2V9", "cursor",
         "was made for another sort order; drop it or keep the sort parameter"),
    ],
)  # fmt: skip
async def test_a_bad_filmography_query_is_400(
    api: ApiClient, catalogue: Catalogue, query: str, name: str, reason: str
) -> None:
    scott = catalogue.people["Ridley Scott"].pk
    response = await api.get(f"/api/people/{scott}/films{query}")
    assert response.status == 400
    assert (await json_of(response))["errors"] == [{"name": name, "reason": reason}]


@pytest.mark.parametrize("raw_id", ["424242", "x", "0"])
async def test_the_films_of_an_unknown_person_are_404(
    api: ApiClient, catalogue: Catalogue, raw_id: str
) -> None:
    response = await api.get(f"/api/people/{raw_id}/films?limit=5")
    assert response.status == 404
    assert (await json_of(response))["detail"] == "Person does not exist."


@pytest.mark.parametrize("raw_id", ["424242", "x", "0"])
async def test_unknown_person_is_404(api: ApiClient, catalogue: Catalogue, raw_id: str) -> None:
    response = await api.get(f"/api/people/{raw_id}")
    assert response.status == 404
    assert (await json_of(response))["detail"] == "Person does not exist."


async def test_bad_people_query_is_400(api: ApiClient) -> None:
    response = await api.get("/api/people?limit=0&sort=name")
    assert response.status == 400
    assert (await json_of(response))["errors"] == [
        {"name": "limit", "reason": "Input should be greater than or equal to 1"},
        {"name": "sort", "reason": "unknown parameter"},
    ]
