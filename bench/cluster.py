"""``python -m bench.cluster capacity``: req/s per API core through the local cluster
(``python -m deploy.cluster``'s topology, ``--films`` synthetic films on both standbys).
Per ``--api`` count N, N aioapi processes (one worker, cache off), every URL checked
through nginx, then wrk loads list 10 and 500 details over HTTPS while the API's CPU and
the peaks of backends per server and of PgBouncer's connections are sampled."""

from __future__ import annotations

import argparse
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from functools import partial
from typing import Any

import psutil
import psycopg

from bench import wrk
from bench.catalogue import sample_movie_ids
from bench.monitor import Every, RunMonitor
from bench.scaffold import command_line, ended, header, markdown_table, publish, run_facts
from deploy.cluster import DATABASE, LocalCluster, up
from deploy.processes import django_environment, manage

BACKENDS = ("SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
            " AND backend_type = 'client backend' AND pid <> pg_backend_pid()")  # fmt: skip


def fill(cluster: LocalCluster, films: int) -> None:
    """``films`` synthetic films on the primary, vacuumed, replayed by both standbys."""
    env = django_environment(cluster.primary.url(), cluster.root)
    manage(env, "generate_movies", "--count", str(films), "--seed", "1", "--quiet")
    cluster.primary.psql("VACUUM ANALYZE")
    [[target]] = cluster.primary.psql("SELECT pg_current_wal_lsn()")
    for standby in cluster.standbys.values():
        # Polled from here: a waiting query on a standby would be cancelled by the
        # replay of the vacuum (a conflict with recovery).
        while standby.psql(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn") != [["t"]]:
            time.sleep(0.2)


@contextmanager
def sampled(cluster: LocalCluster, sample: Callable[[str, psycopg.Connection[Any]], None],
            seconds: float) -> Iterator[None]:  # fmt: skip
    """``sample(name, connection)`` for every PostgreSQL server, every ``seconds``."""
    servers = {"primary": cluster.primary, **cluster.standbys}
    with ExitStack() as stack:
        connections = {
            name: stack.enter_context(psycopg.connect(server.url(), autocommit=True))
            for name, server in servers.items()
        }

        def every() -> None:
            for name, connection in connections.items():
                sample(name, connection)

        with Every(seconds, every):
            yield


def pgbouncer_pools(cluster: LocalCluster) -> dict[str, int]:
    """``SHOW POOLS`` on PgBouncer's console (simple protocol only: psql), summed."""
    out = subprocess.run(
        [str(cluster.primary.bindir / "psql"), "-XqA", "-F", "\t", "-h", "127.0.0.1",
         "-p", str(cluster.ports["pgbouncer"]), "-U", "postgres", "-d", "pgbouncer",
         "-c", "SHOW POOLS"],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    names, totals = out[0].split("\t"), dict[str, int]()
    for row in (line.split("\t") for line in out[1:] if "\t" in line):
        for name, value in zip(names, row, strict=False):
            if name.startswith(("sv_", "cl_")) and value.isdigit():
                totals[name] = totals.get(name, 0) + int(value)
    return totals


def _peaks(cluster: LocalCluster, peaks: dict[str, int], name: str,
           connection: psycopg.Connection[Any]) -> None:  # fmt: skip
    """Peaks of client backends per PostgreSQL server and of PgBouncer's server connections."""
    row = connection.execute(BACKENDS, (DATABASE,)).fetchone()
    peaks[name] = max(peaks.get(name, 0), int(row[0]) if row else 0)
    if name == "primary":
        pools = pgbouncer_pools(cluster)
        used = sum(pools.get(k, 0) for k in ("sv_active", "sv_used", "sv_idle"))
        peaks["pgbouncer"] = max(peaks.get("pgbouncer", 0), used)
        active = pools.get("sv_active", 0)
        peaks["pgbouncer_active"] = max(peaks.get("pgbouncer_active", 0), active)


def capacity(cluster: LocalCluster, args: argparse.Namespace) -> list[dict[str, Any]]:
    fill(cluster, args.films)
    with psycopg.connect(cluster.primary.url()) as conn:
        ids = sample_movie_ids(conn, 500, seed=1)
    paths = cluster.root / "detail.paths"  # deleted with the cluster
    paths.write_text("\n".join(f"/api/movies/{movie_id}" for movie_id in ids) + "\n")
    context = ssl.create_default_context(cafile=str(cluster.root / "cert.pem"))
    base = f"https://localhost:{cluster.ports['nginx-https']}"
    for path in ["/api/movies?limit=10", *(f"/api/movies/{i}" for i in ids)]:
        with urllib.request.urlopen(base + path, context=context, timeout=10) as response:
            if response.status != 200:  # every path answers through nginx before any load
                raise SystemExit(f"{path}: {response.status}")
    # wrk checks no certificate; by address, since it would try ::1 first for localhost.
    target = f"https://127.0.0.1:{cluster.ports['nginx-https']}"
    masters = [s.process.pid for name, s in cluster.servers.items() if name[:4] == "api-"]

    def api_processes() -> list[psutil.Process]:
        return [p for m in map(psutil.Process, masters) for p in (m, *m.children())]

    runs = []
    for scenario, script, url, env in (("list10", "get.lua", f"{target}/api/movies?limit=10", {}),
                                       ("detail", "paths.lua", f"{target}/",
                                        {"BENCH_PATHS": str(paths)})):  # fmt: skip
        wrk.load(url, script, connections=args.connections, duration=2, env=env)
        peaks: dict[str, int] = {}
        monitor = RunMonitor(api_processes, lambda: 0, DATABASE)
        with sampled(cluster, partial(_peaks, cluster, peaks), 0.25), monitor:
            result = wrk.load(url, script, connections=args.connections, duration=args.duration,
                          env=env)  # fmt: skip
        usage = monitor.usage
        runs.append({
            "api_processes": len(cluster.api_ports), "scenario": scenario,
            "connections": args.connections, "requests_per_s": round(result.requests_per_s),
            "p99_ms": round(result.latency_ms["p99"], 1), "errors": result.problems(),
            "api_cpu_s": round(usage.cpu_seconds, 2),
            "requests_per_api_core_s": round(result.requests / usage.cpu_seconds),
            "postgres_cpu_s": round(usage.postgres_cpu_seconds, 2),
            "machine_busy_s": round(usage.machine_busy_seconds, 2),
            "backends_max": {k: v for k, v in peaks.items() if k[:9] != "pgbouncer"},
            "pgbouncer_server_connections_max": peaks.get("pgbouncer", 0),
            "pgbouncer_active_max": peaks.get("pgbouncer_active", 0),
        })  # fmt: skip
        print(runs[-1], flush=True)
    return runs


HEADERS = ["API processes", "scenario", "req/s", "p99 (ms)", "errors", "API CPU (s)",
           "req per API CPU-s", "PostgreSQL CPU (s)", "machine busy (s)", "backends (peak)",
           "PgBouncer server conns (peak; active)"]  # fmt: skip


def report(document: dict[str, Any]) -> str:
    rows = [[r["api_processes"], r["scenario"], f"{r['requests_per_s']:,}", f"{r['p99_ms']:.0f}",
             "; ".join(r["errors"]) or "0", f"{r['api_cpu_s']:.1f}",
             f"{r['requests_per_api_core_s']:,}", f"{r['postgres_cpu_s']:.1f}",
             f"{r['machine_busy_s']:.1f}",
             ", ".join(f"{k} {v}" for k, v in r["backends_max"].items()),
             f"{r['pgbouncer_server_connections_max']}; {r['pgbouncer_active_max']}"]
            for r in document["runs"]]  # fmt: skip
    return "\n".join([*header("Capacity through the local cluster", document),
                      "wrk, nginx, PgBouncer, every API process and all three PostgreSQL "
                      "servers share the machine's cores.", "",
                      *markdown_table(HEADERS, rows)])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__)
    add = parser.add_argument
    add("kind", choices=["capacity"])
    add("--films", type=int, default=100_000, help="(%(default)s)")
    add("--api", type=int, nargs="+", default=[1, 2], help="API process counts")
    add("--connections", type=int, default=64, help="wrk connections")
    add("--duration", type=int, default=10, help="seconds per run")
    add("--label", default="cluster-capacity", help="results directory suffix (%(default)s)")
    args = parser.parse_args(argv)
    started, facts = datetime.now(UTC), run_facts()
    runs: list[dict[str, Any]] = []
    for count in args.api:
        cluster = up(api_processes=count, api_env={"API_CACHE": "0"})
        try:
            runs += capacity(cluster, args)
        finally:
            cluster.stop()
    document = {"command": command_line("bench.cluster", argv), "facts": ended(facts),
                "database": DATABASE, "runs": runs}  # fmt: skip
    publish(args.label, started, document, report(document))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
