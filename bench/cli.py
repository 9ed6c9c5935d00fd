"""``python -m bench``: the command line, and what happens around a run (signals,
clean-up at exit, the results document, the exit status)."""

from __future__ import annotations

import argparse
import atexit
import os
import shlex
import shutil
import signal
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import plan as plans
from bench import report, servers, summary, wrk
from bench.catalogue import DEFAULT_DATABASE_URL, CatalogueError, CatalogueSpec, database_name
from bench.runner import Bench, BenchConfig, BenchError, Outcome
from bench.scaffold import RESULTS, load_average, machine, results_dir, table, versions
from bench.servers import SHARED_CATALOGUE, ServerError, ServerOptions, server_specs
from bench.verify import VerificationError

# Options that narrow the plan: a run with any of them is not a full run (LATEST.md).
NARROWING = ("scenarios", "servers", "conditions", "connections", "duration")


def _list(kind: type) -> Any:
    # argparse turns a ValueError here into "invalid ... value: 'x'" with the option's name.
    return lambda text: [kind(part) for part in text.split(",") if part.strip()]


def parser() -> argparse.ArgumentParser:
    defaults = servers.default_options()
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Django under Gunicorn (WSGI, ASGI, a DRF API) against aioapi, fairly, "
        "with wrk. See bench/README.md.",
    )
    add = p.add_argument
    add("--plan", choices=plans.PLANS, default="default",
        help="default; quick: list 10 and the ceilings, under 5 minutes; overload: 1,000 "
        "connections on aioapi as deployed; soak: ten minutes of mixed load on it, its RSS "
        "and backends flat")  # fmt: skip
    add("--quick", action="store_true", help="= --plan quick")
    add("--rounds", type=int, default=1, help="each server's block N times per condition")
    add("--label", help="results folder suffix (default: the plan's name)")
    add("--scenarios", type=_list(str), help=f"only these ({', '.join(plans.SCENARIOS)})")
    add("--servers", type=_list(str), help=f"only these ({', '.join(plans.SERVERS)})")
    add("--conditions", type=_list(float), help="only these simulated latencies in ms, e.g. 0,10")
    add("--duration", type=int, help="seconds per measured run (overrides the plan)")
    add("--connections", type=_list(int), help="connection counts of every run")
    add("--dry-run", action="store_true", help="print the plan and the commands, run nothing")
    db = p.add_argument_group("database and catalogue").add_argument
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    db("--database-url", default=url, help="env BENCH_DATABASE_URL (%(default)s)")
    db("--recreate-db", action="store_true", help="drop and recreate it first (never otherwise)")
    db("--source", default=str(SHARED_CATALOGUE), help="catalogue file to import (%(default)s)")
    db("--synthetic", type=int, default=50_000, help="synthetic films added (%(default)s)")
    db("--seed", type=int, default=42, help="seed of the synthetic films and of the samples")
    srv = p.add_argument_group("servers (the same for all)").add_argument
    srv("--cpus", type=lambda t: tuple(_list(int)(t)), default=defaults.cpus, help="(%(default)s)")
    srv("--workers", type=int, help="Gunicorn workers of each (default: one per CPU)")
    srv("--django-threads", type=int, default=defaults.django_threads, help="(%(default)s)")
    srv("--api-db-threads", type=int, default=defaults.api_db_threads, help="(%(default)s)")
    srv("--api-db-max-pending", type=int, default=defaults.api_db_max_pending)
    srv("--api-cache", action="store_true", help="aioapi with its response cache on")
    srv("--db-connections", choices=("pool", "persistent"), default=defaults.db_connections)
    srv("--pool-size", type=int, help="DB pool per worker (default: the larger thread count)")
    srv("--keep-alive", type=int, default=defaults.keepalive, help="seconds (%(default)s)")
    srv("--port-base", type=int, default=defaults.port_base, help="first of six ports")
    load = p.add_argument_group("load").add_argument
    load("--wrk-threads", type=int, default=2, help="(%(default)s)")
    load("--timeout", type=int, default=10, help="wrk's per-request timeout, s (%(default)s)")
    load("--allow-errors", action="store_true", help="exit 0 even if runs had errors")
    load("--results-dir", type=Path, default=RESULTS, help="(%(default)s)")
    return p


def config_from(args: argparse.Namespace) -> BenchConfig:
    plan = plans.build_plan(
        "quick" if args.quick else args.plan, scenarios=args.scenarios, servers=args.servers,
        conditions=args.conditions, duration=args.duration, connections=args.connections,
        rounds=args.rounds,
    )  # fmt: skip
    threads = max(args.django_threads, args.api_db_threads)
    options = ServerOptions(
        args.cpus, args.workers or len(args.cpus), args.django_threads, args.api_db_threads,
        args.api_db_max_pending, args.api_cache, args.pool_size or threads,
        args.keep_alive, "127.0.0.1", args.port_base, args.db_connections,
    )  # fmt: skip
    catalogue = CatalogueSpec(args.source, args.synthetic, args.seed)
    return BenchConfig(plan, options, args.database_url, catalogue, args.recreate_db,
                       args.wrk_threads, args.timeout, args.seed)  # fmt: skip


def print_plan(config: BenchConfig, say: Any) -> None:
    plan = config.plan
    say(f"plan '{plan.name}': {len(plan.runs)} measured runs × {plan.rounds} round(s), about "
        f"{plan.estimate_seconds() / 60:.1f} minutes (not counting an import)")  # fmt: skip
    for latency in plan.conditions():
        for server in plan.servers(latency):
            cells = ", ".join(
                f"{r.scenario}@{r.connections}" for r in plan.runs_of(latency, server)
            )
            say(f"  {plans.condition_name(latency)} · {server}: {cells}")
    for spec in server_specs(config.database_url, 0.0, config.options).values():
        if spec.name in {run.server for run in plan.runs}:
            say(f"  {spec.name}: {shlex.join(spec.command(config.options.cpus))}")


def narrowed(args: argparse.Namespace) -> bool:
    """Whether the command line narrowed its plan (then it is not a full run)."""
    return any(getattr(args, name) for name in NARROWING)


def document(args: argparse.Namespace, argv: list[str], config: BenchConfig, outcome: Outcome,
             started: datetime, facts: dict[str, object]) -> dict[str, Any]:  # fmt: skip
    catalogue = config.catalogue
    doc: dict[str, Any] = {
        "schema": 2,  # 2: every run has its "round"
        "label": args.label or config.plan.name, "plan": config.plan.name,
        "full": not narrowed(args),  # the whole plan: what bench/results/LATEST.md points to
        "rounds": config.plan.rounds, "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": shlex.join(["python", "-m", "bench", *argv]), "machine": facts,
        "versions": versions({"PostgreSQL": outcome.postgres.get("version", "?"),
                              "wrk": wrk.wrk_version()}),
        "database": {"name": database_name(config.database_url),
                     "max_connections": outcome.postgres.get("max_connections")},
        "catalogue": outcome.catalogue,
        "catalogue_source": {"source": catalogue.source, "synthetic": catalogue.synthetic,
                             "seed": catalogue.seed},  # fmt: skip
        "scenarios": {name: s.summary for name, s in plans.SCENARIOS.items()},
        "servers": outcome.servers,
        "wrk": {"threads": config.wrk_threads, "timeout_s": config.wrk_timeout,
                "primer": list(config.plan.primer), "warmup": list(config.plan.warmup)},
        "inputs": outcome.inputs, "verification": outcome.verification, "runs": outcome.runs,
        "warmups": outcome.warmups, "leftovers": outcome.leftovers,
        "load_average_at_end": load_average(),
    }  # fmt: skip
    doc["targets"] = summary.targets(doc)
    return doc


def after_full_run(doc: dict[str, Any], results: Path, say: Any) -> None:
    """Point bench/results/LATEST.md at this run when it was a full one."""
    if report.is_full(doc):
        say(f"latest full run: {report.write_latest(results)}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    say = print
    try:
        config = config_from(args)
    except ValueError as error:
        parser().error(str(error))
    print_plan(config, say)
    if args.dry_run:
        return 0
    if missing := [tool for tool in ("wrk", "taskset") if shutil.which(tool) is None]:
        say(f"bench stopped: not installed: {', '.join(missing)} (apt-get install wrk util-linux)")
        return 1
    if (load := os.getloadavg()[0]) > report.BUSY_LOAD:
        say(f"!!! the machine is busy (load average {load:.1f}): numbers will be noisy")
    started, facts = datetime.now(UTC), machine()
    # SIGTERM and SIGHUP unwind as Ctrl-C does, stopping every server on the way.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.default_int_handler)
    with tempfile.TemporaryDirectory(prefix="mymoviedb-bench-") as workdir:
        bench = Bench(config, Path(workdir), say)
        atexit.register(bench.stop_all)
        try:
            outcome = bench.execute()
        except KeyboardInterrupt:
            say("interrupted: every server stopped; nothing written")
            return 130
        except (BenchError, CatalogueError, ServerError) as error:
            say(f"bench stopped: {error}")
            return 1
        except VerificationError as error:
            say(f"!!! VERIFICATION FAILED: the servers answer differently; no load sent.\n{error}")
            return 2
    doc = document(args, argv, config, outcome, started, facts)
    outdir = results_dir(doc["label"], started, base=args.results_dir)
    report.write(doc, outdir)
    say("\n".join(["", *summary.answer(doc), *table(report.TARGETS, doc["targets"])]))
    for leftover in doc["leftovers"]:
        say(f"!!! left behind: {leftover}")
    say(f"results: {outdir}/report.md")
    after_full_run(doc, args.results_dir, say)
    flagged = any(r["problems"] for r in doc["runs"])
    return 1 if doc["leftovers"] or (flagged and not args.allow_errors) else 0
