"""movies.genre_copies: ``Movie.genre_list`` and ``Genre.movie_count`` follow every
write of the film-genre relation (ORM, API services, importer, generator), and a
load leaves the planner statistics (issue 28).
"""

from __future__ import annotations

import io
import json
from collections import defaultdict
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection

from movies import services
from movies.bodies import MovieCreate, MovieFields
from movies.importing import import_movies
from movies.models import Genre, Movie

pytestmark = pytest.mark.django_db

SAMPLE = Path(__file__).resolve().parent.parent / "movies" / "fixtures" / "sample-movies.json"


def assert_copies_match_the_links() -> None:
    """Every film's list and every genre's count, against the links themselves."""
    names: dict[int, list[str]] = defaultdict(list)
    links = Movie.genres.through.objects.order_by("genre__name").values_list(
        "movie_id", "genre__name"
    )
    for movie_id, name in links:
        names[movie_id].append(name)
    stored = dict(Movie.objects.values_list("id", "genre_list"))
    assert stored == {pk: names[pk] for pk in stored}
    counts: dict[int, int] = defaultdict(int)
    for genre_id in Movie.genres.through.objects.values_list("genre_id", flat=True):
        counts[genre_id] += 1
    kept = dict(Genre.objects.values_list("id", "movie_count"))
    assert kept == {pk: counts[pk] for pk in kept}


@pytest.fixture
def genres(db: None) -> dict[str, Genre]:
    # Created out of alphabetical order, "Zany" first, so ids and names disagree.
    return {
        slug: Genre.objects.create(slug=slug, name=name)
        for slug, name in [("zany", "Zany"), ("drama", "Drama"), ("comedy", "Comedy")]
    }


def test_orm_writes_on_either_side_keep_both_copies(genres: dict[str, Genre]) -> None:
    film = Movie.objects.create(title="Heat", year=1995)
    other = Movie.objects.create(title="Ran", year=1985)
    film.genres.set([genres["zany"], genres["drama"]])
    assert Movie.objects.get(pk=film.pk).genre_list == ["Drama", "Zany"]
    assert film.genre_list == ["Drama", "Zany"]  # the caller's instance too
    genres["comedy"].movies.add(film, other)
    film.genres.remove(genres["zany"])
    assert_copies_match_the_links()
    assert Movie.objects.get(pk=film.pk).genre_list == ["Comedy", "Drama"]
    genres["comedy"].movies.clear()
    other.genres.add(genres["drama"])
    film.genres.clear()
    assert_copies_match_the_links()
    assert Genre.objects.get(slug="drama").movie_count == 1
    other.delete()
    assert_copies_match_the_links()
    assert Genre.objects.get(slug="drama").movie_count == 0


def test_a_genre_renamed_or_deleted_rewrites_its_films_lists(genres: dict[str, Genre]) -> None:
    film = Movie.objects.create(title="Heat", year=1995)
    film.genres.set(list(genres.values()))
    drama = genres["drama"]
    drama.name = "Thriller"  # now after Comedy, before Zany... and renamed
    drama.save()
    assert Movie.objects.get(pk=film.pk).genre_list == ["Comedy", "Thriller", "Zany"]
    genres["comedy"].delete()
    assert Movie.objects.get(pk=film.pk).genre_list == ["Thriller", "Zany"]
    assert_copies_match_the_links()


def test_api_writes_keep_both_copies(genres: dict[str, Genre]) -> None:
    user = User.objects.create(username="curator")
    created = services.create_movie(
        fields=MovieCreate.model_validate(
            {"title": "Heat", "year": 1995, "genres": ["zany", "comedy"]}
        ),
        user_id=user.pk,
    )
    assert Movie.objects.get(pk=created["id"]).genre_list == ["Comedy", "Zany"]
    # Genres and a field at once: the film's save() after the links must keep the list.
    services.update_movie(
        movie_id=created["id"],
        fields=MovieFields.model_validate({"title": "Heat II", "genres": ["drama"]}),
        user_id=user.pk,
    )
    assert Movie.objects.get(pk=created["id"]).genre_list == ["Drama"]
    assert_copies_match_the_links()
    services.delete_movie(movie_id=created["id"], user_id=user.pk)
    assert_copies_match_the_links()


def test_the_importer_writes_both_copies_and_the_statistics() -> None:
    import_movies(json.loads(SAMPLE.read_text()))
    assert Movie.objects.exclude(genre_list=[]).exists()
    assert_copies_match_the_links()
    assert_analyzed()


def test_the_generator_writes_both_copies_and_the_statistics() -> None:
    call_command("generate_movies", "--quiet", "--count", "40", "--seed", "5", stdout=io.StringIO())
    assert Movie.objects.exclude(genre_list=[]).exists()
    assert_copies_match_the_links()
    assert_analyzed()


def assert_analyzed() -> None:
    """The films' table has fresh planner statistics (ANALYZE ran after the load)."""
    table = Movie._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Inserts leave reltuples alone (-1: never analysed); ANALYZE sets it,
            # exactly for a table this small. In the test's transaction, as written.
            cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [table])
            assert cursor.fetchone() == (Movie.objects.count(),)
            cursor.execute(
                "SELECT count(*) FROM pg_stats WHERE tablename = %s AND attname = 'year'", [table]
            )
            assert cursor.fetchone() == (1,)
        else:
            cursor.execute("SELECT stat FROM sqlite_stat1 WHERE tbl = %s", [table])
            rows = cursor.fetchall()
            assert rows, "no sqlite_stat1 row for the films' table"
            assert all(int(stat.split()[0]) == Movie.objects.count() for (stat,) in rows)
