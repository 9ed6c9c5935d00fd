"""``python -m bench.cluster_capacity``: requests per API core through the local cluster.

For each ``--api`` count N it starts ``python -m deploy.cluster``'s topology with
N aioapi processes (one Gunicorn worker each, response cache off, so every
request reads a standby), loads ``--films`` synthetic films (bench.cluster_export's
``fill``), checks every URL answers 200 through nginx, then runs wrk over HTTPS
against nginx, one scenario after the other:

* ``list10``: ``GET /api/movies?limit=10``;
* ``detail``: ``GET /api/movies/<id>`` over 500 films with a cast.

Beside wrk's figures it records the API processes' CPU seconds (so req/s per
busy core), the peak of client backends on each PostgreSQL server and of
PgBouncer's server connections in use (``SHOW POOLS``: ``sv_active``), sampled
every 0.25 s. Results go to ``bench/results/<UTC date>-<label>/``; the
figures feed deploy/README.md's capacity table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil
import psycopg

from bench import wrk
from bench.catalogue import sample_movie_ids
from bench.cluster_export import fill
from bench.headline import table
from bench.monitor import RunMonitor
from bench.scaffold import commit, polling, publish
from deploy.cluster import DATABASE, LocalCluster, up

DETAIL_SAMPLE = 500
BACKENDS = (
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE datname = %s AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
)


@dataclass(frozen=True)
class CapacityRun:
    api_processes: int
    scenario: str
    connections: int
    requests_per_s: float
    p99_ms: float
    errors: list[str]
    api_cpu_s: float
    requests_per_api_core_s: float  # requests / API CPU seconds
    postgres_cpu_s: float
    machine_busy_s: float
    backends_max: dict[str, int]  # PostgreSQL server: peak client backends
    pgbouncer_server_connections_max: int  # sv_active + sv_used + sv_idle, at its peak
    pgbouncer_active_max: int  # sv_active


def api_processes(cluster: LocalCluster) -> Callable[[], list[psutil.Process]]:
    """Every API process and its worker, looked up afresh at each call."""
    masters = [server.process.pid for name, server in cluster.servers.items() if name[:4] == "api-"]

    def processes() -> list[psutil.Process]:
        found = []
        for pid in masters:
            master = psutil.Process(pid)
            found += [master, *master.children()]
        return found

    return processes


def pgbouncer_pools(cluster: LocalCluster) -> dict[str, int]:
    """``SHOW POOLS`` on PgBouncer's console (simple protocol only: psql), summed."""
    out = subprocess.run(
        [str(cluster.primary.bindir / "psql"), "-XqA", "-F", "\t", "-h", "127.0.0.1",
         "-p", str(cluster.ports["pgbouncer"]), "-U", "postgres", "-d", "pgbouncer",
         "-c", "SHOW POOLS"],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    header, rows = out[0].split("\t"), [line.split("\t") for line in out[1:] if "\t" in line]
    totals: dict[str, int] = {}
    for row in rows:
        for key, value in zip(header, row, strict=False):
            if key.startswith(("sv_", "cl_")) and value.isdigit():
                totals[key] = totals.get(key, 0) + int(value)
    return totals


@contextmanager
def connection_peaks(cluster: LocalCluster) -> Iterator[dict[str, int]]:
    """Peaks of client backends per PostgreSQL server and of PgBouncer's server
    connections during the block, sampled every 0.25 s."""
    peaks: dict[str, int] = {}
    servers = {"primary": cluster.primary, **cluster.standbys}

    def sample(connections: Mapping[str, psycopg.Connection[Any]]) -> None:
        for name, connection in connections.items():
            row = connection.execute(BACKENDS, (DATABASE,)).fetchone()
            peaks[name] = max(peaks.get(name, 0), int(row[0]) if row else 0)
        pools = pgbouncer_pools(cluster)
        used = sum(pools.get(key, 0) for key in ("sv_active", "sv_used", "sv_idle"))
        peaks["pgbouncer"] = max(peaks.get("pgbouncer", 0), used)
        peaks["pgbouncer_active"] = max(peaks.get("pgbouncer_active", 0), pools.get("sv_active", 0))

    with polling({name: s.url() for name, s in servers.items()}, 0.25, sample, "connection-peaks"):
        yield peaks


def verify(base: str, paths: list[str], cafile: Path) -> None:
    """Every path answers 200 through nginx before any load."""
    context = ssl.create_default_context(cafile=str(cafile))
    for path in paths:
        with urllib.request.urlopen(base + path, context=context, timeout=10) as response:
            if response.status != 200:
                raise SystemExit(f"{path}: {response.status}")


def measure(cluster: LocalCluster, films: int, args: argparse.Namespace) -> list[CapacityRun]:
    fill(cluster, films)
    with psycopg.connect(cluster.primary.url()) as conn:
        ids = sample_movie_ids(conn, DETAIL_SAMPLE, seed=1)
    base = f"https://localhost:{cluster.ports['nginx-https']}"
    paths = cluster.root / "detail.paths"  # deleted with the cluster
    paths.write_text("\n".join(f"/api/movies/{movie_id}" for movie_id in ids) + "\n")
    # wrk checks no certificate; by address, since it would try ::1 first for localhost.
    target = f"https://127.0.0.1:{cluster.ports['nginx-https']}"
    scenarios = {
        "list10": ("get.lua", f"{target}/api/movies?limit=10", {}),
        "detail": ("paths.lua", f"{target}/", {"BENCH_PATHS": str(paths)}),
    }
    verify(
        base,
        ["/api/movies?limit=10", *(f"/api/movies/{i}" for i in ids)],
        cluster.root / "cert.pem",
    )
    runs = []
    for scenario, (script, url, env) in scenarios.items():
        warm = wrk.wrk_command(url, script, connections=args.connections, threads=2,
                               duration=2, timeout=10)  # fmt: skip
        wrk.run(warm, env, timeout=60)
        command = wrk.wrk_command(url, script, connections=args.connections, threads=2,
                                  duration=args.duration, timeout=10)  # fmt: skip
        monitor = RunMonitor(api_processes(cluster), lambda: 0, DATABASE)
        with connection_peaks(cluster) as peaks, monitor:
            result, _, _ = wrk.run(command, env, timeout=args.duration + 60)
        usage = monitor.usage
        runs.append(
            CapacityRun(
                api_processes=len(cluster.api_ports),
                scenario=scenario,
                connections=args.connections,
                requests_per_s=round(result.requests_per_s),
                p99_ms=round(result.latency_ms["p99"], 1),
                errors=result.problems(),
                api_cpu_s=round(usage.cpu_seconds, 2),
                requests_per_api_core_s=round(result.requests / usage.cpu_seconds),
                postgres_cpu_s=round(usage.postgres_cpu_seconds, 2),
                machine_busy_s=round(usage.machine_busy_seconds, 2),
                backends_max={k: v for k, v in peaks.items() if k[:9] != "pgbouncer"},
                pgbouncer_server_connections_max=peaks.get("pgbouncer", 0),
                pgbouncer_active_max=peaks.get("pgbouncer_active", 0),
            )
        )
        print(asdict(runs[-1]), flush=True)
    return runs


def report(document: dict[str, Any]) -> str:
    columns = [
        ("API processes", lambda r: str(r["api_processes"])),
        ("scenario", lambda r: r["scenario"]),
        ("req/s", lambda r: f"{r['requests_per_s']:,}"),
        ("p99 (ms)", lambda r: f"{r['p99_ms']:.0f}"),
        ("errors", lambda r: "; ".join(r["errors"]) or "0"),
        ("API CPU (s)", lambda r: f"{r['api_cpu_s']:.1f}"),
        ("req per API CPU-s", lambda r: f"{r['requests_per_api_core_s']:,}"),
        ("PostgreSQL CPU (s)", lambda r: f"{r['postgres_cpu_s']:.1f}"),
        ("machine busy (s)", lambda r: f"{r['machine_busy_s']:.1f}"),
        ("backends (peak)", lambda r: ", ".join(f"{k} {v}" for k, v in r["backends_max"].items())),
        ("PgBouncer server conns (peak; active)",
         lambda r: f"{r['pgbouncer_server_connections_max']}; {r['pgbouncer_active_max']}"),
    ]  # fmt: skip
    return "\n".join(
        [
            "# Capacity through the local cluster",
            "",
            f"Date (UTC): {document['started_utc']}  ",
            f"Command: `{document['command']}`  ",
            f"Commit: {document['commit']}  ",
            f"Machine: {document['cores']} cores; wrk, nginx, PgBouncer, every API process and "
            "all three PostgreSQL servers share them.",
            "",
            *table(columns, document["runs"]),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.cluster_capacity", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--api", type=int, nargs="+", default=[1, 2], help="API process counts")
    parser.add_argument("--films", type=int, default=100_000, help="films (%(default)s)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--duration", type=int, default=10, help="seconds per run")
    parser.add_argument("--label", default="cluster-capacity", help="results directory suffix")
    args = parser.parse_args(argv)
    started = dt.datetime.now(dt.UTC)
    runs: list[CapacityRun] = []
    for count in args.api:
        cluster = up(api_processes=count, api_env={"API_CACHE": "0"})
        try:
            runs += measure(cluster, args.films, args)
        finally:
            cluster.stop()
    document = {
        "command": " ".join(["python -m bench.cluster_capacity", *(argv or sys.argv[1:])]),
        "started_utc": started.isoformat(timespec="seconds"),
        "commit": commit(),
        "cores": psutil.cpu_count(),
        "wrk": wrk.wrk_version(),
        "runs": [asdict(run) for run in runs],
    }
    publish(args.label, started, document, report(document))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
