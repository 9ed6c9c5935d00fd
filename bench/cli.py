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

from bench import facts, report, run_document
from bench.catalogue import CatalogueError, CatalogueSpec
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
from bench.runner import Bench, BenchConfig, BenchError
from bench.scaffold import RESULTS, results_dir
from bench.servers import REPO, ServerError, ServerOptions, server_specs
from bench.verify import VerificationError

PLANS = ("default", "quick", "issue3", "lean")
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/mymoviedb_bench"
DEFAULT_SOURCE = REPO.parent / "shared" / "data" / "wikipedia-movies.json.gz"
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
    db("--source", default=str(DEFAULT_SOURCE), help="catalogue file to import (%(default)s)")
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
    started, machine = datetime.now(UTC), facts.machine()
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
    doc = run_document.document(args, argv, config, outcome, started, machine)
    outdir = results_dir(doc["label"], started, base=args.results_dir)
    report.write(doc, outdir)
    run_document.summarise(doc, outdir, say)
    run_document.after_full_run(doc, args.results_dir, say)
    flagged = [r for r in doc["runs"] if r["problems"]]
    if doc["leftovers"]:
        return 1
    return 1 if flagged and not args.allow_errors else 0
