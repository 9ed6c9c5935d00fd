"""``python -m bench.export_bench``: the streaming export of 100,000 and 1,000,000 films.

For each catalogue size it prepares a PostgreSQL database (``generate_movies
--count N --seed 1``, then ``VACUUM ANALYZE``), starts aioapi and the Django
comparison server on it one at a time, and downloads ``/api/movies/export`` and
``/movies/export/`` with curl, recording time to first byte, total time, rows/s,
bytes, and the peak RSS of the serving process (psutil, sampled every 10 ms).
Each download is checked: it must end with its format's completion mark for
exactly N rows. Results go to ``bench/results/<UTC date>-export/`` as
results.json and report.md. See bench/EXPORT.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil
import psycopg

from bench import scaffold
from bench.export_report import MIB, report, summarise, targets
from bench.scaffold import publish, run_facts

REPO = Path(__file__).resolve().parent.parent
COMPLETE_MARKS = {
    "ndjson": b'{"_trailer":{"complete":true,"rows":%d}}\n',
    "json": b"]",
    "csv": b"#complete,%d\r\n",
}


@dataclass(frozen=True)
class Server:
    name: str
    port: int
    path: str
    ready_path: str
    argv: tuple[str, ...]


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


def servers(port_base: int) -> list[Server]:
    python = sys.executable
    return [
        Server(
            "aioapi",
            port_base,
            "/api/movies/export",
            "/healthz",
            (python, "-m", "aioapi", "--host", "127.0.0.1", "--port", str(port_base), "--uvloop"),
        ),
        Server(
            "django",
            port_base + 1,
            "/movies/export/",
            "/movies/?limit=1",
            (
                python, "-m", "gunicorn", "mymoviedb.wsgi:application",
                "--bind", f"127.0.0.1:{port_base + 1}", "--worker-class", "gthread",
                "--workers", "1", "--threads", "4", "--timeout", "300",
                "--log-level", "warning", "--no-control-socket",
            ),
        ),
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


@contextlib.contextmanager
def running(server: Server, env: dict[str, str]) -> Iterator[psutil.Process]:
    """Start ``server``; yield the process that serves requests."""
    url = f"http://127.0.0.1:{server.port}{server.ready_path}"

    def ready() -> bool:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)

    with scaffold.serving(
        server.name, server.argv, env, ready, timeout=30, stop_timeout=15
    ) as process:
        parent = psutil.Process(process.pid)
        children = parent.children()
        yield children[0] if children else parent  # Gunicorn: its one worker


class PeakRss(threading.Thread):
    """Samples a process's resident set every ``interval`` seconds; keeps the peak."""

    def __init__(self, process: psutil.Process, interval: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.process = process
        self.interval = interval
        self.peak = 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            self._done.wait(self.interval)

    def stop(self) -> int:
        self._done.set()
        self.join()
        return self.peak


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
    server: Server, process: psutil.Process, films: int, fmt: str, sort: str, attempt: int
) -> Run:
    url = f"http://127.0.0.1:{server.port}{server.path}?format={fmt}&sort={sort}"
    target = Path("/dev/shm" if Path("/dev/shm").is_dir() else "/tmp") / f"export-bench.{fmt}"
    idle = process.memory_info().rss
    sampler = PeakRss(process)
    sampler.start()
    try:
        timings = download(url, target)
    finally:
        peak = sampler.stop()
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
        idle_rss_mb=round(idle / MIB, 1),
        peak_rss_mb=round(max(peak, idle) / MIB, 1),
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
    started = dt.datetime.now(dt.UTC)
    load_start = [round(value, 2) for value in os.getloadavg()]
    runs: list[Run] = []
    for films in args.sizes:
        url = prepare_database(args.database_url, f"{args.database_prefix}_{films}", films)
        for server in servers(args.port_base):
            if server.name not in args.servers:
                continue
            with running(server, server_env(url)) as process:
                for fmt in args.formats:
                    for sort in args.sorts:
                        measure(server, process, films, fmt, sort, 0)  # warm the caches
                        for attempt in range(1, args.repeat + 1):
                            run = measure(server, process, films, fmt, sort, attempt)
                            print(json.dumps(asdict(run)), flush=True)
                            runs.append(run)

    summary = summarise(runs)
    document = {
        "command": " ".join(["python -m bench.export_bench", *(argv or sys.argv[1:])]),
        "started_utc": started.isoformat(timespec="seconds"),
        "load_average": {"start": load_start, "end": [round(v, 2) for v in os.getloadavg()]},
        "facts": run_facts(args.database_url),
        "settings": {"repeat": args.repeat, "database_prefix": args.database_prefix},
        "runs": [asdict(run) for run in runs],
        "summary": summary,
        "targets": targets(summary),
    }
    publish(args.label, started, document, report(document))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
