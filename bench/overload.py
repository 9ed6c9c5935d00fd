"""Overload: 1,000 concurrent connections on list 10, with zero errors (not in CI).

    .venv/bin/python -m bench.overload [--connections 1000] [--duration 30] [--timeout 10]
                                       [--cache on|off] [--label overload]

aioapi runs under Gunicorn with deploy/gunicorn_api.conf.py as deployed (one
worker per core, the production defaults; ``--cache off`` makes every request
reach the database) on PostgreSQL with the shared
catalogue. After a check that the URL answers 200 and a warm-up, wrk holds
``--connections`` connections open on ``/api/movies?limit=10`` (loopback) for
``--duration`` seconds with a per-request ``--timeout``, while a sampler counts
the PostgreSQL backends of the database, the TCP connections the workers hold
and their RSS. Any socket error, timeout or status other than 200 is reported and
makes the command exit 1. Results: bench/results/<UTC date>-overload/.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from bench.deployed_api import (
    DEFAULT_DATABASE_URL,
    ApiServer,
    backends,
    prepare_catalogue,
    rss_mib,
)
from bench.scaffold import markdown_table, results_dir, run_facts, write_results
from bench.wrk import SCRIPTS, WrkResult, run, wrk_command

PATH = "/api/movies?limit=10"
SAMPLE_SECONDS = 0.5


class Sampler(threading.Thread):
    """Backends, server-side connections and worker RSS, every half second."""

    def __init__(self, server: ApiServer, database_url: str) -> None:
        super().__init__(daemon=True)
        self.server, self.database_url = server, database_url
        self.samples: list[dict[str, Any]] = []
        self.done = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        while not self.done.wait(SAMPLE_SECONDS):
            workers = self.server.workers()
            self.samples.append(
                {
                    "t_s": round(time.monotonic() - started, 1),
                    "backends": backends(self.database_url),
                    "server_connections": established(workers, self.server.port),
                    "worker_rss_mib": rss_mib(workers),
                }
            )

    def summary(self) -> dict[str, Any]:
        totals = [sum(sample["backends"].values()) for sample in self.samples]
        open_connections = [sample["server_connections"] for sample in self.samples]
        rss = [max(sample["worker_rss_mib"].values(), default=0.0) for sample in self.samples]
        return {
            "backends_max": max(totals, default=0),
            "backends_mean": round(sum(totals) / len(totals), 1) if totals else 0,
            "backends_last": self.samples[-1]["backends"] if self.samples else {},
            "server_connections_max": max(open_connections, default=0),
            "worker_rss_max_mib": max(rss, default=0.0),
        }


def established(workers: list[psutil.Process], port: int) -> int:
    """TCP connections to ``port`` the workers hold open."""
    count = 0
    for worker in workers:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            for connection in worker.net_connections(kind="tcp"):
                local = connection.laddr
                if local and local.port == port and connection.status == psutil.CONN_ESTABLISHED:
                    count += 1
    return count


def check(server: ApiServer) -> None:
    """The URL answers 200 with a JSON list before any load is sent."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.request("GET", PATH)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    if response.status != 200 or not body.startswith(b'{"items":'):
        sys.exit(f"GET {PATH} answered {response.status}: {body[:300]!r}")


def wrk(server: ApiServer, args: argparse.Namespace, duration: int) -> tuple[WrkResult, list[str]]:
    command = wrk_command(
        server.base + PATH,
        str(SCRIPTS / "get.lua"),
        connections=args.connections,
        threads=args.threads,
        duration=duration,
        timeout=args.timeout,
    )
    result, _, _ = run(command, {"BENCH_EXPECT": "200"}, timeout=duration + args.timeout + 60)
    return result, command


def report(results: dict[str, Any]) -> str:
    measured, sampled = results["measured"], results["sampled"]
    errors = measured["errors"]
    return "\n".join(
        [
            "# Overload: 1,000 connections on list 10 (aioapi under Gunicorn)",
            "",
            f"Command: `{results['command']}`",
            "",
            f"wrk: `{' '.join(results['wrk_command'])}`",
            "",
            f"Server: `{results['server_command']}` with {results['server_settings']}",
            "",
            *markdown_table(
                [
                    "connections",
                    "requests",
                    "req/s",
                    "p50 ms",
                    "p99 ms",
                    "max ms",
                    "connect",
                    "read",
                    "write",
                    "timeout",
                    "non-2xx",
                ],
                [
                    [
                        results["options"]["connections"],
                        measured["requests"],
                        f"{measured['requests_per_s']:.0f}",
                        f"{measured['latency_ms']['p50']:.1f}",
                        f"{measured['latency_ms']['p99']:.1f}",
                        f"{measured['latency_ms']['max']:.1f}",
                        errors["connect"],
                        errors["read"],
                        errors["write"],
                        errors["timeout"],
                        measured["non_2xx"],
                    ]
                ],
                ["right"] * 11,
            ),  # fmt: skip
            f"- Statuses: {measured['statuses']}.",
            f"- Connections the workers held at once (max): {sampled['server_connections_max']}.",
            f"- PostgreSQL backends of the database: max {sampled['backends_max']}, mean "
            f"{sampled['backends_mean']}, at the end {sampled['backends_last']}.",
            f"- Largest worker RSS: {sampled['worker_rss_max_mib']} MiB.",
            f"- Verdict: {'clean' if results['clean'] else 'NOT clean: ' + results['problems']}.",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    cores = len(os.sched_getaffinity(0))
    parser = argparse.ArgumentParser(
        prog="python -m bench.overload",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--connections", type=int, default=1000, help="(1000)")
    parser.add_argument("--duration", type=int, default=30, help="seconds measured (30)")
    parser.add_argument("--warm-up", type=int, default=5, help="seconds, not measured (5)")
    parser.add_argument("--timeout", type=int, default=10, help="wrk's per-request timeout (10)")
    parser.add_argument("--threads", type=int, default=cores, help="wrk threads (one per core)")
    parser.add_argument("--workers", type=int, default=cores, help="Gunicorn workers (per core)")
    parser.add_argument(
        "--cache",
        choices=("on", "off"),
        default="on",
        help="aioapi's response cache (API_CACHE); on, as deployed on PostgreSQL",
    )
    parser.add_argument("--label", default="overload")
    args = parser.parse_args(argv)
    command = " ".join(["python -m bench.overload", *(argv if argv is not None else sys.argv[1:])])

    catalogue = prepare_catalogue(args.database_url, say=print)
    log = Path(tempfile.mkdtemp(prefix="mymoviedb-overload-")) / "server.log"
    server = ApiServer.start(
        args.database_url,
        log,
        GUNICORN_API_WORKERS=str(args.workers),
        API_CACHE="1" if args.cache == "on" else "0",
    )
    print(f"aioapi on {server.base} ({args.workers} workers); log {log}", flush=True)
    try:
        check(server)
        wrk(server, args, args.warm_up)
        sampler = Sampler(server, args.database_url)
        sampler.start()
        result, wrk_argv = wrk(server, args, args.duration)
        sampler.done.set()
        sampler.join()
    finally:
        server.stop()
    non_2xx = sum(count for status, count in result.statuses.items() if not 200 <= status < 300)
    problems = result.problems() + ([f"{non_2xx} non-2xx"] if non_2xx else [])
    results = {
        "command": command,
        "wrk_command": wrk_argv,
        "server_command": " ".join(server.command),
        "server_settings": server.settings,
        "options": vars(args),
        "catalogue": catalogue,
        "facts": run_facts(args.database_url),
        "measured": {
            "requests": result.requests,
            "requests_per_s": round(result.requests_per_s, 1),
            "duration_s": result.duration_s,
            "errors": result.errors,
            "statuses": {str(k): v for k, v in sorted(result.statuses.items())},
            "non_2xx": non_2xx,
            "latency_ms": result.latency_ms,
        },
        "sampled": sampler.summary(),
        "samples": sampler.samples,
        "clean": not problems,
        "problems": "; ".join(problems),
    }
    directory = results_dir(args.label)
    write_results(directory, results, report(results))
    print(report(results))
    print(f"results: {directory}")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
