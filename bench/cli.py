"""``python -m bench``: the command line, and what happens around a run (signals,
clean-up at exit, writing the results, the exit status)."""

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
from types import FrameType
from typing import Any

from bench import report, summary, wrk
from bench.catalogue import DEFAULT_DATABASE_URL, CatalogueError, CatalogueSpec, database_name
from bench.plan import (
    PRIMER,
    QUICK_PRIMER,
    QUICK_WARMUP,
    SCENARIOS,
    SERVERS,
    WARMUP,
    build_plan,
    condition_name,
    default_rows,
    issue3_rows,
    lean_rows,
    quick_rows,
    sync_rows,
)
from bench.runner import Bench, BenchConfig, BenchError, Outcome
from bench.scaffold import RESULTS, fmt, machine, results_dir, versions
from bench.servers import SHARED_CATALOGUE, ServerError, ServerOptions, server_specs
from bench.verify import VerificationError

PLANS = ("default", "quick", "issue3", "lean")
# What bench runs aioapi with (aioapi/settings.py defaults to 8 threads), for results.json.
API_DB_THREADS = 16
API_DB_MAX_PENDING = 2048


class Stopped(Exception):
    """SIGTERM or SIGHUP arrived: unwind, stopping every server on the way."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


def parser() -> argparse.ArgumentParser:
    cpus = tuple(sorted(os.sched_getaffinity(0)))
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Compare Django under Gunicorn (WSGI, ASGI, a DRF API) with aioapi, "
        "fairly, with wrk. "
        "See bench/README.md.",
    )
    add = p.add_argument
    add(
        "--quick", action="store_true", help="list 10 at 64 and 400 connections, loopback and 10 ms"
    )
    add(
        "--plan",
        choices=PLANS,
        help="the matrix: default, quick (= --quick), issue3 (list 10 at 64 and 400 "
        "connections, loopback and 10 ms, 10 s a run; for --rounds), lean (list 10 and "
        "detail at 64/400 on loopback and 400 with 10 ms, raw-pool list 10; for --rounds)",
    )
    add(
        "--rounds",
        type=_positive,
        default=1,
        help="run every server's block this many times per condition, alternating the "
        "servers' order; reports the medians and the spread (%(default)s)",
    )
    add("--label", help="results folder suffix (default: the plan's name)")
    add("--scenarios", type=_words, help=f"only these scenarios ({', '.join(SCENARIOS)})")
    add("--servers", type=_words, help=f"only these servers ({', '.join(SERVERS)})")
    add("--conditions", type=_floats, help="only these simulated latencies in ms, e.g. 0,10")
    add("--duration", type=int, help="seconds per measured run (overrides the plan)")
    add("--connections", type=_ints, help="connection counts of every run (overrides the plan)")
    add(
        "--with-django-sync",
        action="store_true",
        help="add list 10 on classic sync Django (2 x cores + 1 workers) at 64 and 400",
    )
    add("--dry-run", action="store_true", help="print the plan and the commands, run nothing")

    db = p.add_argument_group("database and catalogue").add_argument
    db(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="the bench's own database; env BENCH_DATABASE_URL (default %(default)s)",
    )
    db("--recreate-db", action="store_true", help="drop and recreate it first (never otherwise)")
    db("--source", default=str(SHARED_CATALOGUE), help="catalogue file to import (%(default)s)")
    db("--synthetic", type=int, default=50_000, help="synthetic films added (%(default)s; 0: none)")
    db("--seed", type=int, default=42, help="seed of the synthetic films and of the samples")

    srv = p.add_argument_group("servers (the same for both)").add_argument
    srv(
        "--cpus",
        type=lambda text: tuple(_ints(text)),
        default=cpus,
        help="CPUs every server is pinned to (default: all, %(default)s)",
    )
    srv("--workers", type=int, help="Gunicorn workers of each server (default: one per CPU)")
    srv("--django-threads", type=int, default=16, help="gthread threads per worker (%(default)s)")
    srv(
        "--api-db-threads",
        type=int,
        default=API_DB_THREADS,
        help="aioapi's ORM bridge threads per worker, API_DB_THREADS (%(default)s)",
    )
    srv("--api-db-max-pending", type=int, default=API_DB_MAX_PENDING, help="API_DB_MAX_PENDING")
    srv(
        "--api-db-funnel",
        action="store_true",
        help="aioapi with one ORM thread per process (API_DB_THREADS=1): what threads buy",
    )
    srv(
        "--api-cache",
        action="store_true",
        help="aioapi with its response cache on (API_CACHE=1; off by default: Django has none)",
    )
    srv(
        "--db-connections",
        choices=("pool", "persistent"),
        default="persistent",
        help="on both servers: a connection per thread kept open (DB_POOL=0, aioapi's "
        "deployed policy) or Django's pool, a checkout per request (%(default)s)",
    )
    srv("--pool-size", type=int, help="DB pool per worker (default: the larger thread count)")
    srv("--keep-alive", type=int, default=75, help="keep-alive seconds (%(default)s)")
    srv("--port-base", type=int, default=20100, help="first of six ports (%(default)s)")

    load = p.add_argument_group("load").add_argument
    load("--wrk-threads", type=int, default=2, help="(%(default)s)")
    load("--timeout", type=int, default=10, help="wrk's per-request timeout, s (%(default)s)")
    load("--allow-errors", action="store_true", help="exit 0 even if runs had errors")
    load("--results-dir", type=Path, default=RESULTS, help="(%(default)s)")
    return p


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def _words(text: str) -> list[str]:
    return [word for word in text.split(",") if word]


# argparse turns a ValueError here into "invalid ... value: 'x'" with the option's name.
def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def _floats(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part.strip()]


def config_from(args: argparse.Namespace) -> BenchConfig:
    name = args.plan or ("quick" if args.quick else "default")
    if args.quick and name != "quick":
        raise ValueError(f"--quick and --plan {name} contradict each other")
    quick = name == "quick"
    if name == "issue3":
        rows = issue3_rows(with_django_sync=args.with_django_sync)
    elif name == "lean":
        rows = lean_rows()
    else:
        rows = quick_rows() if quick else default_rows()
        if args.with_django_sync:
            rows = (*rows, *sync_rows())
    plan = build_plan(
        name,
        rows,
        scenarios=args.scenarios,
        servers=args.servers,
        conditions=args.conditions,
        duration=args.duration,
        connections=args.connections,
        primer=QUICK_PRIMER if quick else PRIMER,
        warmup=QUICK_WARMUP if quick else WARMUP,
        rounds=args.rounds,
    )
    threads = max(args.django_threads, args.api_db_threads)
    options = ServerOptions(
        cpus=args.cpus,
        workers=args.workers or len(args.cpus),
        django_threads=args.django_threads,
        api_db_threads=args.api_db_threads,
        api_db_max_pending=args.api_db_max_pending,
        api_db_funnel=args.api_db_funnel,
        api_cache=args.api_cache,
        pool_size=args.pool_size or threads,
        keepalive=args.keep_alive,
        host="127.0.0.1",
        port_base=args.port_base,
        db_connections=args.db_connections,
    )
    return BenchConfig(
        plan=plan,
        options=options,
        database_url=args.database_url,
        catalogue=CatalogueSpec(args.source, args.synthetic, args.seed),
        recreate_db=args.recreate_db,
        wrk_threads=args.wrk_threads,
        wrk_timeout=args.timeout,
        seed=args.seed,
    )


def preflight(config: BenchConfig) -> None:
    missing = [tool for tool in ("wrk", "taskset") if shutil.which(tool) is None]
    if missing:
        raise BenchError(
            f"not installed: {', '.join(missing)} (Debian: apt-get install wrk util-linux)"
        )
    allowed = os.sched_getaffinity(0)
    if not set(config.options.cpus) <= allowed:
        raise BenchError(f"--cpus {config.options.cpus} not all available ({sorted(allowed)})")


def print_plan(config: BenchConfig, say: Any) -> None:
    plan = config.plan
    count = f"{len(plan.runs)} measured runs"
    if plan.rounds > 1:
        count += f" × {plan.rounds} rounds (servers' order reversed every other round)"
    say(
        f"plan '{plan.name}': {count}, about "
        f"{plan.estimate_seconds() / 60:.1f} minutes (catalogue import not included)"
    )
    for latency in plan.conditions():
        for server in plan.servers(latency):
            runs = plan.runs_of(latency, server)
            cells = ", ".join(f"{r.scenario}@{r.connections}" for r in runs)
            say(f"  {condition_name(latency)} · {server}: {cells}")
    planned = {run.server for run in plan.runs}
    for spec in server_specs(config.database_url, 0.0, config.options).values():
        if spec.name in planned:
            say(f"  {spec.name}: {shlex.join(spec.command(config.options.cpus))}")


# Options that narrow the plan: a run with any of them is not a full run.
NARROWING = ("scenarios", "servers", "conditions", "connections", "duration")


def narrowed(args: argparse.Namespace) -> bool:
    """Whether the command line narrowed its plan (then it is not a full run)."""
    return any(getattr(args, name) for name in NARROWING)


def document(
    args: argparse.Namespace,
    argv: list[str],
    config: BenchConfig,
    outcome: Outcome,
    started: datetime,
    machine: dict[str, object],
) -> dict[str, Any]:
    with_db = {"PostgreSQL": outcome.postgres.get("version", "?"), "wrk": wrk.wrk_version()}
    doc: dict[str, Any] = {
        # 2: every run has its "round" and the document its "rounds"; 1 had neither.
        "schema": 2,
        "label": args.label or config.plan.name,
        "plan": config.plan.name,
        # The whole plan, nothing narrowed: what bench/results/LATEST.md points to.
        "full": not narrowed(args),
        "rounds": config.plan.rounds,
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": shlex.join(["python", "-m", "bench", *argv]),
        "machine": machine,
        "versions": versions(with_db),
        "fairness": list(summary.FAIRNESS),
        "database": {
            "name": database_name(config.database_url),
            "max_connections": outcome.postgres.get("max_connections"),
        },
        "catalogue": outcome.catalogue,
        "catalogue_source": {
            "source": config.catalogue.source,
            "synthetic": config.catalogue.synthetic,
            "seed": config.catalogue.seed,
        },
        "scenarios": {name: s.summary for name, s in SCENARIOS.items()},
        "servers": outcome.servers,
        "wrk": {
            "threads": config.wrk_threads,
            "timeout_s": config.wrk_timeout,
            "primer": list(config.plan.primer),
            "warmup": list(config.plan.warmup),
        },
        "inputs": outcome.inputs,
        "verification": outcome.verification,
        "runs": outcome.runs,
        "warmups": outcome.warmups,
        "leftovers": outcome.leftovers,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }
    doc["headline"] = summary.headline(doc)
    doc["targets"] = summary.targets(doc)
    return doc


def summarise(doc: dict[str, Any], outdir: Path, say: Any) -> None:
    """The headline and the targets on the console."""
    say("")
    medians = "medians of the rounds: " if any("round_ratios" in h for h in doc["headline"]) else ""
    for h in doc["headline"]:
        rounds = f" (per round {report.ROUND_RATIOS[1](h)})" if "round_ratios" in h else ""
        say(
            f"list 10 · {h['condition']} · {h['connections']} connections: {medians}"
            f"Django {fmt(h['django_rps'])} req/s (p99 {fmt(h['django_p99_ms'], 1)} ms), "
            f"aioapi {fmt(h['aioapi_rps'])} req/s (p99 {fmt(h['aioapi_p99_ms'], 1)} ms), "
            f"aioapi/Django {fmt(h['aioapi_over_django'], 2)}{rounds}; ceilings: raw pool "
            f"{fmt(h['raw_pool_rps'])}, constant {fmt(h['constant_rps'])} req/s"
        )
    for t in doc["targets"]:
        verdict = {True: "met", False: "MISSED", None: "not measured"}[t["met"]]
        issue = f"issue {t['issue']}" if t.get("issue") else "every issue"
        say(f"target ({issue}): {t['target']} {t['goal']}: {fmt(t['measured'], 2)} → {verdict}")
    flagged = [r for r in doc["runs"] if r["problems"]]
    if flagged:
        say(f"!!! {len(flagged)} run(s) had errors: see the top of report.md")
    for leftover in doc["leftovers"]:
        say(f"!!! left behind: {leftover}")
    say(f"results: {outdir}/report.md")


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
    load = os.getloadavg()[0]
    if load > report.BUSY_LOAD:
        say(
            f"!!! the machine is busy (load average {load:.1f} over the last minute): other "
            "processes compete with the servers for the same cores; numbers will be noisy"
        )
    started, facts = datetime.now(UTC), machine()
    with tempfile.TemporaryDirectory(prefix="mymoviedb-bench-") as workdir:
        bench = Bench(config, Path(workdir), say)
        atexit.register(bench.stop_all)

        def on_signal(signum: int, frame: FrameType | None) -> None:
            raise Stopped(signum)

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGHUP, on_signal)
        try:
            preflight(config)
            outcome = bench.execute()
        except KeyboardInterrupt:
            say("interrupted: every server stopped; nothing written")
            return 130
        except Stopped as stop:
            say(f"stopped by signal {stop.signum}: every server stopped; nothing written")
            return 128 + stop.signum
        except (BenchError, CatalogueError, ServerError) as error:
            say(f"bench stopped: {error}")
            return 1
        except VerificationError as error:
            say(f"!!! VERIFICATION FAILED: the servers answer differently; no load sent.\n{error}")
            return 2
    doc = document(args, argv, config, outcome, started, facts)
    outdir = results_dir(doc["label"], started, base=args.results_dir)
    report.write(doc, outdir)
    summarise(doc, outdir, say)
    after_full_run(doc, args.results_dir, say)
    flagged = [r for r in doc["runs"] if r["problems"]]
    if doc["leftovers"]:
        return 1
    return 1 if flagged and not args.allow_errors else 0
