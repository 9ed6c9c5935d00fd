"""POST, PATCH and DELETE /api/movies: results, If-Match, admin history, atomicity."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth.models import User
from django.db import connection

from movies.models import Credit, Movie
from tests.api_fixtures import ApiClient, Catalogue, bearer, json_of, orm

pytestmark = pytest.mark.django_db(transaction=True)

Writer = tuple[User, str]


def new_film(catalogue: Catalogue) -> dict[str, Any]:
    return {
        "title": "Thief",
        "year": 1981,
        "release_date": "1981-03-27",
        "runtime_minutes": 122,
        "rating": 7.4,
        "synopsis": "A safecracker's last job.",
        "genres": ["crime", "drama"],
        "credits": [
            {"person_id": catalogue.people["Michael Mann"].pk, "role": "director"},
            {"person_id": catalogue.people["Al Pacino"].pk, "character_name": "Frank"},
        ],
    }


def history(movie_id: int) -> list[tuple[int, int, str]]:
    """(user, action, rendered message) of a film's admin history, oldest first."""
    entries = LogEntry.objects.filter(object_id=str(movie_id)).order_by("action_time", "id")
    return [(e.user_id, e.action_flag, e.get_change_message()) for e in entries]


def snapshot() -> tuple[Any, ...]:
    """Everything a write could touch, to prove a failed write touched nothing."""
    return (
        sorted(Movie.objects.values_list("id", "title", "year", "rating", "updated_at")),
        sorted(Credit.objects.values_list("movie_id", "person_id", "role", "billing_order")),
        sorted(Movie.genres.through.objects.values_list("movie_id", "genre_id")),
        LogEntry.objects.count(),
    )


async def test_post_creates_the_film_with_location_and_etag(
    api: ApiClient, catalogue: Catalogue, writer: Writer
) -> None:
    user, token = writer
    response = await api.post("/api/movies", json=new_film(catalogue), headers=bearer(token))
    assert response.status == 201, await response.text()
    body = await json_of(response)
    assert response.headers["Location"] == f"/api/movies/{body['id']}"

    fetched = await api.get(response.headers["Location"])
    assert await json_of(fetched) == body
    assert fetched.headers["ETag"] == response.headers["ETag"]
    assert body["title"] == "Thief"
    assert body["release_date"] == "1981-03-27"
    assert [g["slug"] for g in body["genres"]] == ["crime", "drama"]
    mann = catalogue.people["Michael Mann"].pk
    assert body["directors"] == [{"id": mann, "name": "Michael Mann"}]
    assert body["cast"] == [
        {"id": catalogue.people["Al Pacino"].pk, "name": "Al Pacino", "character": "Frank"}
    ]
    assert await orm(history, body["id"]) == [(user.pk, ADDITION, "Added.")]


@pytest.mark.parametrize(
    ("change", "status", "errors"),
    [
        ({"genres": ["crime", "space-opera"]}, 422,
         [{"name": "genres.1", "reason": "no genre has the slug 'space-opera'"}]),
        ({"credits": [{"person_id": 999999}]}, 422,
         [{"name": "credits.0.person_id", "reason": "no person has the id 999999"}]),
        ({"year": 1492}, 400,
         [{"name": "year", "reason": "Input should be greater than or equal to 1870"}]),
        ({"title": None}, 400, [{"name": "title", "reason": "Input should be a valid string"}]),
        ({"budget": 10}, 400, [{"name": "budget", "reason": "unknown field"}]),
    ],
)  # fmt: skip
async def test_rejected_post_changes_nothing(
    api: ApiClient,
    catalogue: Catalogue,
    writer: Writer,
    change: dict[str, Any],
    status: int,
    errors: list[dict[str, str]],
) -> None:
    before = await orm(snapshot)
    response = await api.post(
        "/api/movies", json={**new_film(catalogue), **change}, headers=bearer(writer[1])
    )
    assert response.status == status
    body = await json_of(response)
    assert body["status"] == status
    assert body["errors"] == errors
    assert await orm(snapshot) == before


async def test_duplicate_credit_is_a_400(
    api: ApiClient, catalogue: Catalogue, writer: Writer
) -> None:
    person = catalogue.people["Al Pacino"].pk
    film = {**new_film(catalogue), "credits": [{"person_id": person}, {"person_id": person}]}
    response = await api.post("/api/movies", json=film, headers=bearer(writer[1]))
    assert response.status == 400
    assert (await json_of(response))["errors"] == [
        {"name": "credits", "reason": f"person {person} is credited twice as cast"}
    ]


async def test_patch_changes_only_given_fields_and_logs_them(
    api: ApiClient, catalogue: Catalogue, writer: Writer
) -> None:
    user, token = writer
    heat = catalogue.movies["Heat"]
    url = f"/api/movies/{heat.pk}"
    before = await json_of(await api.get(url))
    change = {"title": "Heat (1995)", "rating": 8.3, "genres": ["crime"]}
    response = await api.patch(url, json=change, headers=bearer(token))
    assert response.status == 200, await response.text()
    body = await json_of(response)
    unchanged = {k: v for k, v in before.items() if k not in {"title", "rating", "genres"}}
    assert {k: v for k, v in body.items() if k in unchanged and k != "updated_at"} == {
        k: v for k, v in unchanged.items() if k != "updated_at"
    }
    assert (body["title"], body["rating"], body["genres"]) == (
        "Heat (1995)", 8.3, [{"slug": "crime", "name": "Crime"}],
    )  # fmt: skip
    assert body["updated_at"] > before["updated_at"]
    assert response.headers["ETag"] == (await api.get(url)).headers["ETag"]
    assert await orm(history, heat.pk) == [(user.pk, CHANGE, "Changed Title, Rating and Genres.")]


async def test_patch_null_clears_a_nullable_field_only(
    api: ApiClient, catalogue: Catalogue, writer: Writer
) -> None:
    url = f"/api/movies/{catalogue.movies['Alien'].pk}"
    cleared = await api.patch(url, json={"rating": None}, headers=bearer(writer[1]))
    assert (await json_of(cleared))["rating"] is None
    refused = await api.patch(url, json={"synopsis": None}, headers=bearer(writer[1]))
    assert refused.status == 400


async def test_patch_replaces_credits(api: ApiClient, catalogue: Catalogue, writer: Writer) -> None:
    url = f"/api/movies/{catalogue.movies['Heat'].pk}"
    niro = catalogue.people["Robert De Niro"].pk
    credits = [{"person_id": niro, "character_name": "Neil McCauley"}]
    body = await json_of(await api.patch(url, json={"credits": credits}, headers=bearer(writer[1])))
    assert body["cast"] == [{"id": niro, "name": "Robert De Niro", "character": "Neil McCauley"}]
    assert body["directors"] == []


async def test_empty_patch_changes_nothing(
    api: ApiClient, catalogue: Catalogue, writer: Writer
) -> None:
    url = f"/api/movies/{catalogue.movies['Alien'].pk}"
    before = await api.get(url)
    response = await api.patch(url, json={}, headers=bearer(writer[1]))
    assert response.status == 200
    assert response.headers["ETag"] == before.headers["ETag"]
    assert await orm(history, catalogue.movies["Alien"].pk) == []


async def test_stale_if_match_is_412_and_changes_nothing(
    api: ApiClient, catalogue: Catalogue, writer: Writer
) -> None:
    url = f"/api/movies/{catalogue.movies['Alien'].pk}"

    def conditional(tag: str) -> dict[str, str]:
        return {**bearer(writer[1]), "If-Match": tag}

    read = (await api.get(url)).headers["ETag"]
    first = await api.patch(url, json={"rating": 9.0}, headers=conditional(read))
    assert first.status == 200
    before = await orm(snapshot)
    stale_patch = await api.patch(url, json={"rating": 1.0}, headers=conditional(read))
    stale_delete = await api.delete(url, headers=conditional(read))
    for stale in (stale_patch, stale_delete):
        assert stale.status == 412
        assert (await json_of(stale))["title"] == "Precondition Failed"
    assert await orm(snapshot) == before

    current = first.headers["ETag"]
    # nginx weakens the tag when it gzips: the weak form of the current tag still
    # names this version (movies.conditional.if_match_versions); of a stale one, not.
    weak_stale = await api.patch(url, json={"rating": 2.0}, headers=conditional(f"W/{read}"))
    assert weak_stale.status == 412
    weak = await api.patch(url, json={"rating": 2.0}, headers=conditional(f"W/{current}"))
    assert weak.status == 200
    current = weak.headers["ETag"]
    listed = await api.patch(url, json={"rating": 2.0}, headers=conditional(f'"x", {current}'))
    assert listed.status == 200
    star = await api.patch(url, json={"rating": 3.0}, headers=conditional("*"))
    assert star.status == 200
    blank = await api.patch(url, json={"rating": 4.0}, headers=conditional(" "))
    assert blank.status == 200  # an empty If-Match names no tag: no precondition


async def test_if_match_names_the_version_any_writer_moves(
    api: ApiClient, catalogue: Catalogue, writer: Writer
) -> None:
    # A change made elsewhere (the admin saves the row, as here) makes a tag read
    # before it stale: If-Match compares the row's version, not a render.
    alien = catalogue.movies["Alien"]
    url = f"/api/movies/{alien.pk}"
    read = (await api.get(url)).headers["ETag"]

    def retitle() -> None:
        movie = Movie.objects.get(pk=alien.pk)
        movie.title = "Alien (director's cut)"
        movie.save()

    await orm(retitle)
    stale = await api.patch(
        url, json={"rating": 1.0}, headers={**bearer(writer[1]), "If-Match": read}
    )
    assert stale.status == 412
    current = (await api.get(url)).headers["ETag"]
    assert current != read
    fresh = await api.patch(
        url, json={"rating": 1.0}, headers={**bearer(writer[1]), "If-Match": current}
    )
    assert fresh.status == 200
    assert (await json_of(fresh))["title"] == "Alien (director's cut)"


async def test_concurrent_writers_with_one_etag_one_wins(
    api: ApiClient, catalogue: Catalogue, writer: Writer
) -> None:
    url = f"/api/movies/{catalogue.movies['Witness'].pk}"
    tag = (await api.get(url)).headers["ETag"]
    headers = {**bearer(writer[1]), "If-Match": tag}
    answers = await asyncio.gather(
        *(api.patch(url, json={"title": f"Witness {n}"}, headers=headers) for n in range(4))
    )
    statuses = sorted(answer.status for answer in answers)
    assert statuses[0] == 200
    # PostgreSQL: the row lock queues the losers, which then see a new ETag. The
    # in-memory SQLite test database (shared cache) refuses a second writer at
    # once instead of waiting: 503 + Retry-After, which overwrites nothing either.
    losers = {412} if connection.vendor == "postgresql" else {412, 503}
    assert set(statuses[1:]) <= losers
    winner = next(a for a in answers if a.status == 200)
    assert (await json_of(await api.get(url)))["title"] == (await json_of(winner))["title"]


async def test_delete_removes_the_film_and_logs_it(
    api: ApiClient, catalogue: Catalogue, writer: Writer
) -> None:
    user, token = writer
    alien = catalogue.movies["Alien"]
    tag = (await api.get(f"/api/movies/{alien.pk}")).headers["ETag"]
    url = f"/api/movies/{alien.pk}"
    response = await api.delete(url, headers={**bearer(token), "If-Match": tag})
    assert response.status == 204
    assert await response.read() == b""
    assert (await api.get(f"/api/movies/{alien.pk}")).status == 404
    assert await orm(history, alien.pk) == [(user.pk, DELETION, "")]
    assert not await orm(lambda: Credit.objects.filter(movie_id=alien.pk).exists())
    again = await api.delete(f"/api/movies/{alien.pk}", headers=bearer(token))
    assert again.status == 404


async def test_writes_to_unknown_films_are_404(
    api: ApiClient, catalogue: Catalogue, writer: Writer
) -> None:
    for method in (api.patch, api.delete):
        response = await method("/api/movies/987654", json={}, headers=bearer(writer[1]))
        assert response.status == 404
        assert (await json_of(response))["detail"] == "Movie does not exist."


async def test_search_finds_what_writes_made(
    api: ApiClient, catalogue: Catalogue, writer: Writer
) -> None:
    # One word: the ranked postings on PostgreSQL (kept by triggers), FTS5 on SQLite.
    async def found(q: str) -> list[str]:
        body = await json_of(await api.get("/api/movies", params={"q": q}))
        return [item["title"] for item in body["items"]]

    token = writer[1]
    heat = catalogue.movies["Heat"]
    patched = await api.patch(
        f"/api/movies/{heat.pk}", json={"title": "Collateral"}, headers=bearer(token)
    )
    assert patched.status == 200, await patched.text()
    assert await found("collateral") == ["Collateral"]
    assert await found("collat") == ["Collateral"]
    assert await found("heat") == []
    created = await api.post("/api/movies", json=new_film(catalogue), headers=bearer(token))
    assert created.status == 201, await created.text()
    assert await found("thief") == ["Thief"]
    deleted = await api.delete(f"/api/movies/{heat.pk}", headers=bearer(token))
    assert deleted.status == 204, await deleted.text()
    assert await found("collateral") == []
