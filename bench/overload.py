"""``python -m bench.overload``: 1,000 connections on list 10 with zero errors (not in CI).

aioapi as deployed (bench/deployed_api.py; ``--cache off`` sends every request to the
database), checked, warmed up, then held by wrk at ``--connections`` for
``--duration`` s while a sampler counts the database's backends, the connections the
workers hold and their RSS. Any error or non-2xx makes it exit 1.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any

import psutil

from bench import deployed_api, verify, wrk
from bench.monitor import Every, rss_mib
from bench.scaffold import command_line, ended, header, markdown_table, publish, run_facts
from bench.servers import ManagedServer
from bench.workload import HttpRequest

SAMPLE_SECONDS = 0.5


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


def summary(samples: list[dict[str, Any]]) -> dict[str, Any]:
    totals = [sum(sample["backends"].values()) for sample in samples]
    rss = [max(sample["worker_rss_mib"].values(), default=0.0) for sample in samples]
    return {
        "backends_max": max(totals, default=0),
        "backends_mean": round(sum(totals) / len(totals), 1) if totals else 0,
        "backends_last": samples[-1]["backends"] if samples else {},
        "server_connections_max": max((s["server_connections"] for s in samples), default=0),
        "worker_rss_max_mib": max(rss, default=0.0),
    }


def report(results: dict[str, Any]) -> str:
    measured, sampled = results["measured"], results["sampled"]
    errors, latency = measured["errors"], measured["latency_ms"]
    row = [
        results["options"]["connections"], measured["requests"],
        f"{measured['requests_per_s']:.0f}", *(f"{latency[k]:.1f}" for k in ("p50", "p99", "max")),
        *(errors[k] for k in ("connect", "read", "write", "timeout")), measured["non_2xx"],
    ]  # fmt: skip
    headers = ["connections", "requests", "req/s", "p50 ms", "p99 ms", "max ms", "connect",
               "read", "write", "timeout", "non-2xx"]  # fmt: skip
    return "\n".join(
        [
            *header("Overload: list 10 on aioapi as deployed", results),
            f"wrk: `{' '.join(results['wrk_command'])}`",
            "",
            f"Server: `{results['server_command']}` with {results['server_settings']}",
            "",
            *markdown_table(headers, [row], ["right"] * len(headers)),
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
    parser = argparse.ArgumentParser(prog="python -m bench.overload", description=__doc__)
    add = parser.add_argument
    add("--database-url", default=deployed_api.DEFAULT_DATABASE_URL)
    add("--connections", type=int, default=1000, help="(%(default)s)")
    add("--duration", type=int, default=30, help="seconds measured (%(default)s)")
    add("--warm-up", type=int, default=5, help="seconds, not measured (%(default)s)")
    add("--timeout", type=int, default=10, help="wrk's per-request timeout (%(default)s)")
    add("--threads", type=int, default=cores, help="wrk threads (one per core)")
    add("--workers", type=int, default=cores, help="Gunicorn workers (one per core)")
    add("--cache", choices=("on", "off"), default="on", help="API_CACHE; on, as deployed")
    add("--label", default="overload")
    args = parser.parse_args(argv)
    started = datetime.now(UTC)
    catalogue = deployed_api.prepare_catalogue(args.database_url, say=print)
    facts = run_facts(args.database_url)
    spec = deployed_api.spec(
        args.database_url,
        GUNICORN_API_WORKERS=str(args.workers),
        API_CACHE="1" if args.cache == "on" else "0",
    )
    samples: list[dict[str, Any]] = []
    began = time.monotonic()

    def sample() -> None:
        workers = server.workers()
        samples.append(
            {
                "t_s": round(time.monotonic() - began, 1),
                "backends": deployed_api.backends(args.database_url),
                "server_connections": established(workers, spec.port),
                "worker_rss_mib": rss_mib(workers),
            }
        )

    def load(seconds: int) -> tuple[wrk.WrkResult, list[str]]:
        return wrk.load(spec.url(deployed_api.PATH), connections=args.connections,
                        duration=seconds, threads=args.threads, timeout=args.timeout)  # fmt: skip

    with ManagedServer(spec) as server:
        print(f"aioapi on port {spec.port} ({args.workers} workers); log {server.log_path}")
        verify.require(spec.port, [HttpRequest("GET", deployed_api.PATH)])
        load(args.warm_up)
        began = time.monotonic()
        with Every(SAMPLE_SECONDS, sample):
            result, wrk_argv = load(args.duration)
    non_2xx = sum(count for status, count in result.statuses.items() if not 200 <= status < 300)
    problems = result.problems() + ([f"{non_2xx} non-2xx"] if non_2xx else [])
    results = {
        "command": command_line("bench.overload", argv),
        "wrk_command": wrk_argv,
        "server_command": " ".join(spec.argv),
        "server_settings": dict(spec.settings),
        "options": vars(args),
        "catalogue": catalogue,
        "facts": ended(facts),
        "measured": {
            "requests": result.requests,
            "requests_per_s": round(result.requests_per_s, 1),
            "duration_s": result.duration_s,
            "errors": result.errors,
            "statuses": {str(k): v for k, v in sorted(result.statuses.items())},
            "non_2xx": non_2xx,
            "latency_ms": result.latency_ms,
        },
        "sampled": summary(samples),
        "samples": samples,
        "clean": not problems,
        "problems": "; ".join(problems),
    }
    publish(args.label, started, results, report(results))
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
