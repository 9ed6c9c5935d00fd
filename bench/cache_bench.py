"""``python -m bench.cache_bench``: the response cache against the constant-body ceiling.

One aioapi process (pinned to CPU 0, wrk to CPU 1) on a 50,000-film catalogue, with
``API_CACHE=1`` then ``API_CACHE=0``: the answers are checked (the same bytes and ETag
both times, cache hits counted), then wrk alternates ``/healthz`` (a constant body: the
ceiling of the process) and ``/api/movies?limit=10``, ``--rounds`` times each. Target:
the cached list reaches 50 % of ``/healthz``'s requests/s, with zero errors (exit 1
otherwise).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from datetime import UTC, datetime
from typing import Any

from bench import scaffold, verify, wrk
from bench.scaffold import command_line, header, markdown_table, publish, run_facts
from bench.servers import ManagedServer, ServerSpec
from bench.workload import HttpRequest

CEILING = "/healthz"
LIST = "/api/movies?limit=10"
TARGET_RATIO = 0.5
FILMS = 50_000
SEED = 42


def server_env(database_url: str, cache: bool) -> dict[str, str]:
    """As bench/README.md's fairness rules: 16 ORM threads, a fixed pool of 16."""
    return scaffold.server_env(
        database_url, pool_size=16, API_DB_THREADS="16", API_CACHE="1" if cache else "0"
    )


def metric(port: int, name: str) -> float:
    [answer] = verify.require(port, [HttpRequest("GET", "/metrics")])
    for line in answer.body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def aioapi(port: int, env: dict[str, str]) -> ServerSpec:
    argv = (sys.executable, "-m", "aioapi", "--port", str(port), "--uvloop")
    return ServerSpec("aioapi", "aioapi, one process", argv, env, port, "/api/movies", None,
                      "/readyz", workers=0)  # fmt: skip


def measure(name: str, port: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Prime both paths, then alternate them ``--rounds`` times."""

    def load(path: str, seconds: int) -> tuple[wrk.WrkResult, list[str]]:
        url = f"http://127.0.0.1:{port}{path}"
        return wrk.load(url, connections=args.connections, duration=seconds,
                        threads=args.threads, timeout=5, pin="1")  # fmt: skip

    for path in (CEILING, LIST):
        load(path, 2)
    runs: list[dict[str, Any]] = []
    for round_ in range(1, args.rounds + 1):
        for path in (CEILING, LIST):
            result, command = load(path, args.duration)
            record = {
                "server": name,
                "path": path,
                "round": round_,
                "requests_per_s": round(result.requests_per_s, 1),
                "requests": result.requests,
                "latency_ms": result.latency_ms,
                "errors": result.errors,
                "statuses": result.statuses,
                "problems": result.problems(),
                "wrk": " ".join(command),
            }
            print(json.dumps({k: record[k] for k in ("server", "path", "round",
                                                    "requests_per_s", "problems")}),
                  flush=True)  # fmt: skip
            runs.append(record)
    return runs


def check(port: int, cache: bool) -> tuple[bytes, str | None]:
    """Every path answers 200; with the cache on, the second read of the list is a hit.
    The list's body and ETag."""
    list_ = HttpRequest("GET", LIST)
    _, first = verify.require(port, [HttpRequest("GET", CEILING), list_])
    if cache:
        hits = metric(port, "api_cache_hits_total")
        [again] = verify.require(port, [list_])
        if again.body != first.body or metric(port, "api_cache_hits_total") <= hits:
            raise SystemExit(f"{LIST} was not served from the cache")
    return first.body, first.etag


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def median(server: str, path: str) -> float:
        values = [r["requests_per_s"] for r in runs if (r["server"], r["path"]) == (server, path)]
        return round(statistics.median(values), 1)

    ceiling = median("cache-on", CEILING)
    cached = median("cache-on", LIST)
    uncached = median("cache-off", LIST)
    errors = sum(len(r["problems"]) for r in runs)
    ratio = cached / ceiling if ceiling else 0.0
    return {
        "healthz_rps_cache_on_server": ceiling,
        "healthz_rps_cache_off_server": median("cache-off", CEILING),
        "list_rps_cached": cached,
        "list_rps_uncached": uncached,
        "cached_over_healthz": round(ratio, 3),
        "cached_over_uncached": round(cached / uncached, 1) if uncached else None,
        "runs_with_errors": errors,
        "target": f"list_rps_cached >= {TARGET_RATIO:.0%} of healthz, zero errors",
        "target_met": ratio >= TARGET_RATIO and errors == 0,
    }


def report(document: dict[str, Any]) -> str:
    s = document["summary"]
    lines = [
        *header("Response cache benchmark", document),
        f"Catalogue: {document['films']:,} films  ",
        f"Load: wrk {document['settings']['threads']} threads, "
        f"{document['settings']['connections']} connections, "
        f"{document['settings']['duration_s']} s per run, median of "
        f"{document['settings']['rounds']} alternating rounds",
        "",
        *markdown_table(
            ["server", "path", "requests/s (median)"],
            [
                ["API_CACHE=1", f"`{CEILING}`", f"{s['healthz_rps_cache_on_server']:,.0f}"],
                ["API_CACHE=1", f"`{LIST}`", f"{s['list_rps_cached']:,.0f}"],
                ["API_CACHE=0", f"`{CEILING}`", f"{s['healthz_rps_cache_off_server']:,.0f}"],
                ["API_CACHE=0", f"`{LIST}`", f"{s['list_rps_uncached']:,.0f}"],
            ],
            ("left", "left", "right"),
        ),
        f"- cached list / `/healthz`: **{s['cached_over_healthz']:.0%}** "
        f"(target ≥ {TARGET_RATIO:.0%}): {'met' if s['target_met'] else 'NOT MET'}",
        f"- cached / uncached list: {s['cached_over_uncached']}×",
        f"- runs with errors: {s['runs_with_errors']}",
        "",
        *markdown_table(
            ["server", "path", "round", "requests/s", "p50 ms", "p99 ms", "problems"],
            [
                [
                    r["server"],
                    f"`{r['path']}`",
                    r["round"],
                    f"{r['requests_per_s']:,.0f}",
                    f"{r['latency_ms']['p50']:.2f}",
                    f"{r['latency_ms']['p99']:.2f}",
                    ", ".join(r["problems"]) or "-",
                ]
                for r in document["runs"]
            ],
            ("left", "left", "right", "right", "right", "right", "left"),
        ),
    ]
    lines += [f"Servers: `{'`, `'.join(document['servers'])}`", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cache_bench", description=__doc__)
    add = parser.add_argument
    add("--database-url", default="postgres://postgres@127.0.0.1:5432/mymoviedb_cache")
    add("--port", type=int, default=22800)
    add("--connections", type=int, default=64)
    add("--threads", type=int, default=2)
    add("--duration", type=int, default=10, help="seconds per wrk run")
    add("--rounds", type=int, default=3)
    add("--label", default="cache", help="suffix of the results directory")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    started = datetime.now(UTC)
    env = {**server_env(args.database_url, cache=False), "DEBUG": "1"}
    films = scaffold.synthetic_catalogue(args.database_url, films=FILMS, seed=SEED, env=env)
    facts = run_facts(args.database_url)
    runs: list[dict[str, Any]] = []
    servers: list[str] = []
    bodies = []
    for name, cache in (("cache-on", True), ("cache-off", False)):
        spec = aioapi(args.port, server_env(args.database_url, cache))
        cpus = (0,) if shutil.which("taskset") else ()
        with ManagedServer(spec, cpus):
            while cache and metric(args.port, "api_cache_online") != 1:
                time.sleep(0.2)  # the cache listens for changes before it answers
            servers.append(f"API_CACHE={int(cache)} " + " ".join(spec.command(cpus)))
            bodies.append(check(args.port, cache))
            runs += measure(name, args.port, args)
    if bodies[0] != bodies[1]:
        raise SystemExit("the cached and uncached servers gave different bodies")
    document: dict[str, Any] = {
        "command": command_line("bench.cache_bench", argv),
        "facts": scaffold.ended(facts),
        "films": films,
        "settings": {
            "connections": args.connections,
            "threads": args.threads,
            "duration_s": args.duration,
            "rounds": args.rounds,
            "pinning": "server CPU 0, wrk CPU 1" if shutil.which("taskset") else "none",
        },
        "servers": servers,
        "runs": runs,
        "summary": summarise(runs),
    }
    publish(args.label, started, document, report(document))
    return 0 if document["summary"]["target_met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
