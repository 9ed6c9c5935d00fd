"""The figures a results document is read for: the list-10 headline (both
servers, their ratio, both ceilings) and the issues' targets.

With ``--rounds N`` each (condition, server, scenario, connections) was measured
N times; :func:`combined` folds them into one record of medians (errors summed),
and everything here is read from those.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from statistics import median
from typing import Any

from bench.plan import AIOAPI, DJANGO, HEADLINE_CONNECTIONS, RAW_POOL, condition_name

Key = tuple[str, str, str, int]  # condition, server, scenario, connections
LOOPBACK = condition_name(0)
SLOW = condition_name(10)
# Issue 28's read scenarios: each ratio (req/s, CPU per request) is a target.
READS = ("list-10", "list-100", "list-filtered", "detail", "detail-busiest", "people",
         "conditional")  # fmt: skip

FAIRNESS = (
    "Both servers run under Gunicorn, pinned with taskset to the same CPUs, with the "
    "same number of worker processes; one server runs at a time.",
    "DEBUG is off on both; both have the same database connection policy (a connection "
    "per thread kept open, or Django's psycopg pool of the same fixed size: results.json "
    "names it), the same number of threads per worker, the same database, the same data "
    "and the same selectors and renderer.",
    "aioapi's response cache is off (API_CACHE=0) unless the run says otherwise: the "
    "Django views have no cache, and every request must run its SQL on both.",
    "Before any load, every request of every scenario is sent to each server and the "
    "status, body bytes and ETag must be identical; any difference aborts the bench.",
    "Each server gets a primer (low concurrency) and a warm-up before its measured runs.",
    "Any socket error, timeout or unexpected status is reported per run and makes the "
    "command fail (unless --allow-errors); nothing is averaged away.",
    "Simulated database latency (SIMULATED_DB_LATENCY_MS) is a sleep before every SQL "
    "statement on both servers (bench/contenders/latency.py): simulated, not a network.",
    "wrk and PostgreSQL run on the same machine and compete for the same cores.",
)


def key(run: Mapping[str, Any]) -> Key:
    return (run["condition"], run["server"], run["scenario"], run["connections"])


def round_of(run: Mapping[str, Any]) -> int:
    """The run's round; results before schema 2 measured everything once, in round 1."""
    return int(run.get("round", 1))


def rounds_of(document: Mapping[str, Any]) -> int:
    return max((round_of(r) for r in document["runs"]), default=1)


def combined(runs: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """One record per key, in the order first measured: the run itself if it was
    measured once, else the medians of its rounds (:func:`_medians`)."""
    groups: dict[Key, list[Mapping[str, Any]]] = {}
    for run in runs:
        groups.setdefault(key(run), []).append(run)
    return [group[0] if len(group) == 1 else _medians(group) for group in groups.values()]


def _median(values: Iterable[float | None], digits: int) -> float | None:
    present = [v for v in values if v is not None]
    return round(median(present), digits) if present else None


def _medians(group: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Medians of req/s, latencies and CPU; the req/s range; errors, statuses and
    problems summed over the rounds (an error in one round is never medianed away);
    the worst foreign load, backend count and RSS. Other fields: the median run's."""
    by_rps = sorted(group, key=lambda r: float(r["requests_per_s"]))
    out = dict(by_rps[(len(by_rps) - 1) // 2])
    out.pop("round", None)
    rps = [float(r["requests_per_s"]) for r in group]
    workers = [[v for k, v in r["peak_rss_mb"].items() if k.startswith("worker")] for r in group]
    out.update(
        rounds=sorted(round_of(r) for r in group),
        requests_per_s=_median(rps, 1),
        requests_per_s_min=min(rps),
        requests_per_s_max=max(rps),
        latency={k: _median((r["latency"].get(k) for r in group), 3) for k in out["latency"]},
        server_cpu_ms_per_request=_median((r.get("server_cpu_ms_per_request") for r in group), 3),
        server_cpu_s=_median((r["server_cpu_s"] for r in group), 2),
        postgres_cpu_ms_per_request=_median(
            (r.get("postgres_cpu_ms_per_request") for r in group), 3
        ),
        server_cores_used=_median((r["server_cores_used"] for r in group), 2),
        errors={k: sum(r["errors"][k] for r in group) for k in out["errors"]},
        unexpected_status=sum(r["unexpected_status"] for r in group),
        problems=[f"round {round_of(r)}: {p}" for r in group for p in r["problems"]],
        pg_backends_max=max(r["pg_backends_max"] for r in group),
        # Worker pids differ between rounds: the n-th worker's peak over all rounds.
        peak_rss_mb={
            f"worker {i + 1}": max(ws) for i, ws in enumerate(zip(*workers, strict=False))
        },
    )
    if "statuses" in out:
        statuses: dict[str, int] = {}
        for r in group:
            for code, count in r.get("statuses", {}).items():
                statuses[code] = statuses.get(code, 0) + count
        out["statuses"] = dict(sorted(statuses.items()))
    if "requests" in out:
        out["requests"] = sum(r.get("requests", 0) for r in group)
    foreign = [r["foreign_cores"] for r in group if r.get("foreign_cores") is not None]
    if foreign:
        out["foreign_cores"] = max(foreign)
    return out


def index(runs: Iterable[Mapping[str, Any]]) -> dict[Key, Mapping[str, Any]]:
    """Each key's record, rounds folded into medians."""
    return {key(r): r for r in combined(runs)}


def _round_ratios(
    runs: Iterable[Mapping[str, Any]], condition: str, connections: int
) -> list[float]:
    """aioapi/Django of each round in which both were measured, by round."""
    rps: dict[tuple[str, int], float] = {}
    for r in runs:
        if (r["condition"], r["scenario"], r["connections"]) == (condition, "list-10", connections):
            rps[(r["server"], round_of(r))] = float(r["requests_per_s"])
    numbers = sorted({n for _, n in rps})
    return [
        round(rps[(AIOAPI, n)] / rps[(DJANGO, n)], 3)
        for n in numbers
        if rps.get((DJANGO, n)) and (AIOAPI, n) in rps
    ]


def _rps(runs: Mapping[Key, Mapping[str, Any]], key: Key) -> float | None:
    run = runs.get(key)
    return float(run["requests_per_s"]) if run else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def _cpu(run: Mapping[str, Any] | None) -> float | None:
    return run.get("server_cpu_ms_per_request") if run else None


def headline(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """list 10 at 64 and 400 connections: both servers, their ratio, the ceilings."""
    runs = index(document["runs"])
    rows = []
    conditions = dict.fromkeys(r["condition"] for r in document["runs"])
    for condition in conditions:
        for connections in (64, 400):
            django = runs.get((condition, DJANGO, "list-10", connections))
            aioapi = runs.get((condition, AIOAPI, "list-10", connections))
            if not django and not aioapi:
                continue
            raw = _rps(runs, (condition, RAW_POOL, "list-10", connections))
            constant = _rps(runs, (LOOPBACK, AIOAPI, "constant", connections))
            d_rps = float(django["requests_per_s"]) if django else None
            a_rps = float(aioapi["requests_per_s"]) if aioapi else None
            row: dict[str, Any] = {
                "condition": condition,
                "connections": connections,
                "django_rps": d_rps,
                "aioapi_rps": a_rps,
                "aioapi_over_django": _ratio(a_rps, d_rps),
                "django_cpu_ms_per_request": _cpu(django),
                "aioapi_cpu_ms_per_request": _cpu(aioapi),
                "django_p99_ms": django["latency"]["p99"] if django else None,
                "aioapi_p99_ms": aioapi["latency"]["p99"] if aioapi else None,
                "raw_pool_rps": raw,
                "constant_rps": constant,
                "django_of_raw_pool": _ratio(d_rps, raw),
                "aioapi_of_raw_pool": _ratio(a_rps, raw),
                "django_of_constant": _ratio(d_rps, constant),
                "aioapi_of_constant": _ratio(a_rps, constant),
            }
            if rounds_of(document) > 1:
                row.update(_spread(document["runs"], django, aioapi, condition, connections))
            rows.append(row)
    return rows


def _spread(
    runs: Iterable[Mapping[str, Any]],
    django: Mapping[str, Any] | None,
    aioapi: Mapping[str, Any] | None,
    condition: str,
    connections: int,
) -> dict[str, Any]:
    """With rounds: each server's req/s range, and the range of the per-round ratios."""
    ratios = _round_ratios(runs, condition, connections)
    out: dict[str, Any] = {"round_ratios": ratios}
    out["round_ratio_min"] = min(ratios) if ratios else None
    out["round_ratio_max"] = max(ratios) if ratios else None
    for name, run in (("django", django), ("aioapi", aioapi)):
        out[f"{name}_rounds"] = len(run.get("rounds", [1])) if run else 0
        out[f"{name}_rps_min"] = run.get("requests_per_s_min") if run else None
        out[f"{name}_rps_max"] = run.get("requests_per_s_max") if run else None
    return out


def targets(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Issue 3's, issue 12's (the lean read path) and issue 28's (every read at index
    speed) acceptance figures, each met, missed or not measured."""
    runs = index(document["runs"])

    def ratio(condition: str, connections: int, scenario: str = "list-10") -> float | None:
        return _ratio(
            _rps(runs, (condition, AIOAPI, scenario, connections)),
            _rps(runs, (condition, DJANGO, scenario, connections)),
        )

    def target(
        issue: int, name: str, measured: float | None, goal: str, met: bool
    ) -> dict[str, Any]:
        return {"issue": issue, "target": name, "measured": measured, "goal": goal,
                "met": None if measured is None else met}  # fmt: skip

    def at_least(issue: int, name: str, measured: float | None, goal: float) -> dict[str, Any]:
        return target(issue, name, measured, f">= {goal:g}", (measured or 0) >= goal)

    def latency(connections: int, percentile: str) -> float | None:
        run = runs.get((LOOPBACK, AIOAPI, "list-10", connections))
        return float(run["latency"][percentile]) if run else None

    p99_64, p50_400, p99_400 = latency(64, "p99"), latency(400, "p50"), latency(400, "p99")
    tail = round(p99_400 / p50_400, 2) if p99_400 is not None and p50_400 else None
    of_raw = _ratio(
        _rps(runs, (LOOPBACK, AIOAPI, "list-10", 64)),
        _rps(runs, (LOOPBACK, RAW_POOL, "list-10", 64)),
    )
    flagged = sum(1 for r in document["runs"] if r["problems"])

    def cpu(connections: int, scenario: str, server: str = AIOAPI) -> float | None:
        return _cpu(runs.get((LOOPBACK, server, scenario, connections)))

    def at_most(name: str, measured: float | None, goal: float) -> dict[str, Any]:
        return target(28, name, measured, f"<= {goal:g}", measured is not None and measured <= goal)

    where = "loopback, {} connections"
    pg_list_100 = _median(
        (runs.get((LOOPBACK, s, "list-100", 64), {}).get("postgres_cpu_ms_per_request")
         for s in (AIOAPI, DJANGO)), 3)  # fmt: skip
    issue28 = [
        *(at_least(28, f"aioapi/Django req/s, {s}, {where.format(n)}", ratio(LOOPBACK, n, s), goal)
          for n, goal in ((64, 1.4), (400, 1.25)) for s in READS),
        *(at_least(28, f"aioapi/Django req/s, list 10, {where.format(n)}", ratio(LOOPBACK, n), 1.8)
          for n in HEADLINE_CONNECTIONS),
        *(at_most(f"aioapi/Django server CPU per request, {s}, {where.format(n)}",
                  _ratio(cpu(n, s), cpu(n, s, DJANGO)), 0.6)
          for n in HEADLINE_CONNECTIONS for s in READS),
        at_most("PostgreSQL CPU ms per request, list 100, loopback, 64 connections "
                "(median of both servers)", pg_list_100, 0.3),
    ]  # fmt: skip
    return [
        at_least(3, "aioapi/Django req/s, list 10, loopback, 64 connections",
                 ratio(LOOPBACK, 64), 1.4),
        at_least(3, "aioapi/Django req/s, list 10, loopback, 400 connections",
                 ratio(LOOPBACK, 400), 1.4),
        at_least(3, "aioapi/Django req/s, list 10, 10 ms simulated, 400 connections",
                 ratio(SLOW, 400), 5),
        target(3, "aioapi p99 (ms), list 10, loopback, 64 connections",
               p99_64, "< 50", p99_64 is not None and p99_64 < 50),
        at_least(12, "aioapi/Django req/s, list 10, loopback, 64 connections",
                 ratio(LOOPBACK, 64), 1.5),
        at_least(12, "aioapi/Django req/s, list 10, loopback, 400 connections",
                 ratio(LOOPBACK, 400), 1.5),
        at_least(12, "aioapi/Django req/s, detail, loopback, 64 connections",
                 ratio(LOOPBACK, 64, "detail"), 1.5),
        at_least(12, "aioapi/Django req/s, detail, loopback, 400 connections",
                 ratio(LOOPBACK, 400, "detail"), 1.5),
        at_least(12, "aioapi/Django req/s, list 10, 10 ms simulated, 400 connections",
                 ratio(SLOW, 400), 1.4),
        at_least(12, "aioapi req/s / raw pool req/s, list 10, loopback, 64 connections",
                 of_raw, 0.5),
        target(12, "aioapi p99 / p50, list 10, loopback, 400 connections",
               tail, "<= 3", tail is not None and tail <= 3),
        *issue28,
        target(0, "runs with errors, timeouts or unexpected statuses",
               float(flagged), "0", flagged == 0),
    ]  # fmt: skip
