"""movies.changes: every committed write is announced by NOTIFY, received here on a
real LISTEN connection; a rolled-back write announces nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models.signals import post_delete, post_save
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from aioapi.listener import connection_params
from movies import changes, services
from movies.admin import versions
from movies.bodies import MovieFields
from movies.changes import CHANNEL, MAX_PAYLOAD_BYTES, Change, split
from movies.importing import import_movies
from movies.models import Credit, Genre, Movie, Person
from movies.synthetic import generate_catalogue

Listener = psycopg.Connection[Any]
NOTIFY = pytest.mark.postgres(reason="LISTEN/NOTIFY")


@pytest.fixture
def static_root(settings: Any, tmp_path: Any) -> None:
    # WhiteNoise, in the admin's middleware, warns when STATIC_ROOT does not exist.
    settings.STATIC_ROOT = tmp_path


@pytest.fixture
def listener(transactional_db: None) -> Iterator[Listener]:
    """A LISTEN connection of its own, as an API worker holds one."""
    with psycopg.connect(**connection_params(), autocommit=True) as conn:
        conn.execute(f"LISTEN {CHANNEL}")
        yield conn


def received(conn: Listener, seconds: float = 0.3) -> list[Change]:
    """Every notification that arrives within ``seconds``."""
    return [Change.from_payload(n.payload) for n in conn.notifies(timeout=seconds)]


def plain(found: list[Change]) -> list[tuple[Any, ...]]:
    return [(c.kind, c.op, c.movies, c.people, c.genres) for c in found]


def heat() -> tuple[Movie, Person, Genre]:
    movie = Movie.objects.create(title="Heat", year=1995)
    person = Person.objects.create(name="Al Pacino", key="al pacino")
    genre = Genre.objects.create(name="Crime", slug="crime")
    return movie, person, genre


# --- the payload ----------------------------------------------------------------


def test_a_payload_round_trips_and_garbage_is_refused() -> None:
    change = Change("credit", "create", movies=(1,), people=(2, 3))
    body = change.body()
    assert body == b'{"kind":"credit","op":"create","movies":[1],"people":[2,3]}'
    assert Change.from_payload('{"id":5,' + body.decode()[1:]) == change
    assert Change.from_payload('{"id":5,' + body.decode()[1:]).id == 5
    for bad in ("nope", "[]", '{"kind":"film","op":"create"}', '{"kind":"movie","op":"x"}',
                '{"kind":"movie","op":"update","movies":["7"]}',
                '{"kind":"movie","op":"update","id":true}'):  # fmt: skip
        with pytest.raises(ValueError):
            Change.from_payload(bad)


def test_a_large_change_is_split_into_payloads_under_the_limit() -> None:
    movies = tuple(range(10**9, 10**9 + 2000))
    people = tuple(range(1, 3000))
    payloads = split(Change("movie", "import", movies=movies, people=people))
    assert len(payloads) > 1
    assert all(len(payload) <= MAX_PAYLOAD_BYTES for payload in payloads)
    parts = [Change.from_payload(payload.decode()) for payload in payloads]
    assert {(part.kind, part.op) for part in parts} == {("movie", "import")}
    assert tuple(m for part in parts for m in part.movies) == movies
    assert tuple(p for part in parts for p in part.people) == people


def test_a_change_too_large_for_a_few_payloads_becomes_all() -> None:
    payloads = split(Change("movie", "import", movies=tuple(range(10**9, 10**9 + 100_000))))
    assert payloads == [b'{"kind":"all","op":"import"}']


@pytest.mark.sqlite
@pytest.mark.django_db
def test_sqlite_sends_nothing_and_connects_no_receiver() -> None:
    assert not post_save.has_listeners(Movie)
    assert not post_delete.has_listeners(Credit)
    with CaptureQueriesContext(connection) as queries:
        changes.notify([Change("movie", "update", movies=(1,))])
        changes.films_imported([1, 2], people_created=True)
    assert len(queries) == 0


# --- ORM writes ------------------------------------------------------------------


@NOTIFY
def test_model_writes_are_announced_with_what_they_touched(listener: Listener) -> None:
    movie, person, genre = heat()
    credit = Credit.objects.create(movie=movie, person=person, billing_order=0)
    movie.genres.add(genre)
    movie.title = "Heat (1995)"
    movie.save()
    person.name = "Alfredo Pacino"
    person.save()
    genre.name = "Crime Film"
    genre.save()
    credit.delete()
    assert plain(received(listener)) == [
        ("movie", "create", (movie.pk,), (), ()),
        ("person", "create", (), (person.pk,), ()),
        ("genre", "create", (), (), (genre.pk,)),
        ("credit", "create", (movie.pk,), (person.pk,), ()),
        ("movie", "update", (movie.pk,), (), (genre.pk,)),
        ("movie", "update", (movie.pk,), (), ()),
        ("person", "update", (), (person.pk,), ()),
        ("genre", "update", (), (), (genre.pk,)),
        ("credit", "delete", (movie.pk,), (person.pk,), ()),
    ]


@NOTIFY
def test_ids_come_from_one_sequence_and_grow(listener: Listener) -> None:
    heat()
    ids = [change.id for change in received(listener)]
    numbers = [number for number in ids if isinstance(number, int)]
    assert numbers == ids and len(ids) == 3
    assert numbers == sorted(numbers) and len(set(numbers)) == 3


@NOTIFY
def test_a_deletion_is_announced_once_not_once_per_cascaded_credit(listener: Listener) -> None:
    movie, person, _ = heat()
    other = Person.objects.create(name="Robert De Niro", key="robert de niro")
    Credit.objects.create(movie=movie, person=person)
    Credit.objects.create(movie=movie, person=other, billing_order=1)
    received(listener)
    movie_id, other_id = movie.pk, other.pk
    movie.delete()
    assert plain(received(listener)) == [("movie", "delete", (movie_id,), (), ())]
    other.delete()
    assert plain(received(listener)) == [("person", "delete", (), (other_id,), ())]


@NOTIFY
def test_nothing_is_delivered_before_commit_and_nothing_after_a_rollback(
    listener: Listener,
) -> None:
    movie, _, _ = heat()
    received(listener)
    with transaction.atomic():
        movie.title = "Heat II"
        movie.save()
        assert received(listener) == []  # sent, but held until the commit
    assert plain(received(listener)) == [("movie", "update", (movie.pk,), (), ())]

    with pytest.raises(RuntimeError), transaction.atomic():
        movie.title = "Never saved"
        movie.save()
        Person.objects.create(name="Ghost", key="ghost")
        raise RuntimeError("roll back")
    assert received(listener) == []
    movie.refresh_from_db()
    assert movie.title == "Heat II"


@NOTIFY
def test_api_writes_announce_credits_written_in_bulk(listener: Listener) -> None:
    movie, person, _ = heat()
    user = User.objects.create_user("curator")
    received(listener)
    fields = MovieFields.model_validate({"credits": [{"person_id": person.pk}]})
    services.update_movie(movie_id=movie.pk, fields=fields, user_id=user.pk)
    # bulk_create sent no post_save: the service announced the credit itself.
    assert plain(received(listener)) == [
        ("credit", "update", (movie.pk,), (person.pk,), ()),
        ("movie", "update", (movie.pk,), (), ()),
    ]


@NOTIFY
@pytest.mark.usefixtures("static_root")
def test_an_admin_edit_is_announced(listener: Listener, admin_client: Client) -> None:
    movie, person, genre = heat()
    received(listener)
    data = {
        "title": "Heat", "synopsis": "", "genres": [genre.pk], "year": "1995",
        "release_date": "", "runtime_minutes": "", "rating": "", "wikipedia_slug": "",
        "poster_url": "", "credits-TOTAL_FORMS": "1", "credits-INITIAL_FORMS": "0",
        "credits-MIN_NUM_FORMS": "0", "credits-MAX_NUM_FORMS": "1000",
        "credits-0-person": str(person.pk), "credits-0-role": "cast",
        "credits-0-billing_order": "0", "credits-0-character_name": "Hanna",
        "version": versions.version_of(movie.pk),
    }  # fmt: skip
    response = admin_client.post(reverse("admin:movies_movie_change", args=[movie.pk]), data)
    assert response.status_code == 302
    assert sorted(plain(received(listener))) == [
        ("credit", "create", (movie.pk,), (person.pk,), ()),
        ("movie", "update", (movie.pk,), (), ()),
        ("movie", "update", (movie.pk,), (), (genre.pk,)),
    ]


# --- bulk writes ------------------------------------------------------------------


@NOTIFY
def test_each_import_batch_is_announced_with_its_films_and_people(listener: Listener) -> None:
    records = [
        {"title": f"Film {n}", "year": 2000, "cast": [f"Actor {n}"], "genres": ["Drama"]}
        for n in range(5)
    ]
    report = import_movies(records, batch_size=3)
    found = received(listener)
    films = tuple(m for change in found if change.kind == "movie" for m in change.movies)
    assert sorted(films) == sorted(report.changed_ids)
    credited = set(Credit.objects.values_list("person_id", flat=True))
    assert {p for change in found if change.kind == "movie" for p in change.people} == credited
    assert {(c.kind, c.op) for c in found} == {
        ("movie", "import"), ("person", "create"), ("genre", "create"),
    }  # fmt: skip
    # One announcement per committed batch (and the genre is created once).
    assert [c.kind for c in found if c.kind == "movie"] == ["movie", "movie"]

    assert import_movies(records).changed_ids == []  # nothing changed: nothing announced
    assert received(listener) == []


@NOTIFY
def test_a_synthetic_load_is_announced_once_as_all(listener: Listener) -> None:
    generate_catalogue(30, seed=5, people=10)
    found = plain(received(listener))
    # Its genres are created through the ORM, its films and people by COPY.
    assert found[-1] == ("all", "import", (), (), ())
    genres = set(Genre.objects.values_list("pk", flat=True))
    assert sorted(found[:-1]) == [("genre", "create", (), (), (pk,)) for pk in sorted(genres)]
    generate_catalogue(30, seed=5, people=10)  # already loaded: nothing written
    assert received(listener) == []


@NOTIFY
def test_postgresql_delivers_a_split_change_whole(listener: Listener) -> None:
    movies = tuple(range(10**12, 10**12 + 1500))
    with transaction.atomic():
        changes.notify([Change("movie", "import", movies=movies)])
    found = received(listener)
    assert len(found) > 1
    assert tuple(m for change in found for m in change.movies) == movies
