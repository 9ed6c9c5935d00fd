"""bench.admin: every page it times answers as a curator's would, on a small catalogue."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry

from bench import admin as bench_admin
from movies.models import Credit, Genre, Movie, Person
from movies.synthetic.loading import generate_catalogue
from tests.test_bench import squeezed

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def static_root(settings: Any, tmp_path: Path) -> None:
    # WhiteNoise, in the middleware, warns when STATIC_ROOT does not exist.
    settings.STATIC_ROOT = tmp_path


@pytest.fixture
def catalogue() -> Movie:
    """Synthetic films, and one that every search finds, with the most credits of all."""
    generate_catalogue(300, seed=5, people=50)
    film = Movie.objects.create(title=f"The {bench_admin.TWO_WORDS.title()}", year=1994)
    film.genres.add(Genre.objects.order_by("name")[0])
    for n in range(40):
        who = Person.objects.create(name=f"Ada Player {n}", key=f"ada player {n}")
        Credit.objects.create(movie=film, person=who, billing_order=n)
    return film


def test_every_page_is_checked_and_timed_with_its_queries(catalogue: Movie) -> None:
    marks = bench_admin.landmarks()
    assert (marks.busiest_film, marks.credits) == (catalogue.pk, 40)
    client = bench_admin.curator_client()
    said: list[str] = []
    timings = bench_admin.measure(client, marks, rounds=2, warmup=0, say=said.append)
    assert [t.name for t in timings] == [p.name for p in bench_admin.pages(marks)]
    assert said == ["round 1/2 done", "round 2/2 done"]
    for timing in timings:
        assert len(timing.milliseconds) == 2 and min(timing.milliseconds) > 0
        assert timing.queries > 0 and timing.sql_milliseconds >= 0
    # Three saves (the check and two rounds), each in the film's history, by the curator.
    history = LogEntry.objects.filter(object_id=str(catalogue.pk))
    assert history.count() == 3
    assert {entry.user.username for entry in history} == {bench_admin.CURATOR}
    catalogue.refresh_from_db()
    assert catalogue.title == f"The {bench_admin.TWO_WORDS.title()} (saved)"


def test_a_page_that_answers_wrongly_stops_the_benchmark(catalogue: Movie) -> None:
    marks = bench_admin.landmarks()
    client = bench_admin.curator_client()
    nothing = bench_admin.Page("no match", f"/admin/movies/movie/?q={bench_admin.NO_MATCH}")
    expecting = bench_admin.Page(nothing.name, nothing.path, found=True)
    bench_admin.check(nothing, client.get(nothing.path))
    with pytest.raises(SystemExit, match="no match: .* listed 0 films"):
        bench_admin.check(expecting, client.get(expecting.path))
    assert marks.busiest_film == catalogue.pk


def test_the_report_lists_every_page_against_the_target() -> None:
    timing = bench_admin.Timing("search, one word", "/admin/movies/movie/?q=x", "GET")
    timing.milliseconds = [100.0, 200.0, 700.0]
    record = timing.record()
    assert record["median_ms"] == 200.0 and record["within_target"] is False
    document = {
        "command": "python -m bench.admin", "rounds": 3, "warmup": 0,
        "catalogue": {"movies": 1_000_000}, "facts": {"date_utc": "2026-12-05"},
        "pages": [record],
    }  # fmt: skip
    text = squeezed(bench_admin.report(document))
    assert "| search, one word | 200.0 |" in text and "**no**" in text
    assert "1,000,000 films" in text
