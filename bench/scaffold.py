"""The one way every bench command writes what it measured: a results folder
``bench/results/<UTC date>-<label>/`` (never written into twice) with the document as
JSON and its report as Markdown, the run's facts (date, commit, machine, versions)."""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil
import psycopg
from tabulate import tabulate

from bench.catalogue import database_name, scalar
from bench.servers import REPO
from bench.wrk import wrk_version

RESULTS = REPO / "bench" / "results"
PACKAGES = (
    "Django", "aiohttp", "channels", "asgiref", "psycopg", "psycopg-pool", "gunicorn",
    "uvloop", "orjson", "pydantic",
)  # fmt: skip
Row = Mapping[str, Any]
Column = tuple[str, Callable[[Row], str]]


def results_dir(label: str, started: datetime | None = None, base: Path = RESULTS) -> Path:
    """``<base>/<UTC date>-<label>/``, created; when it exists already (a committed
    result), the new one's name has the time of day too."""
    started = started or datetime.now(UTC)
    if (path := base / f"{started:%Y-%m-%d}-{label}").exists():
        path = base / f"{started:%Y-%m-%d-%H%M%S}-{label}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_results(directory: Path, results: Mapping[str, Any], report: str, *,
                  names: tuple[str, str] = ("results.json", "report.md")) -> None:  # fmt: skip
    """The document as JSON and its report as Markdown, under ``names``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / names[0]).write_text(json.dumps(results, indent=2, default=str) + "\n")
    (directory / names[1]).write_text(report)


def publish(label: str, started: datetime, document: Mapping[str, Any], report: str,
            base: Path = RESULTS) -> Path:  # fmt: skip
    """Write a run to its results folder, print the report and where it went."""
    directory = results_dir(label, started, base)
    write_results(directory, document, report)
    print(report)
    print(f"Written to {directory}/")
    return directory


def command_line(program: str, argv: Sequence[str] | None) -> str:
    """The command as typed, for the document and the report."""
    return shlex.join(["python", "-m", program, *(argv if argv is not None else sys.argv[1:])])


def header(title: str, document: Mapping[str, Any]) -> list[str]:
    """A side report's first lines: its title, when, the command, the commit, the load."""
    facts, machine = document.get("facts", {}), document.get("facts", {}).get("machine")
    lines = [f"# {title}", "", f"Date (UTC): {facts.get('date_utc', '?')}  ",
             f"Command: `{document.get('command', '?')}`  "]  # fmt: skip
    lines += [f"Commit: {facts['commit']}  "] if "commit" in facts else []
    lines += [f"Machine: {machine['cpu_model']}, {machine['cores']} cores; load average at "
              f"start {machine['load_average_at_start']}, at the end {facts.get('load_at_end')}"
              ] if machine else []  # fmt: skip
    return [*lines, ""]


def commit() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        return done.stdout.strip()

    dirty = git("status", "--porcelain", "--untracked-files=no")
    return git("rev-parse", "HEAD") + (" (with uncommitted changes)" if dirty else "")


def machine() -> dict[str, object]:
    """CPU, cores, memory, kernel, and how busy the machine was at the start."""
    models = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text()
              .splitlines() if line.startswith("model name")]  # fmt: skip
    return {"cpu_model": (models or [platform.processor() or "unknown"])[0],
            "cores": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "kernel": platform.release(), "os": platform.platform(),
            "load_average_at_start": load_average()}  # fmt: skip


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def versions(extra: Mapping[str, str]) -> dict[str, str]:
    """Python and the packages that serve requests, plus ``extra`` (PostgreSQL, wrk)."""
    found = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found | dict(extra)


def run_facts(database_url: str | None = None) -> dict[str, Any]:
    """Date, commit, database, machine and versions, recorded with every result: taken
    at the start (the machine's load then); :func:`ended` adds the load at the end."""
    extra = {"wrk": wrk_version()}
    if database_url is not None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            extra["postgresql"] = scalar(conn, "SELECT version()")
    return {"date_utc": datetime.now(UTC).isoformat(timespec="seconds"), "commit": commit(),
            "database": database_name(database_url) if database_url else None,
            "machine": machine(), "versions": versions(extra)}  # fmt: skip


def ended(facts: Mapping[str, Any]) -> dict[str, Any]:
    return {**facts, "load_at_end": load_average()}


def fmt(value: float | None, digits: int = 0, suffix: str = "") -> str:
    """A number for a table; an en dash when it was not measured."""
    return "–" if value is None else f"{value:,.{digits}f}{suffix}"


def markdown_table(
    headers: Sequence[str], rows: Iterable[Sequence[object]], align: Sequence[str] | None = None
) -> list[str]:
    """A GitHub Markdown table, then a blank line; cells as given (``0.80`` stays)."""
    text = tabulate(
        [[str(cell) for cell in row] for row in rows],
        headers=list(headers),
        tablefmt="github",
        disable_numparse=True,
        colalign=tuple(align) if align else None,
    )
    return [*text.splitlines(), ""]


def table(columns: Sequence[Column], rows: Iterable[Row]) -> list[str]:
    """A Markdown table: one column per (name, cell of a row)."""
    return markdown_table(
        [name for name, _ in columns], ([cell(row) for _, cell in columns] for row in rows)
    )


def size_name(films: int) -> str:
    """A catalogue size as the results name it: 900, 36k, 1M (rounded)."""
    if films < 1000:
        return str(films)
    return f"{round(films / 1e6)}M" if films >= 1e6 else f"{round(films / 1e3)}k"
