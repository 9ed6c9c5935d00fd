"""bench/budget.py: every part timed and listed; a
catalogue too small for a full page refused. No timing is asserted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, connections, router

from bench import budget, scaffold
from bench.servers import REPO
from movies import selectors
from movies.models import Movie
from movies.schemas import MovieListQuery
from tests.api_fixtures import build_catalogue
from tests.test_bench import squeezed

# The bridge's threads use their own connections: they must see committed films.
pytestmark = pytest.mark.django_db(transaction=True)

PARTS = [
    "parse", "list_sql", "list_movies_held", "list_movies_cycled",
    "select1_held", "select1_pool", "select1_pool_checked", "select1_persistent", "plain_hop",
    "bridge_hop", "bridge_list_movies", "render", "aioapi_app", "django_view",
]  # fmt: skip
# Aliases only bench.budget adds (before the first connection): absent in tests.
VARIANT_PARTS = {"select1_pool", "select1_pool_checked", "select1_persistent"}


@pytest.fixture
def films() -> None:
    build_catalogue()  # 8 films with genres
    for year in range(2001, 2005):
        Movie.objects.create(title=f"Extra {year}", year=year)


def test_every_part_is_timed_and_listed(films: None) -> None:
    timings = budget.measure(number=2, repeat=2)

    assert [t["key"] for t in timings] == PARTS
    for t in timings:
        if t["key"] in VARIANT_PARTS:
            assert t["skipped"] is not None and t["skipped"].startswith("no budget_"), t["key"]
            assert t["min_us"] is None and t["repeats_us"] == []
            continue
        assert t["skipped"] is None, t["key"]
        assert len(t["repeats_us"]) == 2, t["key"]
        assert t["min_us"] is not None and t["min_us"] > 0, t["key"]
        assert t["median_us"] is not None and t["median_us"] >= t["min_us"], t["key"]

    timings_doc = timings
    doc: dict[str, Any] = {
        "command": "python -m bench.budget --number 2 --repeat 2",
        "facts": scaffold.ended(scaffold.run_facts()),
        "cpu": 0,
        "database": {"name": "test", "version": "test 1", "films": 12},
        "settings": {"DEBUG": "0"},
        "number": 2,
        "repeat": 2,
        "timings": timings_doc,
        "derived": budget.derived(timings_doc),
    }
    text = squeezed(budget.markdown(doc))
    for t in timings:
        assert f"| `{t['key']}` {t['title']} |" in text
    for d in doc["derived"]:
        assert f"| {d['figure']} |" in text
        # Only figures made of the connection variants, which bench.budget alone
        # configures, are missing.
        missing = bool(VARIANT_PARTS & set(d["parts"]))
        assert (d["us"] is None) == missing, d["figure"]
    assert "(not measured: no budget_pool alias (bench.budget adds it on PostgreSQL))" in text


def test_the_budget_times_the_sql_the_selector_sends(films: None) -> None:
    """The list statement the budget runs raw is the one selectors.list_movies sends,
    taken from the selector, never written again."""
    query = MovieListQuery.model_validate({"limit": 10})
    using = router.db_for_read(Movie)
    sql, params = budget.list_statement(query, using)
    sent: list[tuple[str, list[object]]] = []

    def capture(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        sent.append((sql, list(params)))
        return execute(sql, params, many, context)

    with connections[using].execute_wrapper(capture):
        selectors.list_movies(query)

    assert sent == [(sql, params)]
    assert "LIMIT 11" in sql.upper() and '"movies_movie"' in sql


@pytest.fixture
def empty_database_url(tmp_path: Path) -> str:
    """A migrated database without films: the test database itself on PostgreSQL,
    a fresh SQLite file otherwise (the in-memory test database is this process's)."""
    if connection.vendor == "postgresql":
        s = connection.settings_dict
        return f"postgres://{s['USER']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"
    url = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    env = {**os.environ, "DATABASE_URL": url}
    manage = [sys.executable, str(REPO / "manage.py"), "migrate", "--no-input", "-v0"]
    subprocess.run(manage, env=env, check=True, timeout=120)
    return url


def test_the_cli_refuses_a_database_without_a_full_page(
    empty_database_url: str, tmp_path: Path
) -> None:
    results = tmp_path / "results"
    command = [
        sys.executable, "-m", "bench.budget", "--database-url", empty_database_url,
        "--number", "1", "--repeat", "1", "--results-dir", str(results),
    ]  # fmt: skip
    done = subprocess.run(
        command, cwd=REPO, env=dict(os.environ), capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 2, done.stderr
    assert "holds 0 films; a list request needs at least 11" in done.stderr
    assert not results.exists()


def test_the_budget_of_another_page_size_asks_for_that_page(films: None) -> None:
    """``--limit 5``: the parse, the aioapi request and the WSGI call all ask for 5
    films (the Django view and aioapi_app assert a 200 of that page)."""
    timings = budget.measure(number=1, repeat=1, limit=5)

    assert timings[0]["title"] == "parse ?limit=5"
    assert all(t["min_us"] is not None for t in timings if t["key"] not in VARIANT_PARTS)
