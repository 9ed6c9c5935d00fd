"""What a server costs while it is loaded: CPU seconds before and after (its processes,
the database's backends, this driver, the whole machine: beyond those and wrk is foreign
work), and what a sampler thread reads meanwhile (peak RSS, PostgreSQL backends)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Self

import psutil

SAMPLE_SECONDS, MIB = 0.25, 1024 * 1024


class Every:
    """Calls ``sample()`` on a thread of its own, at once and then every ``seconds``,
    while the ``with`` block runs, and once more at its end."""

    def __init__(self, seconds: float, sample: Callable[[], object]) -> None:
        self._seconds, self._sample = seconds, sample
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self._sample()
            if self._stop.wait(self._seconds):
                self._sample()
                return


class PeakRss(Every):
    """The peak RSS (MiB) of ``processes()`` during the block, summed and of the
    busiest, sampled every ``seconds``; past ``bound_mib`` in total, ``over()`` once."""

    def __init__(self, processes: Callable[[], list[psutil.Process]], seconds: float = 0.05,
                 bound_mib: float = float("inf"),
                 over: Callable[[], None] = lambda: None) -> None:  # fmt: skip
        super().__init__(seconds, self._read)
        self._processes, self._bound, self._over = processes, bound_mib, over
        self.total_mib = self.busiest_mib = 0.0
        self.tripped = False

    def _read(self) -> None:
        sizes = list(rss_mib(self._processes()).values())
        self.total_mib, self.busiest_mib = (
            max(self.total_mib, sum(sizes)),
            max([self.busiest_mib, *sizes]),
        )
        if sum(sizes) > self._bound and not self.tripped:
            self.tripped = True
            self._over()


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += sum(process.cpu_times()[:2])  # user + system
    return total


def rss_mib(processes: list[psutil.Process]) -> dict[str, float]:
    """Resident memory of each process still alive, MiB, by pid."""
    found = {}
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            found[str(process.pid)] = round(process.memory_info().rss / MIB, 1)
    return found


def postgres_backends(database: str) -> list[psutil.Process]:
    """PostgreSQL backends serving ``database`` (their title names it)."""
    return [p for p in psutil.process_iter(["name", "cmdline"]) if p.info["name"] == "postgres"
            and f" {database} " in " ".join(p.info["cmdline"] or ())]  # fmt: skip


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all CPUs), stolen time included."""
    t = psutil.cpu_times()
    return float(t.user + t.nice + t.system + t.irq + t.softirq + t.steal)


@dataclass
class Usage:  # what one run cost the server (and PostgreSQL)
    cpu_seconds: float = 0.0
    postgres_cpu_seconds: float = 0.0  # the bench database's backends
    driver_cpu_seconds: float = 0.0
    machine_busy_seconds: float = 0.0  # every CPU, every process, steal included
    peak_rss_mb: dict[str, float] = field(default_factory=dict)  # "master 123": MiB
    pg_backends_max: int = 0
    lost_processes: list[int] = field(default_factory=list)
    rss_growth_mb: dict[str, float] = field(default_factory=dict)  # pid: end - start
    pg_backends_start_end: tuple[int, int] = (0, 0)


class RunMonitor:
    """Measures one server while one load runs (a context manager)."""

    def __init__(self, processes: Callable[[], list[psutil.Process]],
                 backends: Callable[[], int], database: str) -> None:  # fmt: skip
        self._processes, self._backends, self._database = processes, backends, database
        self._driver = psutil.Process()
        self._sampler = Every(SAMPLE_SECONDS, self._sample)
        self.usage = Usage()

    def __enter__(self) -> RunMonitor:
        self._cpu_before = {p.pid: (p, cpu_seconds([p])) for p in self._processes()}
        self._pg = postgres_backends(self._database)
        self._pg_before = cpu_seconds(self._pg)
        self._driver_before = cpu_seconds([self._driver])
        self._busy_before = machine_busy_seconds()
        self._rss_before = rss_mib(self._processes()[1:])
        self._backends_before = self._backends()
        self._sampler.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._sampler.__exit__()
        alive = {p.pid for p in self._processes()}
        self.usage.lost_processes = [pid for pid in self._cpu_before if pid not in alive]
        # A process that died mid-run took its CPU time with it (and the run is
        # flagged): count the survivors.
        self.usage.cpu_seconds = sum(cpu_seconds([process]) - before for pid, (process, before)
                                     in self._cpu_before.items() if pid in alive)  # fmt: skip
        # Backends that connected during the run (a thread's first query) spent all
        # their CPU in it.
        known = {p.pid for p in self._pg}
        new = [p for p in postgres_backends(self._database) if p.pid not in known]
        self.usage.postgres_cpu_seconds = cpu_seconds(self._pg + new) - self._pg_before
        self.usage.driver_cpu_seconds = cpu_seconds([self._driver]) - self._driver_before
        self.usage.machine_busy_seconds = machine_busy_seconds() - self._busy_before
        after, before = rss_mib(self._processes()[1:]), self._rss_before
        self.usage.rss_growth_mb = {pid: round(after[pid] - mib, 1)
                                    for pid, mib in before.items() if pid in after}  # fmt: skip
        self.usage.pg_backends_start_end = (self._backends_before, self._backends())

    def _sample(self) -> None:
        for index, process in enumerate(self._processes()):
            role = "master" if index == 0 else "worker"
            for pid, mib in rss_mib([process]).items():
                key = f"{role} {pid}"
                self.usage.peak_rss_mb[key] = max(self.usage.peak_rss_mb.get(key, 0.0), mib)
        self.usage.pg_backends_max = max(self.usage.pg_backends_max, self._backends())
