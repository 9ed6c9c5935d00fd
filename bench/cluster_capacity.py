"""``python -m bench.cluster_capacity``: requests per API core through the local cluster.

For each ``--api`` count N, ``python -m deploy.cluster``'s topology with N aioapi
processes (one worker each, cache off: every request reads a standby) and ``--films``
synthetic films; every URL is checked through nginx, then wrk loads list 10 and the
detail of 500 films over HTTPS, while the API processes' CPU and the peaks of client
backends per PostgreSQL server and of PgBouncer's server connections are sampled.
"""

from __future__ import annotations

import argparse
import ssl
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import psycopg

from bench import wrk
from bench.catalogue import sample_movie_ids
from bench.cluster_export import fill
from bench.monitor import Every, RunMonitor
from bench.scaffold import command_line, ended, header, publish, run_facts, table
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

    def sample() -> None:
        for name, connection in connections.items():
            row = connection.execute(BACKENDS, (DATABASE,)).fetchone()
            peaks[name] = max(peaks.get(name, 0), int(row[0]) if row else 0)
        pools = pgbouncer_pools(cluster)
        used = sum(pools.get(key, 0) for key in ("sv_active", "sv_used", "sv_idle"))
        peaks["pgbouncer"] = max(peaks.get("pgbouncer", 0), used)
        peaks["pgbouncer_active"] = max(peaks.get("pgbouncer_active", 0), pools.get("sv_active", 0))

    with ExitStack() as stack:
        connections = {
            name: stack.enter_context(psycopg.connect(server.url(), autocommit=True))
            for name, server in servers.items()
        }
        with Every(0.25, sample):
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
        wrk.load(url, script, connections=args.connections, duration=2, env=env)
        monitor = RunMonitor(api_processes(cluster), lambda: 0, DATABASE)
        with connection_peaks(cluster) as peaks, monitor:
            result, _ = wrk.load(
                url, script, connections=args.connections, duration=args.duration, env=env
            )
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
    shared = ("wrk, nginx, PgBouncer, every API process and all three PostgreSQL servers "
              "share the machine's cores.")  # fmt: skip
    return "\n".join([*header("Capacity through the local cluster", document), shared, "",
                      *table(columns, document["runs"])])  # fmt: skip


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
    started, facts = datetime.now(UTC), run_facts()
    runs: list[CapacityRun] = []
    for count in args.api:
        cluster = up(api_processes=count, api_env={"API_CACHE": "0"})
        try:
            runs += measure(cluster, args.films, args)
        finally:
            cluster.stop()
    document = {
        "command": command_line("bench.cluster_capacity", argv),
        "facts": ended(facts),
        "runs": [asdict(run) for run in runs],
    }
    publish(args.label, started, document, report(document))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
