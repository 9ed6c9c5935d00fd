"""The one-screen answer report.md and LATEST.md open with: for each scenario and
condition, which contender served the most requests/s, by how much (to the next best
and to Django), the ceilings beside it, and every contender's CPU per request.
Contenders are whatever servers results.json holds, less the ceilings; with rounds,
every figure is the median of its rounds (bench/summary.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bench.plan import AIOAPI, DJANGO, RAW_POOL, TWO_POINTS
from bench.scaffold import fmt, markdown_table
from bench.summary import LOOPBACK, index, ratio

CONSTANT = "constant"  # a scenario that is itself a ceiling (no database), not a contest
Row = dict[str, Any]
HEADERS = ("scenario", "condition", "conn.", "winner", "req/s", "× next best", "× django",
           "raw-pool", "constant", "every contender (req/s)", "CPU µs/req: server + PostgreSQL",
           "CPU aioapi ÷ django")  # fmt: skip
ALIGN = ("left", "left", "right", "left", "right", "left", *("right",) * 3, "left", "left", "right")


def contenders(document: Mapping[str, Any]) -> list[str]:
    """The servers results.json holds, less the ceilings, in its order."""
    return [name for name in document.get("servers", {}) if name != RAW_POOL]


def rows(document: Mapping[str, Any]) -> list[Row]:
    """One row per scenario, condition and shown connection count (64 and 400 where
    measured, else the highest: search runs at 16 and 64), contenders ranked."""
    runs = index(document["runs"])
    out: list[Row] = []
    for scenario in dict.fromkeys(s for (_, _, s, _) in runs if s != CONSTANT):
        for condition in dict.fromkeys(c for (c, _, _, _) in runs):
            measured: dict[int, dict[str, float]] = {}
            for (c, server, s, count), run in runs.items():
                if (c, s) == (condition, scenario) and server != RAW_POOL:
                    measured.setdefault(count, {})[server] = float(run["requests_per_s"])
            shown = [n for n in TWO_POINTS if n in measured] or sorted(measured)[-1:]
            out += [_row(runs, scenario, condition, n, measured[n]) for n in shown]
    return out


def _row(runs: Mapping[tuple[str, str, str, int], Mapping[str, Any]], scenario: str,
         condition: str, count: int, rps: Mapping[str, float]) -> Row:  # fmt: skip
    ranked = sorted(rps.items(), key=lambda item: -item[1])
    (winner, best), runner_up = ranked[0], ranked[1] if len(ranked) > 1 else None
    raw = runs.get((condition, RAW_POOL, scenario, count))
    # The constant body touches no database: measured on loopback, it caps every condition.
    constant = runs.get((LOOPBACK, AIOAPI, CONSTANT, count))

    def us(name: str, part: str) -> float | None:
        ms = runs[(condition, name, scenario, count)].get(f"{part}_cpu_ms_per_request")
        return None if ms is None else round(1000 * ms)

    # The server's own (its process tree) and PostgreSQL's (the backends serving it).
    cpu = {name: (us(name, "server"), us(name, "postgres")) for name, _ in ranked}
    return {
        "scenario": scenario, "condition": condition, "connections": count,
        "winner": winner, "winner_rps": best, "runner_up": runner_up[0] if runner_up else None,
        "over_next": ratio(best, runner_up[1]) if runner_up else None,
        "over_django": None if winner == DJANGO else ratio(best, rps.get(DJANGO)),
        "contenders": dict(ranked),
        "raw_pool_rps": float(raw["requests_per_s"]) if raw else None,
        "constant_rps": float(constant["requests_per_s"]) if constant else None,
        "cpu_us_per_request": cpu,
        "aioapi_cpu_over_django": ratio(cpu.get(AIOAPI, (None,))[0], cpu.get(DJANGO, (None,))[0]),
    }  # fmt: skip


def _cells(r: Row) -> list[object]:
    after = "only contender" if r["runner_up"] is None else (
        f"{fmt(r['over_next'], 2, '×')} {r['runner_up']}")  # fmt: skip
    return [
        r["scenario"], r["condition"], r["connections"], f"**{r['winner']}**",
        fmt(r["winner_rps"]), after,
        "(is django)" if r["winner"] == DJANGO else fmt(r["over_django"], 2, "×"),
        fmt(r["raw_pool_rps"]), fmt(r["constant_rps"]),
        " · ".join(f"{name} {rps:,.0f}" for name, rps in r["contenders"].items()),
        " · ".join(f"{n} {fmt(o)} + {fmt(pg)}" for n, (o, pg) in r["cpu_us_per_request"].items()),
        fmt(r["aioapi_cpu_over_django"], 2, "×"),
    ]  # fmt: skip


def markdown(document: Mapping[str, Any]) -> list[str]:
    """The answer as lines of Markdown: the table, the servers' notes, any warning."""
    shown = rows(document)
    if not shown:
        return []
    lines = [
        "## The answer",
        "",
        "Most requests/s per scenario and condition (medians of the rounds when there "
        "are rounds), the winner's ratio to the next best and to Django, and the "
        "ceilings: raw-pool (the same SQL without Django) and constant (`/healthz`, no "
        "database, on loopback). CPU µs/req: each contender's own CPU per request "
        "(its process tree) + PostgreSQL's (the backends serving it); aioapi ÷ django: "
        "the ratio of the servers' own CPU per request.",
        "",
        *markdown_table(HEADERS, [_cells(r) for r in shown], ALIGN),
    ]
    servers: Mapping[str, Any] = document.get("servers", {})
    named: Sequence[str] = list(dict.fromkeys(n for r in shown for n in r["contenders"]))
    lines += [f"- **{n}**: {servers[n]['note']}" for n in named if servers.get(n, {}).get("note")]
    if lines[-1] != "":
        lines.append("")
    if flagged := sum(1 for run in document["runs"] if run["problems"]):
        lines += [f"**⚠ {flagged} run(s) had errors**: listed below, before the detail.", ""]
    return lines
