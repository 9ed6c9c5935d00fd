"""manage.py import_movies and movies.importing, against the real test database."""

from __future__ import annotations

import gzip
import io
import json
import socket
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from movies.importing import (
    ImportAborted,
    Rejection,
    import_movies,
    person_key,
    read_source,
)
from movies.models import Credit, Genre, Movie, Person

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "movies" / "fixtures" / "sample-movies.json"
# The reference data sits beside the checkout (see its README); never inside it.
SHARED = ROOT.parent / "shared" / "data" / "wikipedia-movies.json.gz"


def film(title: str, year: Any = 2000, **fields: Any) -> dict[str, Any]:
    return {"title": title, "year": year, "cast": [], "genres": [], **fields}


def write_json(path: Path, records: Any, *, compress: bool = False) -> Path:
    body = json.dumps(records).encode()
    path.write_bytes(gzip.compress(body) if compress else body)
    return path


def run(source: Path | str, *args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_movies", str(source), "--quiet", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def catalogue() -> dict[str, list[tuple[Any, ...]]]:
    """Every stored value the importer writes, ids and timestamps included."""
    return {
        "movies": list(
            Movie.objects.order_by("id").values_list(
                "id",
                "source_key",
                "title",
                "year",
                "synopsis",
                "wikipedia_slug",
                "poster_url",
                "created_at",
                "updated_at",
            )
        ),
        "genres": list(Genre.objects.order_by("id").values_list("id", "name", "slug")),
        "links": list(
            Movie.genres.through.objects.order_by("id").values_list("id", "movie_id", "genre_id")
        ),
        "people": list(
            Person.objects.order_by("id").values_list("id", "name", "key", "updated_at")
        ),
        "credits": list(
            Credit.objects.order_by("id").values_list(
                "id", "movie_id", "person_id", "role", "billing_order", "character_name"
            )
        ),
    }


def cast_of(source_key: str) -> list[tuple[str, int]]:
    credits = Credit.objects.filter(movie__source_key=source_key, role=Credit.Role.CAST)
    return list(credits.order_by("billing_order").values_list("person__name", "billing_order"))


def genres_of(source_key: str) -> set[str]:
    return set(Movie.objects.get(source_key=source_key).genres.values_list("name", flat=True))


def test_sample_import_matches_the_file_and_a_second_run_changes_nothing() -> None:
    records = json.loads(SAMPLE.read_text())
    out, err = run(SAMPLE)
    assert err == ""
    assert f"{len(records)} created, 0 updated, 0 unchanged" in out
    assert Movie.objects.count() == len(records)
    godfather = next(r for r in records if r["href"] == "The_Godfather")
    movie = Movie.objects.get(source_key=f"wiki:{godfather['year']}:The_Godfather")
    assert (movie.title, movie.year, movie.synopsis, movie.wikipedia_slug) == (
        godfather["title"],
        godfather["year"],
        godfather["extract"],
        "The_Godfather",
    )
    assert cast_of(movie.source_key or "") == [
        (name, order) for order, name in enumerate(godfather["cast"])
    ]
    assert genres_of(movie.source_key or "") == set(godfather["genres"])
    # People in several films are stored once.
    names = {name for record in records for name in record["cast"]}
    assert Person.objects.count() == len(names)
    assert Credit.objects.count() == sum(len(record["cast"]) for record in records)

    before = catalogue()
    out, _ = run(SAMPLE)
    assert f"0 created, 0 updated, {len(records)} unchanged" in out
    assert "0 created, 0 reordered, 0 removed" in out
    assert catalogue() == before


def test_gzip_and_plain_sources_give_the_same_catalogue(tmp_path: Path) -> None:
    records = json.loads(SAMPLE.read_text())
    plain = write_json(tmp_path / "films.json", records)
    # No .gz suffix: gzip is recognised by its magic bytes.
    packed = write_json(tmp_path / "films.data", records, compress=True)
    assert read_source(str(packed)) == read_source(str(plain)) == records
    run(plain)
    before = catalogue()
    out, _ = run(packed, "--batch-size", "7")
    assert f"0 created, 0 updated, {len(records)} unchanged" in out
    assert catalogue() == before


def test_bad_records_are_rejected_with_reasons_and_good_ones_imported(tmp_path: Path) -> None:
    records = [
        film("Good One", cast=["Ann Actor"], genres=["Drama"]),
        film("Bad Year", year="abc"),
        {"year": 2001, "cast": []},
        film("Too Old", year=1869),
        film("Cast String", cast="Ann Actor"),
        ["not", "an", "object"],
        film("Bad Genre", genres=["Drama", 7]),
        film("   "),
        film("Year As Text", year=" 1999 ", href="Year_As_Text"),
        film("Bool Year", year=True),
        film("Future", year=2101),
        film("Odd Thumb", thumbnail="ftp://example.org/x.jpg"),
        film("Good Two", year=2001, cast=["Ann Actor", "Bo Actor"]),
    ]
    source = write_json(tmp_path / "films.json", records)
    out, err = run(source)
    report = import_movies(records)
    expected = [
        Rejection(1, "year 'abc' is not an integer"),
        Rejection(2, "missing title"),
        Rejection(3, "year 1869 is out of range 1870..2100"),
        Rejection(4, "cast is not a list"),
        Rejection(5, "expected a JSON object, got list"),
        Rejection(6, "genres[1] is not a string"),
        Rejection(7, "title is empty"),
        Rejection(9, "year True is not an integer"),
        Rejection(10, "year 2101 is out of range 1870..2100"),
        Rejection(11, "thumbnail is not an http(s) URL"),
    ]
    assert report.rejections == expected
    assert err.splitlines() == [f"rejected {rejection}" for rejection in expected]
    assert f"{len(records)} read, {len(expected)} rejected" in out
    assert sorted(Movie.objects.values_list("title", "year")) == [
        ("Good One", 2000),
        ("Good Two", 2001),
        ("Year As Text", 1999),
    ]
    assert cast_of("title:2001:good two") == [("Ann Actor", 0), ("Bo Actor", 1)]
    assert Person.objects.count() == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        (b'{"title": "Not a list", "year": 2000}', "is not a JSON array of films (it is an obj"),
        (b'[{"title": "Broken", "year": 2000', "is not valid JSON"),
        (b"\xff\xfe\x00garbage", "is not valid JSON"),
        (gzip.compress(b'[{"title": "x", "year": 2000}]')[:-12], "is not a valid gzip file"),
    ],
    ids=["missing", "object", "truncated-json", "not-utf8", "truncated-gzip"],
)
def test_a_bad_source_fails_clearly_and_writes_nothing(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    source = tmp_path / "films.json"
    if content is not None:
        source.write_bytes(content)
    with pytest.raises(CommandError) as exc:
        run(source)
    assert message in str(exc.value)
    assert str(source) in str(exc.value)
    assert (Movie.objects.count(), Person.objects.count(), Genre.objects.count()) == (0, 0, 0)


def test_a_directory_is_not_a_source(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="cannot read"):
        run(tmp_path)
    assert Movie.objects.count() == 0


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A real HTTP server on a free 127.0.0.1 port serving ``tmp_path``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_url_source_is_fetched_and_imported(http_root: tuple[Path, str]) -> None:
    root, base = http_root
    records = json.loads(SAMPLE.read_text())
    write_json(root / "films.json.gz", records, compress=True)
    out, _ = run(f"{base}/films.json.gz")
    assert f"{len(records)} created" in out
    assert Movie.objects.count() == len(records)

    with pytest.raises(CommandError, match=r"cannot fetch .*/missing.json: HTTP 404"):
        run(f"{base}/missing.json")
    assert Movie.objects.count() == len(records)


def test_an_unreachable_url_fails_clearly() -> None:
    # A port that was free a moment ago: nothing listens on it.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(CommandError, match=f"cannot fetch http://127.0.0.1:{port}/films.json: "):
        run(f"http://127.0.0.1:{port}/films.json", "--timeout", "2")
    assert Movie.objects.count() == 0


def test_genres_are_normalised_and_reuse_existing_ones() -> None:
    existing = Genre.objects.create(name="Comedy", slug="comedy")
    records = [
        film("A", genres=["Sci-Fi", "comedy", " Science   fiction "]),
        film("B", genres=["science fiction", "Sport", "film noir"]),
        film("C", genres=["SPORTS", "Comedy", "", "martial arts"]),
    ]
    report = import_movies(records)
    assert report.genres_created == 4
    assert sorted(Genre.objects.values_list("name", "slug")) == [
        ("Comedy", "comedy"),
        ("Martial Arts", "martial-arts"),
        ("Noir", "noir"),
        ("Science Fiction", "science-fiction"),
        ("Sports", "sports"),
    ]
    assert Genre.objects.get(slug="comedy").pk == existing.pk
    assert genres_of("title:2000:a") == {"Science Fiction", "Comedy"}
    assert genres_of("title:2000:b") == {"Science Fiction", "Sports", "Noir"}
    assert genres_of("title:2000:c") == {"Sports", "Comedy", "Martial Arts"}


def test_people_are_deduplicated_by_normalised_name() -> None:
    decomposed = "Zoe\u0308 Kravitz"  # "Zoë" written as "e" + combining diaeresis
    records = [
        film("A", cast=["Robert Downey Jr.", "Zoë Kravitz", "(", "[a]", "Lance Reddick"]),
        film("B", cast=["robert  downey jr.", decomposed, "Lance Reddick", "Lance Reddick"]),
        film("C", cast=["Robert Downey", "Jr.", "ＲＺＡ", "RZA"]),
    ]
    report = import_movies(records)
    assert report.cast_entries_dropped == 2
    assert sorted(Person.objects.values_list("name", flat=True)) == [
        "Lance Reddick",
        "Robert Downey Jr.",
        "Zoë Kravitz",
        "ＲＺＡ",
    ]
    assert person_key("  Robert\tDowney  JR. ") == "robert downey jr."
    assert cast_of("title:2000:a") == [
        ("Robert Downey Jr.", 0),
        ("Zoë Kravitz", 1),
        ("Lance Reddick", 2),
    ]
    # A name listed twice keeps its first billing; stored names are never renamed.
    assert cast_of("title:2000:b") == [
        ("Robert Downey Jr.", 0),
        ("Zoë Kravitz", 1),
        ("Lance Reddick", 2),
    ]
    assert cast_of("title:2000:c") == [("Robert Downey Jr.", 0), ("ＲＺＡ", 1)]


def test_a_changed_film_is_updated_in_place_and_the_rest_untouched() -> None:
    records = [
        film("Kept", href="Kept", cast=["A", "B"], genres=["Drama"]),
        film("Changed", href="Changed", cast=["A", "B", "C"], genres=["Drama", "War"]),
    ]
    import_movies(records)
    changed = Movie.objects.get(source_key="wiki:2000:Changed")
    director = Person.objects.create(name="D", key="d")
    Credit.objects.create(movie=changed, person=director, role=Credit.Role.DIRECTOR)
    Credit.objects.filter(movie=changed, person__key="b").update(character_name="Bea")
    before = {m.source_key: m for m in Movie.objects.all()}

    records[1] = film(
        "Changed (restored)",
        href="Changed",
        cast=["B", "New", "A"],
        genres=["War", "Romance"],
        extract="Now with a synopsis.",
    )
    report = import_movies(records)
    assert (report.created, report.updated, report.unchanged) == (0, 1, 1)
    assert report.updated_ids == [changed.pk]
    assert (report.credits_created, report.credits_updated, report.credits_deleted) == (1, 2, 1)
    after = Movie.objects.get(pk=changed.pk)
    assert (after.title, after.synopsis) == ("Changed (restored)", "Now with a synopsis.")
    assert after.created_at == before["wiki:2000:Changed"].created_at
    assert after.updated_at > before["wiki:2000:Changed"].updated_at
    assert Movie.objects.get(source_key="wiki:2000:Kept").updated_at == (
        before["wiki:2000:Kept"].updated_at
    )
    assert cast_of("wiki:2000:Changed") == [("B", 0), ("New", 1), ("A", 2)]
    assert genres_of("wiki:2000:Changed") == {"War", "Romance"}
    # Curators' additions the source knows nothing about survive.
    assert Credit.objects.filter(movie=after, role=Credit.Role.DIRECTOR).count() == 1
    assert Credit.objects.get(movie=after, person__key="b").character_name == "Bea"


def test_records_with_the_same_key_merge_and_shared_hrefs_of_other_years_do_not() -> None:
    records = [
        film("Twice", year=1933, cast=["First"]),
        film("Shared", year=1905, href="Shared"),
        film("twice", year=1933, cast=["Second"], extract="later wins"),
        film("Shared", year=1925, href="Shared"),
    ]
    report = import_movies(records)
    assert (report.created, report.duplicates) == (3, 1)
    assert sorted(report.changed_ids) == sorted(Movie.objects.values_list("id", flat=True))
    twice = Movie.objects.get(source_key="title:1933:twice")
    assert (twice.title, twice.synopsis) == ("twice", "later wins")
    assert cast_of("title:1933:twice") == [("Second", 0)]
    assert sorted(Movie.objects.filter(wikipedia_slug="Shared").values_list("year", flat=True)) == [
        1905,
        1925,
    ]


def fail_fourth_credit() -> None:
    """Install a trigger that makes the database refuse any credit billed fourth."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION test_fail_credit() RETURNS trigger AS $$ BEGIN "
                "IF NEW.billing_order >= 3 THEN RAISE EXCEPTION 'no fourth credit'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql"
            )
            cursor.execute(
                "CREATE TRIGGER test_fail_credit BEFORE INSERT ON movies_credit "
                "FOR EACH ROW EXECUTE FUNCTION test_fail_credit()"
            )
        else:
            cursor.execute(
                "CREATE TRIGGER test_fail_credit BEFORE INSERT ON movies_credit "
                "WHEN NEW.billing_order >= 3 BEGIN SELECT RAISE(ABORT, 'no fourth credit'); END"
            )


def test_a_batch_the_database_refuses_is_rolled_back_whole(tmp_path: Path) -> None:
    records = [
        film("One", cast=["A"], genres=["Drama"]),
        film("Two", cast=["B"], genres=["Drama"]),
        film("Three", cast=["C"], genres=["Horror"]),
        film("Four", cast=["D", "E", "F", "G"], genres=["Western"]),
        film("Five", cast=["H"]),
    ]
    fail_fourth_credit()
    source = write_json(tmp_path / "films.json", records)
    with pytest.raises(CommandError, match=r"refused films 3\.\.4 of 5: .*no fourth credit"):
        run(source, "--batch-size", "2")
    assert sorted(Movie.objects.values_list("title", flat=True)) == ["One", "Two"]
    assert sorted(Person.objects.values_list("name", flat=True)) == ["A", "B"]
    assert list(Genre.objects.values_list("name", flat=True)) == ["Drama"]
    assert Credit.objects.count() == 2

    with pytest.raises(ImportAborted) as exc:
        import_movies(records, batch_size=2)
    assert (exc.value.report.created, exc.value.report.unchanged) == (0, 2)


@pytest.mark.skipif(not SHARED.exists(), reason=f"reference data not found at {SHARED}")
def test_a_sample_of_the_reference_data_imports_cleanly() -> None:
    with gzip.open(SHARED) as stream:
        records = json.load(stream)[:2000]
    # The one record of the whole file with a scraped style sheet in its title.
    known_bad = {i for i, r in enumerate(records) if len(r["title"]) > 300}
    report = import_movies(records)
    assert {rejection.index for rejection in report.rejections} == known_bad
    assert report.created + report.duplicates + len(known_bad) == len(records)
    assert Movie.objects.count() == report.created
    first = records[0]
    movie = Movie.objects.get(title=first["title"], year=first["year"])
    assert movie.synopsis == (first.get("extract") or "")
    assert movie.poster_url == (first.get("thumbnail") or "")
    names = [person.name for person in Person.objects.filter(credits__movie=movie)]
    assert sorted(names) == sorted(set(first["cast"]))

    before = catalogue()
    again = import_movies(records)
    assert (again.created, again.updated, again.unchanged) == (0, 0, report.created)
    assert catalogue() == before
