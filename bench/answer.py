"""The one-screen answer report.md opens with: for each scenario and condition,
which contender served the most requests/s, by how much (to the next best and to
Django), and the ceilings beside it.

Contenders are whatever servers results.json holds, less the ceilings: nothing
here assumes two of them. With rounds, every figure is the median of its rounds
(bench/summary.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bench.plan import AIOAPI, DJANGO, HEADLINE_CONNECTIONS, RAW_POOL
from bench.scaffold import fmt, markdown_table
from bench.summary import LOOPBACK, index

# A scenario that is itself a ceiling (a constant body, no database), not a contest.
CONSTANT = "constant"
# Servers that are ceilings: they run the same SQL without Django, not a contender.
CEILINGS = frozenset({RAW_POOL})
Row = dict[str, Any]
ALIGN = ("left", "left", "right", "left", "right", "left", *("right",) * 3, "left", "left", "right")


def _ordered(values: Sequence[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


def contenders(document: Mapping[str, Any]) -> list[str]:
    """The servers results.json holds, less the ceilings, in its order."""
    return [name for name in document.get("servers", {}) if name not in CEILINGS]


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def _counts(measured: Sequence[int]) -> list[int]:
    """The connection counts a row is shown for: the headline's (64, 400) where
    measured, else the highest measured (search runs at 16 and 64)."""
    shown = [count for count in HEADLINE_CONNECTIONS if count in measured]
    return shown or [max(measured)]


def rows(document: Mapping[str, Any]) -> list[Row]:
    """One row per scenario, condition and shown connection count, contenders ranked."""
    runs = index(document["runs"])
    out: list[Row] = []
    scenarios = _ordered([s for (_, _, s, _) in runs if s != CONSTANT])
    conditions = _ordered([c for (c, _, _, _) in runs])
    for scenario in scenarios:
        for condition in conditions:
            measured: dict[int, dict[str, float]] = {}
            for (c, server, s, count), run in runs.items():
                if (c, s) == (condition, scenario) and server not in CEILINGS:
                    measured.setdefault(count, {})[server] = float(run["requests_per_s"])
            for count in _counts(list(measured)) if measured else []:
                out.append(_row(runs, scenario, condition, count, measured[count]))
    return out


def _row(
    runs: Mapping[tuple[str, str, str, int], Mapping[str, Any]],
    scenario: str,
    condition: str,
    count: int,
    rps: Mapping[str, float],
) -> Row:
    ranked = sorted(rps.items(), key=lambda item: -item[1])
    (winner, best), runner_up = ranked[0], ranked[1] if len(ranked) > 1 else None
    raw = runs.get((condition, RAW_POOL, scenario, count))
    # The constant body touches no database: measured on loopback, it caps every condition.
    constants = [
        float(run["requests_per_s"])
        for (c, _, s, n), run in runs.items()
        if (c, s, n) == (LOOPBACK, CONSTANT, count)
    ]
    # CPU per request, µs: the server's process tree and the PostgreSQL backends
    # serving it, what holds when the database has a machine of its own.
    cpu = {
        name: tuple(
            _us(runs[(condition, name, scenario, count)].get(f"{part}_cpu_ms_per_request"))
            for part in ("server", "postgres")
        )
        for name, _ in ranked
    }
    return {
        "scenario": scenario,
        "condition": condition,
        "connections": count,
        "winner": winner,
        "winner_rps": best,
        "runner_up": runner_up[0] if runner_up else None,
        "over_next": _ratio(best, runner_up[1]) if runner_up else None,
        "over_django": None if winner == DJANGO else _ratio(best, rps.get(DJANGO)),
        "contenders": dict(ranked),
        "raw_pool_rps": float(raw["requests_per_s"]) if raw else None,
        "constant_rps": max(constants) if constants else None,
        "cpu_us_per_request": cpu,  # server: (its own, PostgreSQL's)
        "aioapi_cpu_over_django": _ratio(cpu.get(AIOAPI, (None,))[0], cpu.get(DJANGO, (None,))[0]),
    }


def _us(ms: float | None) -> float | None:
    return None if ms is None else round(1000 * ms)


def _next(row: Row) -> str:
    if row["runner_up"] is None:
        return "only contender"
    return f"{fmt(row['over_next'], 2, '×')} {row['runner_up']}"


def _django(row: Row) -> str:
    if row["winner"] == DJANGO:
        return "(is django)"
    return fmt(row["over_django"], 2, "×")


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
        *markdown_table(
            [
                "scenario",
                "condition",
                "conn.",
                "winner",
                "req/s",
                "× next best",
                "× django",
                "raw-pool",
                "constant",
                "every contender (req/s)",
                "CPU µs/req: server + PostgreSQL",
                "CPU aioapi ÷ django",
            ],
            [
                [
                    r["scenario"],
                    r["condition"],
                    r["connections"],
                    f"**{r['winner']}**",
                    fmt(r["winner_rps"]),
                    _next(r),
                    _django(r),
                    fmt(r["raw_pool_rps"]),
                    fmt(r["constant_rps"]),
                    " · ".join(f"{name} {rps:,.0f}" for name, rps in r["contenders"].items()),
                    " · ".join(
                        f"{name} {fmt(own)} + {fmt(pg)}"
                        for name, (own, pg) in r["cpu_us_per_request"].items()
                    ),
                    fmt(r["aioapi_cpu_over_django"], 2, "×"),
                ]
                for r in shown
            ],
            ALIGN,
        ),  # fmt: skip
    ]
    servers = document.get("servers", {})
    named = _ordered([name for r in shown for name in r["contenders"]])
    notes = [f"- **{n}**: {servers[n]['note']}" for n in named if servers.get(n, {}).get("note")]
    if notes:
        lines += [*notes, ""]
    flagged = sum(1 for run in document["runs"] if run["problems"])
    if flagged:
        lines += [f"**⚠ {flagged} run(s) had errors**: listed below, before the detail.", ""]
    return lines
