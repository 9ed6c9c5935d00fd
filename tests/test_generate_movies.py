"""manage.py generate_movies and movies.synthetic (COPY on PostgreSQL, ORM on SQLite)."""

from __future__ import annotations

import io
from collections import defaultdict
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from movies.importing import person_key
from movies.models import Credit, Genre, Movie, Person
from movies.synthetic import GENRES, FilmFactory, generate_catalogue, person_name, source_key

pytestmark = pytest.mark.django_db


def generate(*args: str) -> str:
    out = io.StringIO()
    call_command("generate_movies", "--quiet", *args, stdout=out)
    return out.getvalue()


def catalogue() -> dict[str, Any]:
    """The synthetic catalogue by source key, without ids or timestamps."""
    genres: dict[int, list[str]] = defaultdict(list)
    links = Movie.genres.through.objects.values_list("movie_id", "genre__name")
    for movie_id, genre in links.order_by("movie_id", "genre__name"):
        genres[movie_id].append(genre)
    credits: dict[int, list[tuple[str, str, int]]] = defaultdict(list)
    rows = Credit.objects.values_list("movie_id", "role", "billing_order", "person__name")
    for movie_id, role, order, name in rows.order_by("movie_id", "role", "billing_order"):
        credits[movie_id].append((role, name, order))
    movies = Movie.objects.values_list(
        "id",
        "source_key",
        "title",
        "year",
        "release_date",
        "runtime_minutes",
        "rating",
        "synopsis",
    )
    return {
        "movies": {key: (*fields, genres[pk], credits[pk]) for pk, key, *fields in movies},
        "people": sorted(Person.objects.values_list("name", "key")),
        "genres": sorted(Genre.objects.values_list("name", "slug")),
    }


def wipe() -> None:
    Movie.objects.all().delete()
    Person.objects.all().delete()
    Genre.objects.all().delete()


def test_the_same_seed_gives_the_same_rows_and_another_seed_does_not() -> None:
    generate("--count", "60", "--seed", "3", "--people", "40", "--batch-size", "7")
    first = catalogue()
    wipe()
    generate("--count", "60", "--seed", "3", "--people", "40")
    assert catalogue() == first
    wipe()
    generate("--count", "60", "--seed", "4", "--people", "40")
    other = catalogue()
    titles = [movie[0] for movie in first["movies"].values()]
    assert titles != [movie[0] for movie in other["movies"].values()]
    assert first["people"] == other["people"]  # the pool is named by index, not drawn


def test_stored_rows_are_the_factory_films() -> None:
    out = generate("--count", "25", "--seed", "11", "--people", "12")
    films = list(FilmFactory(11, 12).films(25))
    stored = catalogue()["movies"]
    assert set(stored) == {source_key(11, film.n) for film in films}
    for film in films:
        expected_credits = [("cast", person_name(p), order) for order, p in enumerate(film.cast)]
        expected_credits += [
            ("director", person_name(p), order) for order, p in enumerate(film.directors)
        ]
        assert stored[source_key(11, film.n)] == (
            film.title,
            film.year,
            film.release_date,
            film.runtime_minutes,
            film.rating,
            film.synopsis,
            sorted(GENRES[genre] for genre in film.genres),
            expected_credits,
        )
    credits = sum(len(film.cast) + len(film.directors) for film in films)
    assert "films:   25 created (seed 11)" in out
    assert f"credits: {credits} created" in out
    assert Person.objects.count() == 12


def test_films_have_a_plausible_shape() -> None:
    report = generate_catalogue(300, seed=5, people=50)
    assert (report.films, Movie.objects.count()) == (300, 300)
    assert report.credits == Credit.objects.count()
    assert Person.objects.count() == report.people_created == 50
    for movie in Movie.objects.prefetch_related("credits", "genres"):
        cast = sorted(c.billing_order for c in movie.credits.all() if c.role == Credit.Role.CAST)
        directors = [c for c in movie.credits.all() if c.role == Credit.Role.DIRECTOR]
        assert 2 <= len(cast) <= 8
        assert cast == list(range(len(cast)))
        assert len(directors) in (1, 2)
        assert 1 <= len(movie.genres.all()) <= 3
        assert 1920 <= movie.year <= 2024
        assert movie.rating is None or 0 <= movie.rating <= 10
        assert movie.runtime_minutes is None or 60 <= movie.runtime_minutes <= 240
        assert movie.release_date is None or movie.release_date.year == movie.year
        assert movie.title and movie.synopsis


def test_running_a_loaded_seed_again_changes_nothing() -> None:
    generate("--count", "30", "--seed", "8")
    before = catalogue()
    stamps = sorted(Movie.objects.values_list("updated_at", flat=True))
    out = generate("--count", "30", "--seed", "8")
    assert out == "Seed 8 is already loaded with 30 films: nothing to do.\n"
    assert catalogue() == before
    assert sorted(Movie.objects.values_list("updated_at", flat=True)) == stamps

    with pytest.raises(CommandError, match="seed 8 already has 30 synthetic films, not 31"):
        generate("--count", "31", "--seed", "8")
    assert Movie.objects.count() == 30


def test_existing_genres_and_people_are_reused() -> None:
    scifi = Genre.objects.create(name="Science Fiction", slug="science-fiction")
    sports = Genre.objects.create(name="Sports", slug="sports-films")  # same name, other slug
    known = Person.objects.create(name=person_name(0).upper(), key=person_key(person_name(0)))
    report = generate_catalogue(200, seed=2, people=20)
    assert report.genres_created == len(GENRES) - 2
    assert Genre.objects.count() == len(GENRES)
    assert (report.people_created, report.people_reused) == (19, 1)
    assert Person.objects.get(pk=known.pk).name == person_name(0).upper()
    # Person 0 is the most billed in a pool skewed to low indexes.
    assert Credit.objects.filter(person=known).exists()
    used = set(Movie.genres.through.objects.values_list("genre_id", flat=True))
    assert {scifi.pk, sports.pk} <= used


def test_ids_continue_after_a_load_and_seeds_coexist() -> None:
    generate("--count", "40", "--seed", "1")
    generate("--count", "40", "--seed", "2")
    assert Movie.objects.count() == 80
    top_movie = max(Movie.objects.values_list("id", flat=True))
    top_person = max(Person.objects.values_list("id", flat=True))
    movie = Movie.objects.create(title="Added by a curator", year=2024)
    person = Person.objects.create(name="New Person", key="new person")
    credit = Credit.objects.create(movie=movie, person=person)
    assert movie.pk > top_movie
    assert person.pk > top_person
    assert credit.pk is not None


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(CommandError, match="--people must be at least 10"):
        generate("--count", "5", "--seed", "1", "--people", "3")
    with pytest.raises(CommandError, match="invalid positive_int value: '0'"):
        generate("--count", "0", "--seed", "1")
    assert Movie.objects.count() == 0
