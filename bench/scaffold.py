"""What every side script of the bench shares (budget, cache_bench, export_bench,
overload, soak): the servers' environment, the results folder and its facts,
and Markdown tables.

One home for each, so a server started by a side script runs with the same
production settings as ``python -m bench``'s (bench/servers.py's ``base_env``),
every result lands in ``bench/results/<UTC date>-<label>/`` beside the machine
and software it was measured on, and every table is drawn by one library.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from tabulate import tabulate

from bench.catalogue import database_name, ensure_database, manage, server_version
from bench.facts import machine, versions
from bench.servers import REPO, ServerOptions, base_env
from bench.wrk import wrk_version

RESULTS = REPO / "bench" / "results"
# Settings the deployed defaults (mymoviedb/settings.py) decide unless a script sets
# its own pool: the reliability scripts measure aioapi as deployed.
POOL_KEYS = ("DB_POOL", "DB_POOL_MIN_SIZE", "DB_POOL_MAX_SIZE")


def default_options() -> ServerOptions:
    """The server options of a default ``python -m bench`` run."""
    from bench import cli  # cli imports the whole driver: only when asked

    return cli.config_from(cli.parser().parse_args([])).options


def server_env(
    database_url: str, *, pool_size: int | None = None, **settings: str
) -> dict[str, str]:
    """The bench servers' environment (production mode, quiet logs, no simulated
    latency) for a server a side script starts, plus ``settings``.

    ``pool_size``: Django's psycopg pool of that fixed size; None leaves the pool to
    the deployed defaults.
    """
    options = dataclasses.replace(
        default_options(), pool_size=pool_size or 1, db_connections="pool"
    )
    env = base_env(database_url, 0.0, options)
    if pool_size is None:
        env = {key: value for key, value in env.items() if key not in POOL_KEYS}
    return env | {"PYTHONPATH": str(REPO), "API_ACCESS_LOG": "off"} | settings


def synthetic_catalogue(database_url: str, *, films: int, seed: int, env: Mapping[str, str]) -> int:
    """Create and migrate the database, and fill it with ``films`` synthetic films
    (``generate_movies``, then ``VACUUM ANALYZE``) unless it holds films already;
    return how many it holds."""
    ensure_database(database_url, recreate=False)
    manage(["migrate", "--no-input", "-v0"], env)
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM movies_movie").fetchone()
        if row is not None and row[0]:
            return int(row[0])
    manage(["generate_movies", "--count", str(films), "--seed", str(seed), "--quiet"], env)
    with psycopg.connect(database_url, autocommit=True) as conn:
        # A freshly loaded table has no visibility map yet: every index scan would
        # visit the heap until autovacuum gets to it. Measure the settled state.
        conn.execute("VACUUM ANALYZE")
    return films


@contextlib.contextmanager
def serving(
    name: str,
    argv: Sequence[str],
    env: Mapping[str, str],
    ready: Callable[[], bool],
    *,
    timeout: float = 60,
    stop_timeout: float = 30,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``argv`` in its own session, wait until ``ready()`` (connection errors
    count as not yet), yield the process; stop its whole group on the way out."""
    process = subprocess.Popen(list(argv), cwd=REPO, env=dict(env), start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise SystemExit(f"{name} exited with {process.returncode}")
            with contextlib.suppress(OSError):
                if ready():
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"{name} did not become ready within {timeout:g} s")
            time.sleep(0.2)
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=stop_timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextlib.contextmanager
def polling(
    urls: Mapping[str, str],
    every: float,
    poll: Callable[[Mapping[str, psycopg.Connection[Any]]], None],
    name: str,
) -> Iterator[None]:
    """Call ``poll`` with one autocommit connection per named URL every ``every``
    seconds, on a thread of its own, until the block ends (a sampler's loop)."""
    done = threading.Event()

    def run() -> None:
        with contextlib.ExitStack() as stack:
            connections = {
                key: stack.enter_context(psycopg.connect(url, autocommit=True))
                for key, url in urls.items()
            }
            while not done.wait(every):
                poll(connections)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=10)


def results_dir(label: str, started: datetime | None = None, base: Path = RESULTS) -> Path:
    """``<base>/<UTC date the run started (default: now)>-<label>/``, created; a
    folder of that name already there (a committed result) is never written into:
    the time of day is added to the new one's name."""
    started = started or datetime.now(UTC)
    path = base / f"{started:%Y-%m-%d}-{label}"
    if path.exists():
        path = base / f"{started:%Y-%m-%d-%H%M%S}-{label}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_results(
    directory: Path,
    results: Mapping[str, Any],
    report: str,
    *,
    names: tuple[str, str] = ("results.json", "report.md"),
) -> None:
    """The document as JSON and its report as Markdown, under ``names``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / names[0]).write_text(json.dumps(results, indent=2) + "\n")
    (directory / names[1]).write_text(report)


def publish(label: str, started: datetime, document: Mapping[str, Any], report: str) -> Path:
    """Write a side script's run to its results folder, print the report and where
    it went; the folder."""
    directory = results_dir(label, started)
    write_results(directory, document, report)
    print(report)
    print(f"Written to {directory.relative_to(REPO)}/")
    return directory


def commit() -> str:
    """The checked-out commit, short, for a result recorded without run_facts."""
    return _git("rev-parse", "--short", "HEAD")


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=REPO, capture_output=True, text=True, check=False
    ).stdout.strip()


def run_facts(database_url: str) -> dict[str, Any]:
    """Date, commit, database, machine and versions, recorded with every result."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        postgres = server_version(conn)
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "date_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _git("rev-parse", "HEAD") + (" (with uncommitted changes)" if dirty else ""),
        "database": database_name(database_url),
        "machine": machine(),
        "versions": versions({"postgresql": postgres, "wrk": wrk_version()}),
    }


def fmt(value: float | None, digits: int = 0, suffix: str = "") -> str:
    """A number for a table; an en dash when it was not measured."""
    if value is None:
        return "–"
    return f"{value:,.{digits}f}{suffix}"


def markdown_table(
    headers: Sequence[str], rows: Iterable[Sequence[object]], align: Sequence[str] | None = None
) -> list[str]:
    """A GitHub Markdown table, one line per item, then a blank line. Cells are
    shown as given (no number parsing: ``0.80`` stays ``0.80``)."""
    text = tabulate(
        [[str(cell) for cell in row] for row in rows],
        headers=list(headers),
        tablefmt="github",
        disable_numparse=True,
        colalign=tuple(align) if align else None,
    )
    return [*text.splitlines(), ""]
