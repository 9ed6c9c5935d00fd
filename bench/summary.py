"""What a results document is read for: its runs with their rounds folded into medians
(errors summed, never medianed away); issue 28's targets, each met, missed or not
measured; and the one-screen answer report.md and LATEST.md open with: per scenario and
condition, which contender served the most requests/s, by how much (to the next best and
to Django), the ceilings beside it, and every contender's CPU per request."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from statistics import median
from typing import Any

from bench.plan import AIOAPI, DJANGO, RAW_POOL, TWO_POINTS, condition_name
from bench.scaffold import fmt, markdown_table

Key = tuple[str, str, str, int]  # condition, server, scenario, connections
LOOPBACK = condition_name(0)
READS = ("list-10", "list-100", "list-filtered", "detail", "detail-busiest", "people",
         "conditional")  # fmt: skip


def key(run: Mapping[str, Any]) -> Key:
    return (run["condition"], run["server"], run["scenario"], run["connections"])


def round_of(run: Mapping[str, Any]) -> int:
    return int(run.get("round", 1))  # results before rounds measured everything once


def rounds_of(document: Mapping[str, Any]) -> int:
    return max((round_of(r) for r in document["runs"]), default=1)


def _median(values: Iterable[float | None], digits: int) -> float | None:
    present = [v for v in values if v is not None]
    return round(median(present), digits) if present else None


def combined(runs: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """One record per key, in the order first measured: the run itself if it was
    measured once, else the medians of its rounds."""
    groups: dict[Key, list[Mapping[str, Any]]] = {}
    for run in runs:
        groups.setdefault(key(run), []).append(run)
    return [group[0] if len(group) == 1 else _medians(group) for group in groups.values()]


def _medians(group: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Medians of req/s, latencies and CPU with the req/s range; errors, statuses and
    problems summed; the worst backends and RSS. Other fields: the median run's."""
    by_rps = sorted(group, key=lambda r: float(r["requests_per_s"]))
    out = dict(by_rps[(len(by_rps) - 1) // 2])
    out.pop("round", None)
    rps = [float(r["requests_per_s"]) for r in group]
    workers = [[v for k, v in r["peak_rss_mb"].items() if k.startswith("worker")] for r in group]
    statuses = sum((Counter(r.get("statuses", {})) for r in group), Counter[str]())
    cpu = ("server_cpu_ms_per_request", "postgres_cpu_ms_per_request")
    out.update(
        rounds=sorted(round_of(r) for r in group),
        requests_per_s=_median(rps, 1), requests_per_s_min=min(rps), requests_per_s_max=max(rps),
        latency={k: _median((r["latency"].get(k) for r in group), 3) for k in out["latency"]},
        **{name: _median((r.get(name) for r in group), 3) for name in cpu},
        server_cpu_s=_median((r["server_cpu_s"] for r in group), 2),
        server_cores_used=_median((r["server_cores_used"] for r in group), 2),
        errors={k: sum(r["errors"][k] for r in group) for k in out["errors"]},
        statuses=dict(sorted(statuses.items())),
        unexpected_status=sum(r["unexpected_status"] for r in group),
        problems=[f"round {round_of(r)}: {p}" for r in group for p in r["problems"]],
        pg_backends_max=max(r["pg_backends_max"] for r in group),
        # Worker pids differ between rounds: the n-th worker's peak over all rounds.
        peak_rss_mb={f"worker {i + 1}": max(w) for i, w in enumerate(zip(*workers, strict=False))},
        foreign_cores=max((r["foreign_cores"] for r in group
                           if r.get("foreign_cores") is not None), default=None),
    )  # fmt: skip
    return out


def index(runs: Iterable[Mapping[str, Any]]) -> dict[Key, Mapping[str, Any]]:
    """Each key's record, rounds folded into medians."""
    return {key(r): r for r in combined(runs)}


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def targets(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Issue 28's figures on loopback (aioapi over Django: req/s, and the servers' own
    CPU per request), and no run with errors."""
    runs = index(document["runs"])

    def of(server: str, scenario: str, n: int, field: str) -> float | None:
        run = runs.get((LOOPBACK, server, scenario, n))
        return None if run is None else run.get(field)

    def versus(scenario: str, n: int, field: str) -> float | None:
        return ratio(of(AIOAPI, scenario, n, field), of(DJANGO, scenario, n, field))

    def target(name: str, measured: float | None, goal: float, most: bool = False) -> dict:
        met = None if measured is None else (measured <= goal if most else measured >= goal)
        sign = "<=" if most else ">="
        return {"issue": 28, "target": name, "measured": measured, "goal": f"{sign} {goal:g}",
                "met": met}  # fmt: skip

    where = "loopback, {} connections"
    rps, cpu = "requests_per_s", "server_cpu_ms_per_request"
    pg_cpu = "postgres_cpu_ms_per_request"
    pg = _median((of(s, "list-100", 64, pg_cpu) for s in (AIOAPI, DJANGO)), 3)
    flagged = sum(1 for r in document["runs"] if r["problems"])
    return [
        *(target(f"aioapi/Django req/s, {s}, {where.format(n)}", versus(s, n, rps), goal)
          for n, goal in ((64, 1.4), (400, 1.25)) for s in READS),
        *(target(f"aioapi/Django req/s, list 10, {where.format(n)}", versus("list-10", n, rps), 1.8)
          for n in (64, 400)),
        *(target(f"aioapi/Django server CPU per request, {s}, {where.format(n)}",
                 versus(s, n, cpu), 0.6, most=True)
          for n in (64, 400) for s in READS),
        target("PostgreSQL CPU ms per request, list 100, loopback, 64 connections "
               "(median of both servers)", pg, 0.3, most=True),
        {"issue": 0, "target": "runs with errors, timeouts or unexpected statuses",
         "measured": float(flagged), "goal": "0", "met": flagged == 0},
    ]  # fmt: skip


CONSTANT = "constant"  # a scenario that is itself a ceiling (no database), not a contest
Row = dict[str, Any]
HEADERS = ("scenario", "condition", "conn.", "winner", "req/s", "× next best", "× django",
           "raw-pool", "constant", "every contender (req/s)", "CPU µs/req: server + PostgreSQL",
           "CPU aioapi ÷ django")  # fmt: skip
ALIGN = ("left", "left", "right", "left", "right", "left", *("right",) * 3, "left", "left", "right")


def contenders(document: Mapping[str, Any]) -> list[str]:
    """The servers results.json holds, less the ceilings, in its order."""
    return [name for name in document.get("servers", {}) if name != RAW_POOL]


def answer_rows(document: Mapping[str, Any]) -> list[Row]:
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


def answer(document: Mapping[str, Any]) -> list[str]:
    """The answer as lines of Markdown: the table, the servers' notes, any warning."""
    shown = answer_rows(document)
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
