"""What a benchmark measures: the scenarios, the conditions and the matrix of runs.

The full cross product (8 scenarios x 5 connection counts x 3 conditions x 4
contenders) would take hours here, so the default matrix gives ``list-10`` the
whole sweep in every condition and the other scenarios two points on loopback and
one with 10 ms of simulated latency (bench/README.md, "The plan").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

DJANGO = "django"
DJANGO_ASGI = "django-asgi"
DRF = "drf"
AIOAPI = "aioapi"
RAW_POOL = "raw-pool"
DJANGO_SYNC = "django-sync"
# Also the order they run in: a server verified by order parity (drf) comes after
# one whose bytes are the reference (bench/verify.py).
SERVERS = (DJANGO, DJANGO_ASGI, DJANGO_SYNC, DRF, AIOAPI, RAW_POOL)
BOTH = (DJANGO, AIOAPI)
# Every contender; drf serves the plain list and the detail only (no filters, no
# search, no ETag, no writes), so it is in the rows of those scenarios alone.
CONTENDERS = (DJANGO, DJANGO_ASGI, DRF, AIOAPI)
DRF_SCENARIOS = ("list-10", "list-100", "detail")
# Only these two have a people list (no async twin of it: the issue compares these two).
PEOPLE_SERVERS = BOTH

SWEEP = (16, 64, 256, 400, 1000)
HEADLINE_CONNECTIONS = (64, 400)
# (connections, seconds) of each server's primer and warm-up, TechEmpower-style.
PRIMER, WARMUP = (8, 3), (256, 6)
QUICK_PRIMER, QUICK_WARMUP = (8, 2), (256, 3)
T = TypeVar("T")


@dataclass(frozen=True)
class Scenario:
    """One kind of load: a Lua script under bench/scenarios and its expected statuses."""

    name: str
    summary: str
    script: str
    expect: tuple[int, ...] = (200,)


SCENARIOS: dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in (
        Scenario("list-10", "first page of 10 films by title (1 query)", "get.lua"),
        Scenario("list-100", "first page of 100 films by title (1 query)", "get.lua"),
        Scenario(
            "list-filtered",
            "drama, 1990-2010, newest first, 20 per page (1 query)",
            "get.lua",
        ),
        Scenario(
            "detail",
            "one of 500 random films with genres, directors and cast (1 query)",
            "paths.lua",
        ),
        Scenario(
            "detail-busiest",
            "one of 100 films sampled from the 1 % with the most credits (1 query)",
            "paths.lua",
        ),
        Scenario("people", "first page of 20 people by name (1 query)", "get.lua"),
        Scenario("search", "full-text search for common words, 10 per page", "paths.lua"),
        Scenario(
            "write-mix",
            "1 authenticated PATCH every 20 requests, GETs of list 10 and details between",
            "write_mix.lua",
        ),
        Scenario(
            "conditional",
            "list 10 with If-None-Match: every answer is a 304",
            "conditional.lua",
            expect=(304,),
        ),
        Scenario("constant", "aioapi's /healthz: constant body, no database", "get.lua"),
    )
}

# Django's comparison views are read-only (GET/HEAD), so writes load aioapi alone.
WRITE_SERVERS = (AIOAPI,)


@dataclass(frozen=True)
class Row:
    """One scenario on some servers, at given connection counts per condition."""

    scenario: str
    servers: tuple[str, ...]
    connections: tuple[tuple[float, tuple[int, ...]], ...]  # (latency ms, counts)
    duration: int


@dataclass(frozen=True)
class Run:
    """One measured wrk run."""

    latency_ms: float
    server: str
    scenario: str
    connections: int
    duration: int


@dataclass(frozen=True)
class Plan:
    """The measured runs in execution order, plus the primer and warm-up of each server."""

    name: str
    runs: tuple[Run, ...]
    primer: tuple[int, int]  # (connections, seconds)
    warmup: tuple[int, int]
    # Each server's block is repeated this many times per condition (bench/README.md,
    # "Rounds"): one run of a server varies by up to ±25 % here, so one ratio is noise.
    rounds: int = 1

    def conditions(self) -> list[float]:
        return _unique(run.latency_ms for run in self.runs)

    def servers(self, latency_ms: float) -> list[str]:
        return _unique(run.server for run in self.runs if run.latency_ms == latency_ms)

    def server_order(self, latency_ms: float, round_number: int) -> list[str]:
        """The servers of round ``round_number`` (from 1): the plan's order, reversed in
        even rounds, so slow drift of the machine falls on every server alike."""
        servers = self.servers(latency_ms)
        return servers if round_number % 2 else servers[::-1]

    def runs_of(self, latency_ms: float, server: str) -> list[Run]:
        return [r for r in self.runs if r.latency_ms == latency_ms and r.server == server]

    def writers(self, latency_ms: float) -> set[str]:
        """The servers whose write-mix runs at ``latency_ms`` (their PATCH is verified)."""
        runs = (r for r in self.runs if r.latency_ms == latency_ms)
        return {r.server for r in runs if r.scenario == "write-mix"}

    def scenarios(self) -> list[str]:
        return _unique(run.scenario for run in self.runs)

    def estimate_seconds(self, start: float = 6.0, settle: float = 1.5) -> float:
        """Rough wall time: runs, settling pauses, server starts, primers, warm-ups,
        all of it once per round."""
        starts = sum(len(self.servers(latency)) for latency in self.conditions())
        per_start = start + self.primer[1] + self.warmup[1] + 2 * settle
        once = sum(run.duration + settle for run in self.runs) + starts * per_start
        return self.rounds * once


def _unique(items: Iterable[T]) -> list[T]:
    return list(dict.fromkeys(items))


def serving(scenario: str, servers: Sequence[str] = CONTENDERS) -> tuple[str, ...]:
    """Those of ``servers`` that serve ``scenario``."""
    return tuple(
        s
        for s in servers
        if (s != DRF or scenario in DRF_SCENARIOS) and (scenario != "people" or s in PEOPLE_SERVERS)
    )


def serves(server: str, scenario: str) -> bool:
    """Whether ``server`` can answer ``scenario``'s reads (all are verified where possible)."""
    if server in (RAW_POOL, DJANGO_SYNC):
        return scenario == "list-10"  # django-sync: verified against the same reference
    return server in serving(scenario, SERVERS) and (scenario != "constant" or server == AIOAPI)


def default_rows() -> tuple[Row, ...]:
    """Every contender in each row it can serve (134 runs, about 24 minutes)."""
    every = ((0.0, SWEEP), (2.0, SWEEP), (10.0, SWEEP))
    headline = tuple((latency, HEADLINE_CONNECTIONS) for latency in (0.0, 2.0, 10.0))
    two_points = ((0.0, HEADLINE_CONNECTIONS), (10.0, (400,)))
    others = ("list-100", "list-filtered", "detail", "detail-busiest", "people", "conditional")
    # PostgreSQL computes to_tsvector row by row for a common word (~20 ms a query):
    # at 400 connections requests would queue for longer than wrk's timeout.
    search = ((0.0, (16, 64)), (10.0, (64,)))
    # drf serves ~100-150 req/s here: at 1000 connections a request would queue for
    # longer than wrk's 10 s timeout, and the run would measure the timeout.
    drf_sweep = tuple((latency, SWEEP[:-1]) for latency, _ in every)
    return (
        Row("list-10", tuple(s for s in serving("list-10") if s != DRF), every, 8),
        Row("list-10", (DRF,), drf_sweep, 8),
        Row("list-10", (RAW_POOL,), headline, 8),
        Row("constant", (AIOAPI,), ((0.0, HEADLINE_CONNECTIONS),), 5),
        *(Row(name, serving(name), two_points, 5) for name in others),
        Row("search", serving("search"), search, 5),
        Row("write-mix", WRITE_SERVERS, two_points, 5),
    )


def sync_rows() -> tuple[Row, ...]:
    """The extra labelled row: classic sync workers (no keep-alive), list 10 only."""
    headline = tuple((latency, HEADLINE_CONNECTIONS) for latency in (0.0, 2.0, 10.0))
    return (Row("list-10", (DJANGO_SYNC,), headline, 8),)


def quick_rows() -> tuple[Row, ...]:
    headline = ((0.0, HEADLINE_CONNECTIONS), (10.0, HEADLINE_CONNECTIONS))
    return (
        Row("list-10", CONTENDERS, headline, 4),
        Row("list-10", (RAW_POOL,), headline, 4),
        Row("constant", (AIOAPI,), ((0.0, HEADLINE_CONNECTIONS),), 4),
    )


def issue3_rows(with_django_sync: bool = False) -> tuple[Row, ...]:
    """Issue 3's comparison alone: list 10 at 64 and 400 connections, loopback and 10 ms,
    10 s a run; meant to be repeated with ``--rounds``."""
    headline = ((0.0, HEADLINE_CONNECTIONS), (10.0, HEADLINE_CONNECTIONS))
    servers = (DJANGO, DJANGO_SYNC, AIOAPI) if with_django_sync else BOTH
    return (Row("list-10", servers, headline, 10),)


def lean_rows() -> tuple[Row, ...]:
    """The lean read path's comparison: list 10 and detail on both servers at 64 and
    400 connections on loopback and at 400 with 10 ms per query, beside the raw-pool
    ceiling of list 10 on loopback; 10 s a run, meant for ``--rounds``."""
    loopback, latency = (0.0, HEADLINE_CONNECTIONS), (10.0, (400,))
    return (
        Row("list-10", BOTH, (loopback, latency), 10),
        Row("detail", BOTH, (loopback, latency), 10),
        Row("list-10", (RAW_POOL,), (loopback,), 10),
    )


def build_plan(
    name: str,
    rows: Sequence[Row],
    *,
    scenarios: Sequence[str] | None = None,
    servers: Sequence[str] | None = None,
    conditions: Sequence[float] | None = None,
    duration: int | None = None,
    connections: Sequence[int] | None = None,
    primer: tuple[int, int] = PRIMER,
    warmup: tuple[int, int] = WARMUP,
    rounds: int = 1,
) -> Plan:
    """Order the runs: by condition, then server (one running at a time), then row order.

    ``scenarios``, ``servers``, ``conditions``, ``duration`` and ``connections``
    narrow, shorten or replace parts of the matrix; ``rounds`` repeats every
    server's block (:meth:`Plan.server_order`).
    """
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, not {rounds}")
    unknown = (set(scenarios or ()) - set(SCENARIOS)) | (set(servers or ()) - set(SERVERS))
    if unknown:
        raise ValueError(f"unknown scenario(s) or server(s): {', '.join(sorted(unknown))}")
    runs: list[Run] = []
    for row in rows:
        if scenarios is not None and row.scenario not in scenarios:
            continue
        for latency, counts in row.connections:
            if conditions is not None and latency not in conditions:
                continue
            for server in row.servers:
                if servers is not None and server not in servers:
                    continue
                runs.extend(
                    Run(latency, server, row.scenario, count, duration or row.duration)
                    for count in (connections or counts)
                )
    order = {latency: i for i, latency in enumerate(sorted({r.latency_ms for r in runs}))}
    runs.sort(key=lambda r: (order[r.latency_ms], SERVERS.index(r.server)))  # stable
    if not runs:
        raise ValueError("the chosen scenarios and conditions leave no run to make")
    if duration is not None:
        primer = (primer[0], min(primer[1], duration))
        warmup = (warmup[0], min(warmup[1], duration))
    return Plan(name=name, runs=tuple(runs), primer=primer, warmup=warmup, rounds=rounds)


def condition_name(latency_ms: float) -> str:
    """``loopback`` or ``simulated 10 ms``."""
    return "loopback" if latency_ms == 0 else f"simulated {latency_ms:g} ms"
