"""Resource use while wrk runs: server CPU seconds, peak RSS, PostgreSQL backends,
and how much CPU the rest of the machine took meanwhile.

CPU is read before and after the run: over the server's process tree, over the
PostgreSQL backends of the bench database, over this driver, and for the whole
machine; what the machine spent beyond those (and wrk) is foreign work that
makes the run noisy. RSS and the number of backends connected to the bench
database are sampled from a background thread, and their peaks are kept.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

import psutil

SAMPLE_SECONDS = 0.25
MIB = 1024 * 1024


@dataclass
class Usage:
    """What one run cost the server (and PostgreSQL)."""

    cpu_seconds: float = 0.0
    postgres_cpu_seconds: float = 0.0  # the bench database's backends
    driver_cpu_seconds: float = 0.0
    machine_busy_seconds: float = 0.0  # every CPU, every process, steal included
    peak_rss_mb: dict[str, float] = field(default_factory=dict)  # "master 123": MiB
    pg_backends_max: int = 0
    lost_processes: list[int] = field(default_factory=list)


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def postgres_backends(database: str) -> list[psutil.Process]:
    """PostgreSQL backends serving ``database`` (their title names it)."""
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        title = " ".join(process.info["cmdline"] or ())
        if process.info["name"] == "postgres" and f" {database} " in title:
            found.append(process)
    return found


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all CPUs), stolen time included."""
    t = psutil.cpu_times()
    return float(t.user + t.nice + t.system + t.irq + t.softirq + t.steal)


class RunMonitor:
    """Context manager measuring one server while one wrk run is in progress."""

    def __init__(
        self,
        processes: Callable[[], list[psutil.Process]],
        backends: Callable[[], int],
        database: str,
    ) -> None:
        self._processes = processes
        self._backends = backends
        self._database = database
        self._driver = psutil.Process()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="bench-monitor", daemon=True)
        self.usage = Usage()
        self._cpu_before: dict[int, tuple[psutil.Process, float]] = {}
        self._pg: list[psutil.Process] = []
        self._pg_before = self._driver_before = self._busy_before = 0.0

    def __enter__(self) -> RunMonitor:
        self._cpu_before = {p.pid: (p, cpu_seconds([p])) for p in self._processes()}
        self._pg = postgres_backends(self._database)
        self._pg_before = cpu_seconds(self._pg)
        self._driver_before = cpu_seconds([self._driver])
        self._busy_before = machine_busy_seconds()
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        alive = {p.pid for p in self._processes()}
        self.usage.lost_processes = [pid for pid in self._cpu_before if pid not in alive]
        # A process that died mid-run took its CPU time with it (and the run is
        # flagged): count the survivors.
        self.usage.cpu_seconds = sum(
            cpu_seconds([process]) - before
            for pid, (process, before) in self._cpu_before.items()
            if pid in alive
        )
        # Backends that connected during the run (a thread's first query) spent all
        # their CPU in it.
        known = {p.pid for p in self._pg}
        new = [p for p in postgres_backends(self._database) if p.pid not in known]
        self.usage.postgres_cpu_seconds = cpu_seconds(self._pg + new) - self._pg_before
        self.usage.driver_cpu_seconds = cpu_seconds([self._driver]) - self._driver_before
        self.usage.machine_busy_seconds = machine_busy_seconds() - self._busy_before

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._sample_once()
            self._stop.wait(SAMPLE_SECONDS)
        self._sample_once()

    def _sample_once(self) -> None:
        for index, process in enumerate(self._processes()):
            role = "master" if index == 0 else "worker"
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                key = f"{role} {process.pid}"
                rss = process.memory_info().rss / MIB
                self.usage.peak_rss_mb[key] = max(self.usage.peak_rss_mb.get(key, 0.0), rss)
        self.usage.pg_backends_max = max(self.usage.pg_backends_max, self._backends())
