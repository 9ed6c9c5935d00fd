"""One benchmark run: prepare the catalogue; per condition, round and server, one server
at a time: start it pinned, verify every scenario against the reference answers (first
round only), prime, warm up, measure each run, stop it; then check nothing is left."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from bench import catalogue, records, tasks, verify, wrk
from bench.catalogue import CatalogueSpec
from bench.monitor import RunMonitor, Usage
from bench.plan import DJANGO, SCENARIOS, WRITES, Plan, Run, condition_name, serves
from bench.records import Measured, Outcome
from bench.servers import ManagedServer, ServerOptions, ServerSpec, server_specs
from bench.workload import HttpRequest, Inputs, Workload, build

SETTLE_SECONDS, LEFTOVER_WAIT_SECONDS = 1.0, 15.0
DETAIL_SAMPLE, BUSIEST_SAMPLE, WRITE_SAMPLE = 500, 100, 50


def leaks(usage: Usage, bound_mib: float) -> list[str]:
    """A worker whose RSS grew past ``bound_mib`` over a run, or more backends at its end."""
    found = []
    if grown := {pid: mib for pid, mib in usage.rss_growth_mb.items() if mib > bound_mib}:
        found.append(f"worker RSS grew past {bound_mib:g} MiB: {grown}")
    if (ends := usage.pg_backends_start_end)[1] > ends[0]:
        found.append(f"database backends grew from {ends[0]} to {ends[1]}")
    return found


class BenchError(RuntimeError):
    """The bench cannot go on (the message says why)."""


@dataclass(frozen=True)
class BenchConfig:
    plan: Plan
    options: ServerOptions
    database_url: str
    catalogue: CatalogueSpec
    recreate_db: bool
    wrk_threads: int
    wrk_timeout: int
    seed: int


class Bench:
    """Runs a :class:`BenchConfig`; :meth:`stop_all` is safe to call at any time."""

    def __init__(self, config: BenchConfig, workdir: Path, say: Callable[[str], None]) -> None:
        self.config, self.workdir, self.say, self.outcome = config, workdir, say, Outcome()
        self.started: list[ManagedServer] = []
        self.database = catalogue.database_name(config.database_url)
        self.inputs = Inputs((), ())
        self._env: dict[str, str] = {}
        self._conn: psycopg.Connection[Any] | None = None
        self._run_number = 0
        # Workloads verified in a condition's first round, loaded again in later rounds.
        self._workloads: dict[tuple[float, str], dict[str, Workload]] = {}

    def execute(self) -> Outcome:
        """Prepare, measure every condition, clean up; raise on any fatal problem."""
        try:
            self.prepare()
            for latency in self.config.plan.conditions():
                self.condition(latency)
        finally:
            self.stop_all()
            self.finish()
        return self.outcome

    def prepare(self) -> None:
        config = self.config
        self._env = dict(server_specs(config.database_url, 0.0, config.options)[DJANGO].env)
        self.outcome.catalogue = catalogue.prepare(config.database_url, config.catalogue,
                                                   self._env, recreate=config.recreate_db,
                                                   say=self.say)  # fmt: skip
        conn = self._conn = psycopg.connect(config.database_url, autocommit=True)
        version, most = (
            catalogue.scalar(conn, q) for q in ("SELECT version()", "SHOW max_connections")
        )
        self.outcome.postgres = {"version": version, "max_connections": int(most)}
        if busy := catalogue.backends(conn, self.database):
            raise BenchError(f"{busy} other connection(s) to {self.database} are open; close them")
        detail = catalogue.sample_movie_ids(conn, DETAIL_SAMPLE, config.seed)
        # Writes never touch list 10's page, which the ceiling is compared on after them.
        page = conn.execute("SELECT id FROM movies_movie ORDER BY title, id LIMIT 101")
        first_page = tuple(int(row[0]) for row in page)
        writes = catalogue.sample_movie_ids(conn, WRITE_SAMPLE, config.seed + 1, exclude=first_page)
        token = None
        if set(WRITES) & set(config.plan.scenarios()):
            token = tasks.call(["issue-token", "bench write mix"], self._env)
        busiest = catalogue.busiest_movie_ids(conn, BUSIEST_SAMPLE, config.seed)
        self.inputs = Inputs(tuple(detail), tuple(writes), token, tuple(busiest))
        self.outcome.inputs = {"seed": config.seed, "detail_ids": detail, "write_ids": writes,
                               "busiest_ids": busiest}  # fmt: skip

    def condition(self, latency: float) -> None:
        specs = server_specs(self.config.database_url, latency, self.config.options)
        reference = verify.Reference()
        for round_number in range(1, self.config.plan.rounds + 1):
            for name in self.config.plan.server_order(latency, round_number):
                self.server(specs[name], latency, reference, round_number)

    def server(
        self, spec: ServerSpec, latency: float, reference: verify.Reference, round_number: int = 1
    ) -> None:
        plan, cpus = self.config.plan, self.config.options.cpus
        label = f"{condition_name(latency)} · {spec.name}"
        label += f" · round {round_number}/{plan.rounds}" if plan.rounds > 1 else ""
        self.say(f"{label}: starting")
        log = self.workdir / f"{spec.name}-{latency:g}ms-round{round_number}.log"
        server = ManagedServer(spec, cpus, log)
        self.started.append(server)
        server.start()
        server.wait_ready()
        # The server stated once, and the exact shell line of every start.
        entry = self.outcome.servers.setdefault(spec.name, records.server_record(spec, cpus))
        entry["starts"][condition_name(latency)] = records.start_line(spec, cpus)
        key = (latency, spec.name)
        if key not in self._workloads:  # the same server's answers need no second check
            self._workloads[key] = self.verify(spec, latency, reference)
        workloads = self._workloads[key]
        for kind, (connections, seconds) in (("primer", plan.primer), ("warm-up", plan.warmup)):
            self.say(f"{label}: {kind} ({connections} connections, {seconds} s)")
            run = Run(latency, spec.name, "list-10", connections, seconds)
            record = self.measure(server, run, workloads, round_number)
            self.outcome.warmups.append({"kind": kind, **record})
        for run in plan.runs_of(latency, spec.name):
            self._run_number += 1
            total = len(plan.runs) * plan.rounds
            self.say(f"run {self._run_number}/{total} · {label} · {run.scenario} · "
                           f"{run.connections} connections")  # fmt: skip
            self.outcome.runs.append(self.measure(server, run, workloads, round_number))
        server.stop()

    def verify(
        self, spec: ServerSpec, latency: float, reference: verify.Reference
    ) -> dict[str, Workload]:
        """Check every scenario this server can answer; return the workloads to load."""
        workloads: dict[str, Workload] = {}
        list_10 = HttpRequest("GET", f"{spec.list_path}?limit=10")
        etag = verify.fetch(spec.port, [list_10])[0].etag
        for name, scenario in SCENARIOS.items():
            if not serves(spec.name, name) or (name in WRITES and self.inputs.token is None):
                continue
            workload = build(name, spec, self.inputs, self.workdir, etag=etag)
            answers = verify.fetch(spec.port, workload.reads)
            checked = reference.check(name, spec.name, workload.reads, answers, scenario.expect,
                                      spec.verification)  # fmt: skip
            if workload.writes and spec.name in self.config.plan.writers(latency):
                patch = workload.writes[:1]
                answers = verify.fetch(spec.port, patch)
                if problems := verify.status_problems(spec.name, patch, answers, (200,)):
                    raise verify.VerificationError(problems[0])
                checked += "; PATCH answered 200"
            entry = {"server": spec.name, "scenario": name, "checked": checked}
            self.outcome.verification.append({"condition": condition_name(latency), **entry})
            workloads[name] = workload
        return workloads

    def measure(self, server: ManagedServer, run: Run, workloads: dict[str, Workload],
                round_number: int = 1) -> dict[str, Any]:  # fmt: skip
        """One wrk run with the monitor on; problems are shouted, never averaged away."""
        spec = server.spec
        workload = workloads[run.scenario]
        config = self.config
        command = wrk.wrk_command(spec.url(workload.url_path), SCENARIOS[run.scenario].script,
                                  connections=run.connections, threads=config.wrk_threads,
                                  duration=run.duration, timeout=config.wrk_timeout)  # fmt: skip
        time.sleep(SETTLE_SECONDS)
        with RunMonitor(server.processes, self._backends, self.database) as monitor:
            result, output, wrk_cpu = wrk.run(
                command, workload.env, timeout=run.duration + self.config.wrk_timeout + 60
            )
        usage = monitor.usage
        problems = result.problems()
        if usage.lost_processes:
            problems.append(f"server processes died during the run: {usage.lost_processes}")
        if self.config.plan.growth_mib is not None:  # a soak: nothing may leak
            problems += leaks(usage, self.config.plan.growth_mib)
        if problems:
            where = f" · round {round_number}" if self.config.plan.rounds > 1 else ""
            self.say(
                f"!!! {condition_name(run.latency_ms)} · {spec.name} · {run.scenario} · "
                f"{run.connections} connections{where}: " + "; ".join(problems)
            )
        measured = Measured(command, workload.env, result, output, wrk_cpu, usage, problems)
        return records.run_record(run, spec.name, measured, round_number)

    def _backends(self) -> int:
        return catalogue.backends(self._conn, self.database) if self._conn else 0

    def stop_all(self) -> None:
        """Stop every server this bench started (idempotent; also run at exit)."""
        for server in self.started:
            server.stop()

    def finish(self) -> None:
        """Revoke the token and check that nothing outlived the run."""
        if self.inputs.token is not None and self._env:
            try:
                tasks.call(["revoke-token", self.inputs.token], self._env)
            except RuntimeError as error:
                self.outcome.leftovers.append(f"the bench's API token is still active: {error}")
        for server in self.started:
            if server.leftovers():
                self.outcome.leftovers.append(f"{server.spec.name}: {server.leftovers()} survived")
        if self._conn is None:
            return
        deadline = time.monotonic() + LEFTOVER_WAIT_SECONDS
        while (left := self._backends()) and time.monotonic() < deadline:
            time.sleep(0.5)
        if left:
            self.outcome.leftovers.append(f"{left} connection(s) to {self.database} still open")
        self._conn.close()
        self._conn = None
