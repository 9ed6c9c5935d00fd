"""The figures a results document is read for: the list-10 headline (both
servers, their ratio, both ceilings) and issue 3's targets."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bench.plan import AIOAPI, DJANGO, RAW_POOL, condition_name

Key = tuple[str, str, str, int]  # condition, server, scenario, connections
LOOPBACK = condition_name(0)
SLOW = condition_name(10)

FAIRNESS = (
    "Both servers run under Gunicorn, pinned with taskset to the same CPUs, with the "
    "same number of worker processes; one server runs at a time.",
    "DEBUG is off on both; both use Django's psycopg pool of the same fixed size, the "
    "same database, the same data and the same selectors and renderer.",
    "aioapi's response cache is off (API_CACHE=0) unless the run says otherwise: the "
    "Django views have no cache, and every request must run its SQL on both.",
    "Before any load, every request of every scenario is sent to each server and the "
    "status, body bytes and ETag must be identical; any difference aborts the bench.",
    "Each server gets a primer (low concurrency) and a warm-up before its measured runs.",
    "Any socket error, timeout or unexpected status is reported per run and makes the "
    "command fail (unless --allow-errors); nothing is averaged away.",
    "Simulated database latency (SIMULATED_DB_LATENCY_MS) is a sleep before every SQL "
    "statement on both servers (movies/latency.py): simulated, not a real network.",
    "wrk and PostgreSQL run on the same machine and compete for the same cores.",
)


def index(runs: Iterable[Mapping[str, Any]]) -> dict[Key, Mapping[str, Any]]:
    return {(r["condition"], r["server"], r["scenario"], r["connections"]): r for r in runs}


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
            rows.append(
                {
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
            )
    return rows


def targets(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Issue 3's acceptance figures, each met, missed or not measured."""
    runs = index(document["runs"])

    def ratio(condition: str, connections: int) -> float | None:
        return _ratio(
            _rps(runs, (condition, AIOAPI, "list-10", connections)),
            _rps(runs, (condition, DJANGO, "list-10", connections)),
        )

    def target(name: str, measured: float | None, goal: str, met: bool) -> dict[str, Any]:
        return {"target": name, "measured": measured, "goal": goal,
                "met": None if measured is None else met}  # fmt: skip

    p99_run = runs.get((LOOPBACK, AIOAPI, "list-10", 64))
    p99 = float(p99_run["latency"]["p99"]) if p99_run else None
    loop_64, loop_400, slow_400 = ratio(LOOPBACK, 64), ratio(LOOPBACK, 400), ratio(SLOW, 400)
    flagged = sum(1 for r in document["runs"] if r["problems"])
    return [
        target("aioapi/Django req/s, list 10, loopback, 64 connections",
               loop_64, ">= 1.4", loop_64 is not None and loop_64 >= 1.4),
        target("aioapi/Django req/s, list 10, loopback, 400 connections",
               loop_400, ">= 1.4", loop_400 is not None and loop_400 >= 1.4),
        target("aioapi/Django req/s, list 10, 10 ms simulated, 400 connections",
               slow_400, ">= 5", slow_400 is not None and slow_400 >= 5),
        target("aioapi p99 (ms), list 10, loopback, 64 connections",
               p99, "< 50", p99 is not None and p99 < 50),
        target("runs with errors, timeouts or unexpected statuses",
               float(flagged), "0", flagged == 0),
    ]  # fmt: skip
