"""GET /api/movies and /api/movies/{id}: payloads, filters, pagination, conditional GET."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings

from movies.models import Movie
from tests.api_fixtures import FILMS, ApiClient, Catalogue, json_of, orm

pytestmark = pytest.mark.django_db(transaction=True)


def summary(movie: Movie) -> dict[str, Any]:
    """A list item as the API must render it, built from the saved object."""
    return {
        "id": movie.pk,
        "title": movie.title,
        "year": movie.year,
        "release_date": movie.release_date.isoformat() if movie.release_date else None,
        "runtime_minutes": movie.runtime_minutes,
        "rating": movie.rating,
        "poster_url": movie.poster_url,
        "updated_at": movie.updated_at.isoformat(),
        "genres": sorted(genre.name for genre in movie.genres.all()),
    }


def summaries(movies: list[Movie]) -> list[dict[str, Any]]:
    return [summary(movie) for movie in movies]


def detail(movie: Movie) -> dict[str, Any]:
    credits = movie.credits.select_related("person").order_by("billing_order", "id")
    body = summary(movie)
    del body["genres"]
    return {
        **body,
        "synopsis": movie.synopsis,
        "wikipedia_slug": movie.wikipedia_slug,
        "created_at": movie.created_at.isoformat(),
        "genres": [{"slug": g.slug, "name": g.name} for g in movie.genres.order_by("name")],
        "directors": [
            {"id": c.person_id, "name": c.person.name} for c in credits if c.role == "director"
        ],
        "cast": [
            {"id": c.person_id, "name": c.person.name, "character": c.character_name}
            for c in credits
            if c.role == "cast"
        ],
    }


async def get_json(api: ApiClient, url: str) -> Any:
    response = await api.get(url)
    assert response.status == 200, await response.text()
    assert response.content_type == "application/json"
    return await json_of(response)


async def test_first_page_is_the_whole_expected_payload(
    api: ApiClient, catalogue: Catalogue
) -> None:
    movies = sorted(catalogue.movies.values(), key=lambda m: (m.title, m.pk))
    body = await get_json(api, "/api/movies?limit=3")
    assert body["items"] == await orm(summaries, movies[:3])
    assert body["limit"] == 3
    assert body["previous"] is None
    assert body["next"].startswith("?limit=3&sort=title&cursor=")


async def test_default_limit_lists_every_film_by_title(
    api: ApiClient, catalogue: Catalogue
) -> None:
    body = await get_json(api, "/api/movies")
    movies = sorted(catalogue.movies.values(), key=lambda m: m.title)
    assert body == {
        "items": await orm(summaries, movies),
        "limit": 20,
        "next": None,
        "previous": None,
    }


@pytest.mark.parametrize(
    "sort", ["title", "-year", "-rating", "rating", "updated_at", "-created_at", "-id"]
)
async def test_cursor_links_walk_every_film_forwards_and_back(
    api: ApiClient, catalogue: Catalogue, sort: str
) -> None:
    pages: list[list[str]] = []
    url: str | None = f"?limit=3&sort={sort}"
    while url is not None:
        body = await get_json(api, "/api/movies" + url)
        pages.append([item["title"] for item in body["items"]])
        url = body["next"]
        last = body
    assert sorted(title for page in pages for title in page) == sorted(FILMS)
    assert len(pages) == 3

    # Back from the last page, through the previous links, to the first page.
    back: list[list[str]] = [pages[-1]]
    url = last["previous"]
    while url is not None:
        body = await get_json(api, "/api/movies" + url)
        back.append([item["title"] for item in body["items"]])
        url = body["previous"]
    assert back[::-1] == pages


async def test_nullable_rating_sorts_nulls_last_in_both_directions(
    api: ApiClient, catalogue: Catalogue
) -> None:
    ascending = await get_json(api, "/api/movies?sort=rating")
    ratings = [item["rating"] for item in ascending["items"]]
    assert ratings == [7.4, 8.1, 8.1, 8.4, 8.5, 8.5, None, None]
    descending = await get_json(api, "/api/movies?sort=-rating")
    rated = sorted(ratings[:6], reverse=True)
    assert [item["rating"] for item in descending["items"]] == [*rated, None, None]


async def test_offset_pages_link_to_their_neighbours(api: ApiClient, catalogue: Catalogue) -> None:
    titles = sorted(FILMS)
    body = await get_json(api, "/api/movies?limit=3&offset=3")
    assert [item["title"] for item in body["items"]] == titles[3:6]
    assert body["previous"] == "?limit=3&sort=title"
    following = await get_json(api, "/api/movies" + body["next"])
    assert [item["title"] for item in following["items"]] == titles[6:]
    assert following["next"] is None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("genre=drama", ["Casablanca", "Gladiator", "Heat", "Witness"]),
        ("genre=western", []),
        ("year=1984", ["The Terminator"]),
        ("year_min=1984&year_max=1986", ["Aliens", "The Terminator", "Witness"]),
        ("genre=action&year_max=1990", ["Aliens", "The Terminator"]),
        ("q=alien", ["Alien", "Aliens"]),
        ("q=blade", ["Blade Runner"]),
    ],
)
async def test_filters(api: ApiClient, catalogue: Catalogue, query: str, expected: list) -> None:
    body = await get_json(api, f"/api/movies?{query}")
    assert [item["title"] for item in body["items"]] == expected


async def test_person_filter_lists_their_films(api: ApiClient, catalogue: Catalogue) -> None:
    scott = catalogue.people["Ridley Scott"]
    body = await get_json(api, f"/api/movies?person={scott.pk}&sort=year")
    assert [item["title"] for item in body["items"]] == ["Alien", "Blade Runner", "Gladiator"]


async def test_detail_is_the_whole_film(api: ApiClient, catalogue: Catalogue) -> None:
    heat = catalogue.movies["Heat"]
    body = await get_json(api, f"/api/movies/{heat.pk}")
    assert body == await orm(detail, heat)
    assert [member["name"] for member in body["cast"]] == ["Al Pacino", "Robert De Niro"]
    mann = catalogue.people["Michael Mann"].pk
    assert body["directors"] == [{"id": mann, "name": "Michael Mann"}]


@pytest.mark.parametrize("raw_id", ["999999", "abc", "0", "-1", "99999999999999999999", "1.0"])
async def test_unknown_film_is_404(api: ApiClient, catalogue: Catalogue, raw_id: str) -> None:
    response = await api.get(f"/api/movies/{raw_id}")
    assert response.status == 404
    assert response.content_type == "application/problem+json"
    assert await json_of(response) == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "Movie does not exist.",
    }


@pytest.mark.parametrize("path", ["/api/movies?limit=2", "/api/movies/{id}"])
async def test_etag_and_if_none_match(api: ApiClient, catalogue: Catalogue, path: str) -> None:
    url = path.format(id=catalogue.movies["Alien"].pk)
    first = await api.get(url)
    tag = first.headers["ETag"]
    assert tag.startswith('"') and tag.endswith('"')
    assert first.headers["Cache-Control"] == settings.API_CACHE_CONTROL

    again = await api.get(url, headers={"If-None-Match": tag})
    assert again.status == 304
    assert again.headers["ETag"] == tag
    assert await again.read() == b""
    weak_in_list = await api.get(url, headers={"If-None-Match": f'"other", W/{tag}'})
    assert weak_in_list.status == 304
    other = await api.get(url, headers={"If-None-Match": '"something-else"'})
    assert other.status == 200
    assert await other.read() == await first.read()


async def test_head_has_get_headers_without_body(api: ApiClient, catalogue: Catalogue) -> None:
    get = await api.get("/api/movies?limit=2")
    head = await api.head("/api/movies?limit=2")
    assert head.status == 200
    assert head.headers["ETag"] == get.headers["ETag"]
    assert head.headers["Content-Length"] == str(len(await get.read()))
    assert await head.read() == b""


async def test_a_change_changes_the_etag(api: ApiClient, catalogue: Catalogue) -> None:
    url = f"/api/movies/{catalogue.movies['Alien'].pk}"
    before = (await api.get(url)).headers["ETag"]
    await _retitle(catalogue.movies["Alien"].pk, "Alien (Director's Cut)")
    after = await api.get(url, headers={"If-None-Match": before})
    assert after.status == 200
    assert after.headers["ETag"] != before


async def _retitle(movie_id: int, title: str) -> None:
    def retitle() -> None:
        movie = Movie.objects.get(pk=movie_id)
        movie.title = title
        movie.save()

    await orm(retitle)
