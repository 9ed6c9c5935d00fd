"""GET /api/genres, /api/genres/{slug}, /api/people and /api/people/{id}."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.api_fixtures import FILMS, GENRES, ApiClient, Catalogue, json_of

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
    }


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
