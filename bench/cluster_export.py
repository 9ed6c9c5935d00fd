"""``python -m bench.cluster_export``: an export's memory through the local cluster.

In ``python -m deploy.cluster``'s topology with ``--films`` synthetic films (replayed by
both standbys), ``/api/movies/export?format=ndjson`` is downloaded from two API
processes of one worker each, whose peak RSS is sampled every 10 ms: ``replicas`` (the
cluster's own, reading the standbys) and ``pgbouncer`` (no replicas: PgBouncer in
transaction mode). Every 20 ms each PostgreSQL server is asked for a backend running
``DECLARE`` or ``FETCH`` (a server-side cursor streaming the rows).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import psycopg

from bench.export_bench import check_complete, download
from bench.monitor import MIB, Every, PeakRss
from bench.scaffold import command_line, ended, header, publish, run_facts, table
from deploy.cluster import DATABASE, LocalCluster, up
from deploy.postgres import Cluster
from deploy.processes import Server, django_environment, manage

# A backend streaming from a server-side cursor shows one of these as its query.
CURSOR_QUERY = "SELECT count(*) FROM pg_stat_activity WHERE query ~ '^(DECLARE|FETCH)'"


@dataclass(frozen=True)
class ExportRun:
    api: str  # "replicas" or "pgbouncer"
    films: int
    total_s: float
    idle_rss_mb: float
    peak_rss_mb: float
    cursor_seen_on: list[str]  # the cluster's servers that showed DECLARE/FETCH


def fill(cluster: LocalCluster, films: int) -> None:
    """``films`` synthetic films on the primary, vacuumed, replayed by both standbys."""
    env = django_environment(cluster.primary.url(), cluster.root)
    manage(env, "generate_movies", "--count", str(films), "--seed", "1", "--quiet")
    cluster.primary.psql("VACUUM ANALYZE")
    [[target]] = cluster.primary.psql("SELECT pg_current_wal_lsn()")
    for standby in cluster.standbys.values():
        # Polled from here: a waiting query on a standby would be cancelled by the
        # replay of the vacuum (a conflict with recovery).
        replayed = f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn"
        while standby.psql(replayed) != [["t"]]:
            time.sleep(0.2)


def worker(server: Server) -> psutil.Process:
    """The one Gunicorn worker of an API process: it serves the requests."""
    [child] = psutil.Process(server.process.pid).children()
    return child


@contextmanager
def cursor_watch(servers: dict[str, Cluster]) -> Iterator[set[str]]:
    """The names of the ``servers`` seen running a server-side cursor during the block."""
    seen: set[str] = set()
    with ExitStack() as stack:
        connections = {
            name: stack.enter_context(psycopg.connect(server.url(), autocommit=True))
            for name, server in servers.items()
        }

        def watch() -> None:
            for name, connection in connections.items():
                row = connection.execute(CURSOR_QUERY).fetchone()
                if row and row[0]:
                    seen.add(name)

        with Every(0.02, watch):
            yield seen


def measure(cluster: LocalCluster, api: str, server: Server, films: int) -> ExportRun:
    process = worker(server)
    target = Path("/dev/shm" if Path("/dev/shm").is_dir() else "/tmp") / "cluster-export.ndjson"
    idle = process.memory_info().rss / MIB
    servers = {"primary": cluster.primary, **cluster.standbys}
    with PeakRss(lambda: [process], 0.01) as peak, cursor_watch(servers) as seen:
        timings = download(f"{server.base}/api/movies/export?format=ndjson", target)
    try:
        check_complete(target, "ndjson", films)
    finally:
        target.unlink(missing_ok=True)
    return ExportRun(
        api=api,
        films=films,
        total_s=round(float(timings["time_total"]), 2),
        idle_rss_mb=round(idle, 1),
        peak_rss_mb=round(max(peak.total_mib, idle), 1),
        cursor_seen_on=sorted(seen),
    )


def run(films: int, repeat: int) -> list[ExportRun]:
    cluster = up(api_processes=1)
    try:
        fill(cluster, films)
        [[count]] = cluster.primary.psql("SELECT count(*) FROM movies_movie")
        apis = {
            "replicas": cluster.servers["api-0"],
            "pgbouncer": cluster.start_api("api-pgbouncer", DATABASE_REPLICA_URLS=""),
        }
        runs = []
        for api, server in apis.items():
            measure(cluster, api, server, int(count))  # warms the database's caches
            for _ in range(repeat):
                runs.append(measure(cluster, api, server, int(count)))
                print(json.dumps(asdict(runs[-1])), flush=True)
        return runs
    finally:
        cluster.stop()


def report(document: dict[str, Any]) -> str:
    columns = [
        ("API process", lambda r: r["api"]),
        ("films", lambda r: f"{r['films']:,}"),
        ("total (s)", lambda r: f"{r['total_s']:.2f}"),
        ("idle RSS (MB)", lambda r: f"{r['idle_rss_mb']:.0f}"),
        ("peak RSS (MB)", lambda r: f"{r['peak_rss_mb']:.0f}"),
        ("server-side cursor seen on", lambda r: ", ".join(r["cursor_seen_on"]) or "none"),
    ]
    return "\n".join([*header("An export through the local cluster", document),
                      *table(columns, document["runs"])])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.cluster_export", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--films", type=int, default=200_000, help="films (%(default)s)")
    parser.add_argument("--repeat", type=int, default=2, help="downloads per API (%(default)s)")
    parser.add_argument("--label", default="cluster-export", help="results directory suffix")
    args = parser.parse_args(argv)
    started, facts = datetime.now(UTC), run_facts()
    runs = run(args.films, args.repeat)
    document = {
        "command": command_line("bench.cluster_export", argv),
        "facts": ended(facts),
        "database": DATABASE,
        "runs": [asdict(run) for run in runs],
    }
    publish(args.label, started, document, report(document))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
