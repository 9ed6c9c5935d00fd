"""bench/scaffold.py's tables and results folders, and the servers every bench command
starts: aioapi as deployed (the overload and soak plans) beside the bench's own."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bench import plan, scaffold
from bench.monitor import Usage
from bench.runner import leaks
from bench.servers import server_specs
from tests.test_bench import OPTIONS

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


def test_the_deployed_api_runs_the_deploy_config_in_the_bench_environment() -> None:
    specs = server_specs(URL, 0.0, OPTIONS)
    deployed, aioapi = specs[plan.DEPLOYED], specs[plan.AIOAPI]

    assert deployed.argv[-2:] == ("--config", "deploy/gunicorn_api.conf.py")
    assert deployed.env["GUNICORN_API_BIND"] == f"127.0.0.1:{deployed.port}"
    assert deployed.env["GUNICORN_API_WORKERS"] == "1"
    # Recycling off (a leak cannot hide behind a restart), the cache on, the deployed pool.
    assert (deployed.env["GUNICORN_API_MAX_REQUESTS"], deployed.env["API_CACHE"]) == ("0", "1")
    assert not [key for key in deployed.env if key.startswith("DB_POOL")]
    for key in ("DEBUG", "DATABASE_URL", "API_ACCESS_LOG", "SIMULATED_DB_LATENCY_MS"):
        assert deployed.env[key] == aioapi.env[key], key
    assert len({spec.port for spec in specs.values()}) == len(specs)


def test_a_soak_flags_a_worker_that_grew_and_backends_that_stayed_open() -> None:
    flat = Usage(rss_growth_mb={"7": 3.0, "8": 71.0}, pg_backends_start_end=(16, 16))
    leaking = Usage(rss_growth_mb={"7": 3.0, "8": 90.5}, pg_backends_start_end=(16, 18))

    assert leaks(flat, plan.SOAK_GROWTH_MIB) == []
    assert leaks(leaking, plan.SOAK_GROWTH_MIB) == [
        "worker RSS grew past 72 MiB: {'8': 90.5}",
        "database backends grew from 16 to 18",
    ]
