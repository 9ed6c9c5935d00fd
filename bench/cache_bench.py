"""``python -m bench.cache_bench``: the response cache against the constant-body ceiling.

One aioapi process (``python -m aioapi --uvloop``) serves a PostgreSQL catalogue
(prepared when empty: ``migrate``, ``generate_movies --count 50000 --seed 42``,
``VACUUM ANALYZE``). It runs twice, with ``API_CACHE=1`` and then ``API_CACHE=0``;
each time the answers are checked first (status 200, the same bytes and ETag
from both runs, cache hits counted), then wrk loads ``/healthz`` (a constant body
that touches nothing: the ceiling of the process) and ``/api/movies?limit=10``,
alternating, ``--rounds`` times each. With ``taskset`` the server runs on CPU 0
and wrk on CPU 1. The medians go to ``bench/results/<UTC date>-cache/``
(results.json, report.md).

Target (issue 8): the cached list reaches at least 50 % of the requests/s of
``/healthz`` measured by the same server in the same run, with zero errors.
Exit status 1 when a run had errors or the target was missed.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

from bench import scaffold
from bench.facts import machine, versions
from bench.scaffold import markdown_table, publish
from bench.wrk import WrkResult, run, wrk_command, wrk_version

REPO = Path(__file__).resolve().parent.parent
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


def prepare(database_url: str) -> int:
    """Create, migrate and fill the database unless it holds films; return their count."""
    env = {**server_env(database_url, cache=False), "DEBUG": "1"}
    return scaffold.synthetic_catalogue(database_url, films=FILMS, seed=SEED, env=env)


def pinned(cpu: int, command: list[str]) -> list[str]:
    return ["taskset", "--cpu-list", str(cpu), *command] if shutil.which("taskset") else command


def fetch(base: str, path: str) -> tuple[int, bytes, str]:
    with urllib.request.urlopen(base + path, timeout=10) as response:
        return response.status, response.read(), response.headers.get("ETag", "")


def metric(base: str, name: str) -> float:
    _, body, _ = fetch(base, "/metrics")
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


@contextlib.contextmanager
def serving(port: int, env: dict[str, str]) -> Iterator[tuple[str, list[str]]]:
    """Start aioapi (its cache online when on); yield its base URL and command line."""
    command = pinned(0, [sys.executable, "-m", "aioapi", "--port", str(port), "--uvloop"])
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        return fetch(base, "/readyz")[0] == 200 and (
            env["API_CACHE"] == "0" or metric(base, "api_cache_online") == 1
        )

    with scaffold.serving("aioapi", command, env, ready):
        yield base, command


def load(base: str, path: str, args: argparse.Namespace, seconds: int) -> tuple[WrkResult, str]:
    command = wrk_command(
        base + path,
        "get.lua",
        connections=args.connections,
        threads=args.threads,
        duration=seconds,
        timeout=5,
    )
    result, _, _ = run(pinned(1, command), {"BENCH_EXPECT": "200"}, timeout=seconds + 60)
    return result, " ".join(pinned(1, command))


def measure(name: str, base: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Prime both paths, then alternate them ``--rounds`` times."""
    for path in (CEILING, LIST):
        load(base, path, args, 2)
    runs: list[dict[str, Any]] = []
    for round_ in range(1, args.rounds + 1):
        for path in (CEILING, LIST):
            result, command = load(base, path, args, args.duration)
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
                "wrk": command,
            }
            print(json.dumps({k: record[k] for k in ("server", "path", "round",
                                                    "requests_per_s", "problems")}),
                  flush=True)  # fmt: skip
            runs.append(record)
    return runs


def verify(base: str, cache: bool) -> dict[str, Any]:
    """Every path answers 200; with the cache on, the second read of the list is a hit."""
    answers = {}
    for path in (CEILING, LIST):
        status, body, etag = fetch(base, path)
        if status != 200:
            raise SystemExit(f"{path} answered {status}")
        answers[path] = (body, etag)
    if cache:
        hits = metric(base, "api_cache_hits_total")
        if fetch(base, LIST)[1] != answers[LIST][0] or metric(base, "api_cache_hits_total") <= hits:
            raise SystemExit(f"{LIST} was not served from the cache")
    return {"list_body": answers[LIST][0], "list_etag": answers[LIST][1]}


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
        "# Response cache benchmark",
        "",
        f"Date (UTC): {document['started_utc']}  ",
        f"Command: `{document['command']}`  ",
        f"Catalogue: {document['films']:,} films  ",
        f"Load: wrk {document['settings']['threads']} threads, "
        f"{document['settings']['connections']} connections, "
        f"{document['settings']['duration_s']} s per run, median of "
        f"{document['settings']['rounds']} alternating rounds  ",
        f"Load average at start / end: {document['machine']['load_average_at_start']} / "
        f"{document['load_average_end']}",
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
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/mymoviedb_cache"
    )
    parser.add_argument("--port", type=int, default=22800)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--label", default="cache", help="suffix of the results directory")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")

    started = dt.datetime.now(dt.UTC)
    facts = machine()
    films = prepare(args.database_url)
    runs: list[dict[str, Any]] = []
    servers: list[str] = []
    bodies: list[tuple[bytes, str]] = []
    for name, cache in (("cache-on", True), ("cache-off", False)):
        with serving(args.port, server_env(args.database_url, cache)) as (base, command):
            servers.append(f"API_CACHE={int(cache)} " + " ".join(command))
            checked = verify(base, cache)
            bodies.append((checked["list_body"], checked["list_etag"]))
            runs += measure(name, base, args)
    if bodies[0] != bodies[1]:
        raise SystemExit("the cached and uncached servers gave different bodies")

    with psycopg.connect(args.database_url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    document: dict[str, Any] = {
        "command": " ".join(["python -m bench.cache_bench", *(argv or sys.argv[1:])]),
        "started_utc": started.isoformat(timespec="seconds"),
        "load_average_end": [round(value, 2) for value in os.getloadavg()],
        "machine": facts,
        "versions": versions({"postgresql": row[0] if row else "?", "wrk": wrk_version()}),
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
