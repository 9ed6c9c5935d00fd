"""bench/scaffold.py and the side scripts' reports it draws: tables, results
folders, the servers' environment; committed side-script results still render."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from bench import cache_bench, deployed_api, export_bench, scaffold
from bench.servers import REPO

RESULTS = REPO / "bench" / "results"
URL = "postgres://postgres@127.0.0.1:5432/example"


def test_markdown_tables_keep_cells_as_given() -> None:
    lines = scaffold.markdown_table(["a", "ratio"], [["x", "0.80"], ["longer", "1,234"]])

    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[:-1]]
    assert cells[0] == ["a", "ratio"]
    assert cells[2:] == [["x", "0.80"], ["longer", "1,234"]]  # no number parsing
    assert set(lines[1]) <= {"|", "-", ":"} and lines[-1] == ""


def test_results_folders_are_never_written_into_twice(tmp_path: Path) -> None:
    started = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    first = scaffold.results_dir("label", started, base=tmp_path)
    second = scaffold.results_dir("label", started, base=tmp_path)

    assert first.name == "2026-01-02-label" and first.is_dir()
    assert second.name == "2026-01-02-030405-label" and second.is_dir()


def test_the_side_scripts_share_the_servers_environment() -> None:
    deployed = deployed_api.api_env(URL)
    cached = cache_bench.server_env(URL, cache=True)
    exported = export_bench.server_env(URL)

    for env in (deployed, cached, exported):
        assert (env["DEBUG"], env["DATABASE_URL"], env["API_ACCESS_LOG"]) == ("0", URL, "off")
        assert env["SIMULATED_DB_LATENCY_MS"] == "0" and env["PYTHONPATH"] == str(REPO)
    assert not set(scaffold.POOL_KEYS) & set(deployed)  # the deployed pool defaults
    assert (cached["DB_POOL_MIN_SIZE"], cached["DB_POOL_MAX_SIZE"]) == ("16", "16")
    assert (exported["DB_POOL_MIN_SIZE"], exported["DB_POOL_MAX_SIZE"]) == ("2", "4")


def test_committed_side_script_results_still_render() -> None:
    export = json.loads((RESULTS / "2026-11-21-export" / "results.json").read_text())
    cache = json.loads((RESULTS / "2026-11-21-cache" / "results.json").read_text())

    text = export_bench.report(export)
    assert "Machine and software:" in text  # an "environment" before the shared facts
    assert text.count("| aioapi ") + text.count("| django ") == len(export["summary"])
    cached = cache_bench.report(cache)
    assert cached.count("| cache-o") == len(cache["runs"])
