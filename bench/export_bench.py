"""``python -m bench.export_bench``: the streaming export of 100,000 and 1,000,000 films.

Per catalogue size (a database of ``generate_movies --count N --seed 1``), aioapi and
the Django comparison server, one at a time, serve ``/api/movies/export`` and
``/movies/export/`` to curl: time to first byte, total time, rows/s, bytes, and the
serving process's peak RSS (sampled every 10 ms); each download must end with its
format's completion mark for exactly N rows. See bench/EXPORT.md.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import psycopg

from bench import scaffold
from bench.monitor import MIB, PeakRss
from bench.scaffold import command_line, markdown_table, publish, run_facts
from bench.servers import ManagedServer, ServerSpec

COMPLETE_MARKS = {
    "ndjson": b'{"_trailer":{"complete":true,"rows":%d}}\n',
    "json": b"]",
    "csv": b"#complete,%d\r\n",
}


@dataclass
class Run:
    server: str
    films: int
    format: str
    sort: str
    attempt: int
    ttfb_s: float
    total_s: float
    rows_per_s: float
    bytes: int
    idle_rss_mb: float
    peak_rss_mb: float


TARGET_SECONDS = 5.0
TARGET_RSS_MB = 150.0


def summarise(runs: list[Run]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, int, str, str], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.server, run.films, run.format, run.sort), []).append(run)
    return [
        {
            "server": server,
            "films": films,
            "format": fmt,
            "sort": sort,
            "runs": len(group),
            "ttfb_s_median": round(statistics.median(r.ttfb_s for r in group), 4),
            "total_s_best": min(r.total_s for r in group),
            "total_s_median": round(statistics.median(r.total_s for r in group), 3),
            "rows_per_s_median": round(statistics.median(r.rows_per_s for r in group)),
            "bytes": group[0].bytes,
            "peak_rss_mb_max": max(r.peak_rss_mb for r in group),
            "idle_rss_mb": group[0].idle_rss_mb,
        }
        for (server, films, fmt, sort), group in groups.items()
    ]


def targets(summary: list[dict[str, Any]]) -> dict[str, Any]:
    def row(films: int) -> dict[str, Any] | None:
        for item in summary:
            key = (item["server"], item["films"], item["format"], item["sort"])
            if key == ("aioapi", films, "ndjson", "id"):
                return item
        return None

    million, small = row(1_000_000), row(100_000)
    result: dict[str, Any] = {}
    if million is not None:
        result["aioapi_1m_ndjson_median_s"] = million["total_s_median"]
        result["aioapi_1m_ndjson_under_5_s"] = million["total_s_median"] < TARGET_SECONDS
    aioapi_peaks = [item["peak_rss_mb_max"] for item in summary if item["server"] == "aioapi"]
    if aioapi_peaks:
        result["aioapi_peak_rss_mb"] = max(aioapi_peaks)
        result["aioapi_peak_rss_under_150_mb"] = max(aioapi_peaks) < TARGET_RSS_MB
    if million is not None and small is not None:
        result["aioapi_peak_rss_mb_100k_vs_1m"] = [
            small["peak_rss_mb_max"],
            million["peak_rss_mb_max"],
        ]
    return result


def report(document: dict[str, Any]) -> str:
    """report.md: one row per condition, the targets, the machine."""
    lines = [
        *scaffold.header("Streaming export benchmark", document),
        *markdown_table(
            ["server", "films", "format", "sort", "TTFB (s)", "total median (s)", "best (s)",
             "rows/s", "MB", "idle RSS (MB)", "peak RSS (MB)"],
            [
                [item["server"], f"{item['films']:,}", item["format"], item["sort"],
                 f"{item['ttfb_s_median']:.3f}", f"{item['total_s_median']:.2f}",
                 f"{item['total_s_best']:.2f}", f"{item['rows_per_s_median']:,}",
                 f"{item['bytes'] / MIB:.0f}", f"{item['idle_rss_mb']:.0f}",
                 f"{item['peak_rss_mb_max']:.0f}"]
                for item in document["summary"]
            ],
            ("left", "right", "left", "left", *["right"] * 7),
        ),
    ]  # fmt: skip
    lines += ["Targets (aioapi, NDJSON, id order):", ""]
    lines += [f"- {name}: {value}" for name, value in document["targets"].items()]
    # Results before the shared facts (bench/scaffold.py) recorded an "environment".
    facts = document.get("facts", document.get("environment"))
    lines += ["", f"Machine and software: `{json.dumps(facts)}`", ""]
    return "\n".join(lines)


def servers(port_base: int, env: dict[str, str]) -> list[ServerSpec]:
    """aioapi in one process, and Django under Gunicorn with one gthread worker."""
    python, django = sys.executable, port_base + 1
    api = (python, "-m", "aioapi", "--host", "127.0.0.1", "--port", str(port_base), "--uvloop")
    wsgi = (
        python, "-m", "gunicorn", "mymoviedb.wsgi:application", "--bind", f"127.0.0.1:{django}",
        "--worker-class", "gthread", "--workers", "1", "--threads", "4", "--timeout", "300",
        "--log-level", "warning", "--no-control-socket",
    )  # fmt: skip
    return [
        ServerSpec("aioapi", "aioapi", api, env, port_base, "/api/movies/export", None,
                   "/healthz", workers=0),
        ServerSpec("django", "Django", wsgi, env, django, "/movies/export/", None,
                   "/movies/?limit=1", workers=1),
    ]  # fmt: skip


def server_env(database_url: str) -> dict[str, str]:
    """The bench servers' environment, with a small pool: one download at a time."""
    return scaffold.server_env(database_url, pool_size=4, DB_POOL_MIN_SIZE="2")


def prepare_database(base_url: str, name: str, films: int) -> str:
    """Create, migrate and fill ``name`` with ``films`` synthetic films (idempotent)."""
    url = django_url(psycopg.conninfo.make_conninfo(base_url, dbname=name))
    env = {**server_env(url), "DEBUG": "1"}
    count = scaffold.synthetic_catalogue(url, films=films, seed=1, env=env)
    if count != films:
        raise SystemExit(f"{name} holds {count} films, not {films}: drop it and rerun.")
    return url


def django_url(conninfo: str) -> str:
    params = psycopg.conninfo.conninfo_to_dict(conninfo)
    user = params.get("user", "postgres")
    host = params.get("host", "127.0.0.1")
    port = params.get("port", 5432)
    return f"postgres://{user}@{host}:{port}/{params['dbname']}"


def download(url: str, target: Path) -> dict[str, Any]:
    """curl's own timings: time_starttransfer is the first byte of the response."""
    result = subprocess.run(
        ["curl", "--silent", "--show-error", "--fail", "--http1.1", "--output", str(target),
         "--write-out", "%{json}", "--header", "Accept-Encoding: identity", url],
        capture_output=True, check=True, text=True,
    )  # fmt: skip
    return dict(json.loads(result.stdout))


def check_complete(path: Path, fmt: str, films: int) -> None:
    """The download ends with its format's completion mark, for exactly ``films`` rows."""
    mark = COMPLETE_MARKS[fmt] % films if b"%d" in COMPLETE_MARKS[fmt] else COMPLETE_MARKS[fmt]
    with path.open("rb") as file:
        file.seek(max(0, path.stat().st_size - 256))
        tail = file.read()
    if not tail.endswith(mark):
        raise SystemExit(f"{path.name}: incomplete export, ends with {tail[-80:]!r}")
    if fmt == "json":
        rows = path.read_bytes().count(b'{"id":')
        if rows != films:
            raise SystemExit(f"{path.name}: {rows} films in the array, not {films}")


def measure(
    server: ServerSpec, process: psutil.Process, films: int, fmt: str, sort: str, attempt: int
) -> Run:
    url = server.url(f"{server.list_path}?format={fmt}&sort={sort}")
    target = Path("/dev/shm" if Path("/dev/shm").is_dir() else "/tmp") / f"export-bench.{fmt}"
    idle = process.memory_info().rss / MIB
    with PeakRss(lambda: [process], 0.01) as peak:
        timings = download(url, target)
    try:
        check_complete(target, fmt, films)
    finally:
        target.unlink(missing_ok=True)
    total = float(timings["time_total"])
    return Run(
        server=server.name,
        films=films,
        format=fmt,
        sort=sort,
        attempt=attempt,
        ttfb_s=round(float(timings["time_starttransfer"]), 4),
        total_s=round(total, 3),
        rows_per_s=round(films / total),
        bytes=int(timings["size_download"]),
        idle_rss_mb=round(idle, 1),
        peak_rss_mb=round(max(peak.total_mib, idle), 1),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.export_bench", description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--formats", nargs="+", default=["ndjson", "json", "csv"])
    parser.add_argument("--sorts", nargs="+", default=["id"], help="export sort keys to measure")
    parser.add_argument("--servers", nargs="+", default=["aioapi", "django"])
    parser.add_argument("--repeat", type=int, default=3, help="timed downloads per condition")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--database-prefix", default="mymoviedb_export")
    parser.add_argument("--port-base", type=int, default=21100)
    parser.add_argument("--label", default="export", help="suffix of the results directory")
    args = parser.parse_args(argv)

    # SIGTERM (timeout, kill) unwinds like Ctrl-C, so every server started is stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    started = datetime.now(UTC)
    facts = run_facts(args.database_url)
    runs: list[Run] = []
    for films in args.sizes:
        url = prepare_database(args.database_url, f"{args.database_prefix}_{films}", films)
        for server in servers(args.port_base, server_env(url)):
            if server.name not in args.servers:
                continue
            with ManagedServer(server) as running:
                process = running.serving()
                for fmt in args.formats:
                    for sort in args.sorts:
                        measure(server, process, films, fmt, sort, 0)  # warm the caches
                        for attempt in range(1, args.repeat + 1):
                            run = measure(server, process, films, fmt, sort, attempt)
                            print(json.dumps(asdict(run)), flush=True)
                            runs.append(run)

    summary = summarise(runs)
    document = {
        "command": command_line("bench.export_bench", argv),
        "facts": scaffold.ended(facts),
        "settings": {"repeat": args.repeat, "database_prefix": args.database_prefix},
        "runs": [asdict(run) for run in runs],
        "summary": summary,
        "targets": targets(summary),
    }
    publish(args.label, started, document, report(document))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
