"""bench.sql, the statement budget: placeholders, capture, EXPLAIN and the table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.db import connection

from bench import sql
from tests.api_fixtures import Catalogue, build_catalogue
from tests.test_bench import squeezed


def test_placeholders_are_numbered_and_percent_signs_unescaped() -> None:
    text = "SELECT 1 WHERE a = %s AND b LIKE '%%x%%' AND c = (%s)"
    assert sql._numbered(text) == "SELECT 1 WHERE a = $1 AND b LIKE '%x%' AND c = ($2)"


@pytest.fixture
def catalogue(db: None) -> Catalogue:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (EXPLAIN ANALYZE of prepared statements)")
    return build_catalogue()


def test_every_read_is_captured_explained_and_tabled(catalogue: Catalogue, tmp_path: Path) -> None:
    result = sql.measure("after", runs=3, warm=1, only=None)
    reads = {read["name"]: read["statements"] for read in result["reads"]}
    assert {"list-10", "list-100", "genres", "people", "detail, busiest credits"} <= set(reads)
    assert all(len(statements) == 1 for statements in reads.values()), "one statement a read"
    for name, (statement,) in reads.items():
        assert statement["execution_ms"] > 0 and statement["planning_ms"] >= 0, name
        assert statement["rows"] >= 0 and statement["buffers"] >= 0, name
        # A filtered list is planned with its values, as the product runs it; a name
        # search of three letters or more reads one range of the name keys, whatever
        # the name, with a prepared statement's plan.
        filtered = name.startswith(("genre=", "year", "person=", "q=", "people q=jo "))
        assert statement["prepared"] is not filtered, name
    assert reads["list-100"][0]["rows"] == min(101, len(catalogue.movies))
    # The busiest person's filmography, each page a bounded range of their credits.
    for name in ("person, busiest credits", "person films, busiest, next at 50%"):
        assert reads[name][0]["rows"] == 1, name  # the person, the page's credits in one array
    assert "movies_person_name_key" in reads["people q=john"][0]["sql"]
    assert "movies_person_name_key" not in reads["people q=jo (two letters)"][0]["sql"]
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "after-x.json").write_text(json.dumps(result, default=str))
    table = squeezed(sql.report(tmp_path))
    assert "| list-100 |" in table and "genre=drama" in table
