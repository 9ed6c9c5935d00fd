"""bench/summary.py's answer and bench/report.py (report.md, charts, LATEST.md) on
synthetic results with any number of servers, and on a committed results folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from bench import cli, plan, report, summary
from bench.servers import REPO
from tests.test_bench import _document, _run, squeezed

LOOP, SLOW = plan.condition_name(0), plan.condition_name(10)
NOTE = "a different, typical implementation: measures the framework, not the server alone"
# req/s of four contenders: aioapi wins list 10 on loopback, django detail at 400.
RPS: dict[tuple[str, str, int], dict[str, float]] = {
    (LOOP, "list-10", 64): {"django": 500.0, "aioapi": 900.0, "django-asgi": 600.0, "drf": 300.0},
    (LOOP, "list-10", 400): {"django": 480.0, "aioapi": 700.0, "django-asgi": 650.0, "drf": 250.0},
    (SLOW, "list-10", 400): {"django": 200.0, "aioapi": 640.0, "django-asgi": 320.0, "drf": 90.0},
    (LOOP, "detail", 400): {"django": 820.0, "aioapi": 800.0, "django-asgi": 410.0, "drf": 400.0},
    (LOOP, "search", 16): {"django": 40.0, "aioapi": 50.0, "django-asgi": 45.0, "drf": 30.0},
}  # fmt: skip
CEILING = {(LOOP, 64): 1800.0, (LOOP, 400): 1700.0, (SLOW, 400): 1200.0}
CONSTANT = {64: 15000.0, 400: 14000.0}


def four_servers() -> dict[str, Any]:
    document = _document()
    runs = [
        _run(condition, server, scenario, count, rps)
        for (condition, scenario, count), by_server in RPS.items()
        for server, rps in by_server.items()
    ]
    runs += [_run(c, "raw-pool", "list-10", n, rps) for (c, n), rps in CEILING.items()]
    runs += [_run(LOOP, "aioapi", "constant", n, rps) for n, rps in CONSTANT.items()]
    document["runs"] = runs
    document["scenarios"] |= {"detail": "one film", "search": "full text"}
    document["servers"] = {
        name: {"title": name, "command": f"serve {name}", "settings": {}}
        for name in ("django", "aioapi", "django-asgi", "drf", "raw-pool")
    }
    document["servers"]["drf"]["note"] = NOTE
    return document


def expected(condition: str, scenario: str, count: int) -> dict[str, Any]:
    """The winner and ratios of one row, computed here from the inputs."""
    ranked = sorted(RPS[(condition, scenario, count)].items(), key=lambda item: -item[1])
    (winner, best), (second, next_best) = ranked[0], ranked[1]
    django = RPS[(condition, scenario, count)]["django"]
    return {
        "winner": winner,
        "winner_rps": best,
        "runner_up": second,
        "over_next": round(best / next_best, 3),
        "over_django": None if winner == "django" else round(best / django, 3),
        "raw_pool_rps": CEILING.get((condition, count)) if scenario == "list-10" else None,
        "constant_rps": CONSTANT.get(count),
    }


def test_the_answer_ranks_every_contender_and_keeps_the_ceilings_apart() -> None:
    rows = summary.answer_rows(four_servers())

    assert [(r["condition"], r["scenario"], r["connections"]) for r in rows] == list(RPS)
    for row in rows:
        key = (row["condition"], row["scenario"], row["connections"])
        assert {k: row[k] for k in expected(*key)} == expected(*key), key
        assert set(row["contenders"]) == set(RPS[key])  # raw-pool is a ceiling, not a contender
        assert list(row["contenders"].values()) == sorted(RPS[key].values(), reverse=True)


def test_the_answer_shows_cpu_per_request_and_its_ratio() -> None:
    document = four_servers()
    for run in document["runs"]:
        if (run["condition"], run["scenario"], run["connections"]) == (LOOP, "list-10", 64):
            run["server_cpu_ms_per_request"] = {"aioapi": 0.5, "django": 1.0}.get(run["server"])
            run["postgres_cpu_ms_per_request"] = 0.2
    first = summary.answer_rows(document)[0]

    assert first["cpu_us_per_request"]["aioapi"] == (500, 200)
    assert first["cpu_us_per_request"]["drf"] == (None, 200)
    assert first["aioapi_cpu_over_django"] == 0.5
    assert summary.answer_rows(document)[1]["aioapi_cpu_over_django"] is None  # not measured
    text = squeezed("\n".join(summary.answer(document)))
    assert (
        "| aioapi 500 + 200 · django-asgi – + 200 · django 1,000 + 200 · drf – + 200 | 0.50× |"
        in text
    )


def test_report_md_opens_with_the_answer_and_prints_notes() -> None:
    document = four_servers()
    document["targets"] = []

    text = squeezed(report.markdown(document, []))

    assert text.startswith("# django vs aioapi vs django-asgi vs drf: test\n\n## The answer")
    assert text.index("## The answer") < text.index("Measured ") < text.index("## Every run")
    aioapi = expected(LOOP, "list-10", 64)
    assert (
        f"| list-10 | {LOOP} | 64 | **aioapi** | 900 | {aioapi['over_next']:.2f}× "
        f"django-asgi | {aioapi['over_django']:.2f}× | 1,800 | 15,000 |"
    ) in text
    django = expected(LOOP, "detail", 400)
    assert f"| **django** | 820 | {django['over_next']:.2f}× aioapi | (is django) |" in text
    answer_part = text[: text.index("Measured ")]
    assert f"- **drf**: {NOTE}" in answer_part  # under the table
    assert f" - **note**: {NOTE}" in text  # and with the server's command


def test_charts_draw_every_server(tmp_path: Path) -> None:
    document = four_servers()

    names = report.draw(document, tmp_path)
    style = report.styles(list(document["servers"]))

    assert names == ["list-10.png", "detail.png", "search.png", "constant.png"]
    assert all((tmp_path / name).read_bytes()[:4] == b"\x89PNG" for name in names)
    assert len({(s["color"], s["marker"]) for s in style.values()}) == len(style)
    assert style["raw-pool"]["linestyle"] == "--"


def _folder(results: Path, name: str, **fields: Any) -> Path:
    folder = results / name
    folder.mkdir(parents=True)
    document = four_servers() | fields
    (folder / "results.json").write_text(json.dumps(document))
    return folder


def test_latest_points_to_the_newest_full_run(tmp_path: Path) -> None:
    _folder(tmp_path, "2026-01-01-old", plan="default", started_at="2026-01-01T00:00:00+00:00")
    newest = _folder(
        tmp_path, "2026-01-02-new", plan="default", started_at="2026-01-02T00:00:00+00:00"
    )
    _folder(tmp_path, "2026-01-03-quick", plan="quick", started_at="2026-01-03T00:00:00+00:00")
    _folder(
        tmp_path, "2026-01-04-narrowed", plan="default", full=False,
        started_at="2026-01-04T00:00:00+00:00",
    )  # fmt: skip
    (tmp_path / "2026-01-05-cache").mkdir()
    (tmp_path / "2026-01-05-cache" / "results.json").write_text('{"runs": []}')

    assert report.main(["--latest", "--results-dir", str(tmp_path)]) == 0

    text = (tmp_path / report.NAME).read_text()
    assert f"[{newest.name}/report.md]({newest.name}/report.md)" in text
    assert "2026-01-01-old" not in text and "2026-01-04" not in text
    assert "## The answer" in text and f"- **drf**: {NOTE}" in text


def test_a_full_run_rewrites_latest_and_a_narrowed_one_does_not(tmp_path: Path) -> None:
    assert not cli.narrowed(cli.parser().parse_args([]))
    for narrowing in (["--scenarios", "list-10"], ["--servers", "django"], ["--duration", "3"]):
        assert cli.narrowed(cli.parser().parse_args(narrowing)), narrowing
    said: list[str] = []
    narrowed = _folder(tmp_path, "2026-01-01-narrowed", plan="default", full=False)

    cli.after_full_run(json.loads((narrowed / "results.json").read_text()),
                                tmp_path, said.append)  # fmt: skip
    assert not (tmp_path / report.NAME).exists() and said == []

    full = _folder(tmp_path, "2026-01-02-full", plan="default", full=True)
    cli.after_full_run(json.loads((full / "results.json").read_text()),
                                tmp_path, said.append)  # fmt: skip
    assert said == [f"latest full run: {tmp_path / report.NAME}"]
    assert f"({full.name}/report.md)" in (tmp_path / report.NAME).read_text()


def test_latest_without_a_full_run_writes_nothing(tmp_path: Path) -> None:
    _folder(tmp_path, "2026-01-03-quick", plan="quick")

    assert report.write_latest(tmp_path) is None
    assert not (tmp_path / report.NAME).exists()


COMMITTED = REPO / "bench" / "results" / "2026-12-06-lean-16-threads-one-statement-detail"


@pytest.mark.skipif(not COMMITTED.exists(), reason="the committed results folder is absent")
def test_committed_results_still_render(tmp_path: Path) -> None:
    """A copy of a committed run (two servers, rounds, no note) renders as before,
    now with the answer at the top; the committed folder is left as it is."""
    copy = tmp_path / COMMITTED.name
    copy.mkdir()
    shutil.copy(COMMITTED / "results.json", copy / "results.json")

    assert report.main([str(copy)]) == 0

    text = squeezed((copy / "report.md").read_text())
    document = json.loads((copy / "results.json").read_text())
    scenarios = dict.fromkeys(r["scenario"] for r in document["runs"])
    assert text.splitlines()[2] == "## The answer"
    assert "| list-10 | loopback | 64 | **aioapi** |" in text
    assert all((copy / f"{scenario}.png").exists() for scenario in scenarios)
    assert "## Every run" in text and "## Targets" in text
