"""A results document's runs with their rounds folded into medians (errors summed, never
medianed away), and issue 28's targets, each met, missed or not measured."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from statistics import median
from typing import Any

from bench.plan import AIOAPI, DJANGO, condition_name

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
    statuses: dict[str, int] = {}
    for r in group:
        for code, count in r.get("statuses", {}).items():
            statuses[code] = statuses.get(code, 0) + count
    cpu = ("server_cpu_ms_per_request", "postgres_cpu_ms_per_request")
    out.update(
        rounds=sorted(round_of(r) for r in group),
        requests_per_s=_median(rps, 1),
        requests_per_s_min=min(rps),
        requests_per_s_max=max(rps),
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
        foreign_cores=max(
            (r["foreign_cores"] for r in group if r.get("foreign_cores") is not None), default=None
        ),
    )
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
