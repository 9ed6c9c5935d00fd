"""Measuring one contender's way of serving N films: a fresh server per size, its
RSS watched, the time and memory bounds turned into results.

Each (way, size) gets its own server start (through bench.servers, pinned with
taskset), one small warm-up request, then the measured fetch while a thread
samples the RSS of every process of the server (Gunicorn's master and workers)
every 50 ms. A fresh server per size keeps one size's peak from carrying into
the next (CPython rarely gives memory back to the OS). Past the memory bound the
sampler kills the server's process group; past the time bound the client hangs
up. Either is the size's result, and the larger sizes are not tried.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import psutil

from bench.big_pages_client import (
    Client,
    Fetched,
    ServerGone,
    TimedOut,
    export_rows,
    one_page,
    walk_pages,
)
from bench.servers import ManagedServer, ServerError, ServerSpec

MIB = 1024 * 1024
SAMPLE_SECONDS = 0.05
WARMUP_FILMS = 100
WARMUP_SECONDS = 60.0
OK, TIMED_OUT, OVER_MEMORY, SKIPPED = "ok", "timed out", "over the memory bound", "not tried"
Kind = Literal["export", "pages", "page"]


@dataclass(frozen=True)
class Way:
    """A contender's natural path to N films: which server, how, from which URL."""

    server: str
    path: str  # the row's name: "export", "pages", "one page"
    kind: Kind
    url: str  # export: its path; pages: the first page (with its limit); page: the list
    # Appended to ``url`` for the warm-up. An export's warm-up reads a small export
    # whole: one abandoned mid-stream could still hold the process's export slot
    # (EXPORT_MAX_CONCURRENT, 1 by default) when the measured request arrives.
    warmup_query: str = ""

    def fetch(self, client: Client, films: int) -> Fetched:
        if self.kind == "export":
            return export_rows(client, self.url, films)
        if self.kind == "pages":
            return walk_pages(client, self.url, films)
        return one_page(client, self.url, films)


@dataclass(frozen=True)
class Bounds:
    """What a contender may take for one size before that is its result."""

    seconds: float
    memory_mib: float


class RssWatch:
    """Samples the RSS of ``processes()`` every SAMPLE_SECONDS; past ``bound_mib`` in
    total it calls ``kill`` once. Keeps the peak of the total and of the busiest."""

    def __init__(
        self,
        processes: Callable[[], list[psutil.Process]],
        bound_mib: float,
        kill: Callable[[], None],
    ) -> None:
        self._processes = processes
        self._bound = bound_mib
        self._kill = kill
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="big-pages-rss", daemon=True)
        self.peak_total_mib = self.peak_process_mib = 0.0
        self.tripped = False

    def __enter__(self) -> RssWatch:
        self._sample()  # at once: a server already over the bound is never measured
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS) and not self.tripped:
            self._sample()

    def _sample(self) -> None:
        sizes = []
        for process in self._processes():
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                sizes.append(process.memory_info().rss / MIB)
        self.peak_total_mib = max(self.peak_total_mib, sum(sizes))
        self.peak_process_mib = max([self.peak_process_mib, *sizes])
        if sum(sizes) > self._bound and not self.tripped:
            self.tripped = True
            self._kill()


def kill_group(server: ManagedServer) -> Callable[[], None]:
    """SIGKILL the server's whole process group (from the sampler's thread: the main
    thread still reads, and sees the connection break)."""

    def kill() -> None:
        if server.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.process.pid, signal.SIGKILL)
            # Gone before the client's next read: a kill is never mistaken for an answer.
            server.process.wait(10)

    return kill


def rss_mib(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += process.memory_info().rss / MIB
    return total


def measure(
    way: Way, spec: ServerSpec, films: int, bounds: Bounds, cpus: tuple[int, ...], log: Path
) -> dict[str, Any]:
    """One size through one way, on a server started for it; always a result row."""
    row: dict[str, Any] = {"server": way.server, "path": way.path, "size": films}
    server = ManagedServer(spec, cpus, log)
    try:
        server.start()
        server.wait_ready()
        warmup = dataclasses.replace(way, url=way.url + way.warmup_query)
        with Client(spec.port, time.monotonic() + WARMUP_SECONDS) as client:
            warmup.fetch(client, min(films, WARMUP_FILMS))
        row["idle_rss_mib"] = round(rss_mib(server.processes()), 1)
        watch = RssWatch(server.processes, bounds.memory_mib, kill_group(server))
        with watch, Client(spec.port, time.monotonic() + bounds.seconds) as client:
            try:
                row.update(status=OK, **vars(way.fetch(client, films)))
            except TimedOut:
                row.update(status=TIMED_OUT, seconds=bounds.seconds)
            except ServerGone as error:
                row["status"] = f"error: {error}"
        if watch.tripped:  # whatever the client saw, the server went past the bound
            row["status"] = OVER_MEMORY
        row["peak_rss_mib"] = round(watch.peak_total_mib, 1)
        row["peak_rss_busiest_mib"] = round(watch.peak_process_mib, 1)
    except (ServerError, ServerGone, TimedOut) as error:  # start-up or warm-up failed
        row["status"] = f"error: {error!r}"[:2000]
    finally:
        server.stop()
    if row["status"] == OK and row["films"] != films:
        row["status"] = f"error: the server gave {row['films']} films, not {films}"
    return row


def run_way(
    way: Way,
    spec: ServerSpec,
    sizes: list[int],
    bounds: Bounds,
    cpus: tuple[int, ...],
    log: Path,
    say: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Every size in ascending order; after a size fails, the larger are not tried."""
    rows: list[dict[str, Any]] = []
    failed: dict[str, Any] | None = None
    for films in sorted(sizes):
        if failed is not None:
            reason = f"{SKIPPED}: {failed['status']} at {failed['size']:,} films"
            rows.append({"server": way.server, "path": way.path, "size": films, "status": reason})
        else:
            rows.append(measure(way, spec, films, bounds, cpus, log))
            if rows[-1]["status"] != OK:
                failed = rows[-1]
        say(describe(rows[-1]))
    return rows


def describe(row: dict[str, Any]) -> str:
    """One progress line."""
    head = f"{row['server']:>12} {row['path']:<9} {row['size']:>9,} films: "
    if row["status"] != OK:
        return head + row["status"]
    return head + (
        f"{row['seconds']:.2f} s, {row['bytes'] / MIB:,.1f} MiB in {row['requests']:,}"
        f" request(s), peak RSS {row['peak_rss_mib']:,.0f} MiB"
        f" (busiest process {row['peak_rss_busiest_mib']:,.0f})"
    )
