"""``python -m bench.budget``: where the CPU of one list request goes, in-process.

Both servers answer ``?limit=10`` with the same selector and renderer; this
times each step of that work (bench/budget_parts.py) in one process pinned to
one CPU, configured as ``python -m bench`` configures its servers (DEBUG off, their
connection policy and thread counts). What both servers
share bounds how much faster one can be than the other. Writes budget.json and
budget.md to ``bench/results/<UTC date>-<label>/`` and prints the table.
Exit status 2 when the database cannot serve a full page (fewer than 11 films).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import django

from bench import records, scaffold
from bench.catalogue import DEFAULT_DATABASE_URL
from bench.plan import AIOAPI
from bench.scaffold import RESULTS, fmt, results_dir, table, write_results
from bench.servers import default_options, server_specs

MIN_FILMS = 11  # a full page of 10 and the one that makes its next link
REPEAT = 7
NUMBER = 500


# (figure, signed parts, how): each figure is a sum of measured minima. A
# difference of two large parts carries both parts' noise, so the connection
# policies are compared on the SELECT 1 parts, whose parts are small.
DERIVED: list[tuple[str, list[tuple[int, str]], str]] = [
    ("list_movies over its raw statement", [(1, "list_movies_held"), (-1, "list_sql")],
     "list_movies_held - list_sql: statement lookup, binding, converters, cursors"),
    ("the servers' connection cycle", [(1, "list_movies_cycled"), (-1, "list_movies_held")],
     "list_movies_cycled - list_movies_held (the settings' policy, DB_POOL above)"),
    ("pool checkout and return", [(1, "select1_pool"), (-1, "select1_held")],
     "select1_pool - select1_held (DB_POOL=1)"),
    ("the same with the checkout check", [(1, "select1_pool_checked"), (-1, "select1_held")],
     "select1_pool_checked - select1_held (DB_POOL=1, DB_POOL_CHECK=1)"),
    ("persistent connection per thread", [(1, "select1_persistent"), (-1, "select1_held")],
     "select1_persistent - select1_held (DB_POOL=0, no health check)"),
    ("in-process work both servers share",
     [(1, "parse"), (1, "list_movies_cycled"), (1, "render")],
     "parse + list_movies_cycled + render"),
    ("aioapi's whole in-process path", [(1, "aioapi_app")],
     "aioapi_app: everything but HTTP parsing and writing (aiohttp's part)"),
    ("aioapi outside the shared work",
     [(1, "aioapi_app"), (-1, "parse"), (-1, "list_movies_cycled"), (-1, "render")],
     "the row above minus the shared work: routing, middlewares, bridge hop, response"),
    ("Django's whole in-process path", [(1, "django_view")],
     "django_view: everything but HTTP parsing and writing (Gunicorn's part)"),
    ("Django outside the shared work",
     [(1, "django_view"), (-1, "parse"), (-1, "list_movies_cycled"), (-1, "render")],
     "django_view minus the shared work: request, middlewares, signals, response"),
]  # fmt: skip


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.budget", description=__doc__)
    add = p.add_argument
    add(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="a loaded catalogue, only read; env BENCH_DATABASE_URL (default %(default)s)",
    )
    add("--number", type=int, default=NUMBER, help="calls per repeat (%(default)s)")
    add("--repeat", type=int, default=REPEAT, help="repeats; min and median kept (%(default)s)")
    add("--cpu", type=int, default=0, help="the one CPU this process runs on (%(default)s)")
    add("--label", default="budget", help="results folder suffix (%(default)s)")
    add("--results-dir", type=Path, default=RESULTS, help="(%(default)s)")
    return p


def server_env(database_url: str) -> dict[str, str]:
    """The environment of aioapi in the default bench: Django's (DEBUG off, the fixed
    pool) plus the bridge's API_* settings."""
    options = default_options()
    return dict(server_specs(database_url, 0.0, options)[AIOAPI].env)


def derived(timings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Figures computed from the minima: how the selector splits, what is around it."""
    us = {t["key"]: t["min_us"] for t in timings}
    whole = us.get("list_movies_held")
    figures = []
    for figure, terms, how in DERIVED:
        known = [(sign, us[key]) for sign, key in terms if us.get(key) is not None]
        # None when a part was not measured here (no pool on SQLite).
        value = round(sum(s * v for s, v in known), 1) if len(known) == len(terms) else None
        figures.append(
            {
                "figure": figure,
                "us": value,
                "of_list_movies": round(value / whole, 3) if value is not None and whole else None,
                "parts": {key: sign for sign, key in terms},
                "how": how,
            }
        )
    return figures


def document(
    timings: list[dict[str, Any]],
    *,
    argv: list[str],
    number: int,
    repeat: int,
    cpu: int,
    database: dict[str, Any],
    settings: dict[str, str],
    started: datetime,
    machine: dict[str, object],
) -> dict[str, Any]:
    """Everything measured and what it was measured on (budget.json)."""
    return {
        "schema": 1,
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": shlex.join(["python", "-m", "bench.budget", *argv]),
        "machine": machine,
        "pinned_cpu": cpu,
        "versions": scaffold.versions({"database": database["version"]}),
        "database": database,
        "settings": settings,
        "number": number,
        "repeat": repeat,
        "timings": timings,
        "derived": derived(timings),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }


def markdown(doc: dict[str, Any]) -> str:
    """budget.md: the facts, one row per part, then the derived figures."""
    m, db, v = doc["machine"], doc["database"], doc["versions"]
    held = next((t["min_us"] for t in doc["timings"] if t["key"] == "list_movies_held"), None)
    lines = [
        "# CPU budget of one list request (`?limit=10`)",
        "",
        f"Date (UTC): {doc['started_at']}  ",
        f"Command: `{doc['command']}`  ",
        f"Machine: {m['cpu_model']}, {m['cores']} cores, {m['memory_gib']} GiB, "
        f"Linux {m['kernel']}; this process pinned to CPU {doc['pinned_cpu']}  ",
        f"Load average at start / end: {m['load_average_at_start']} / "
        f"{doc['load_average_at_end']} (other work on the machine shows in the medians)  ",
        f"Database: {db['version']}, `{db['name']}`, {db['films']:,} films  ",
        f"Versions: Python {v['python']}, Django {v['Django']}, psycopg {v['psycopg']}, "
        f"channels {v['channels']}, uvloop {v['uvloop']}, orjson {v['orjson']}  ",
        "Settings: " + ", ".join(f"{k}={val}" for k, val in doc["settings"].items()),
        "",
        "CPU of this process (`time.process_time()`: all its threads, not PostgreSQL's, "
        f"not time spent waiting) per call, {doc['number']} calls × {doc['repeat']} repeats "
        "after one warm-up batch; the least and the median of the repeats.",
        "",
    ]
    lines += table(
        [
            ("part", lambda t: f"`{t['key']}` {t['title']}"),
            ("min µs", lambda t: fmt(t["min_us"])),
            ("median µs", lambda t: fmt(t["median_us"])),
            ("of list_movies", lambda t: share(t["min_us"], held)),
            ("what it is", lambda t: t["what"] + (f" (not measured: {t['skipped']})"
                                                   if t["skipped"] else "")),
        ],
        doc["timings"],
    )  # fmt: skip
    lines += ["## Derived (from the minima)", ""]
    lines += table(
        [
            ("figure", lambda d: d["figure"]),
            ("µs", lambda d: fmt(d["us"])),
            ("of list_movies", lambda d: share(d["us"], held)),
            ("how", lambda d: d["how"]),
        ],
        doc["derived"],
    )  # fmt: skip
    return "\n".join(lines)


def share(value: float | None, whole: float | None) -> str:
    return fmt(100 * value / whole, 0, " %") if value is not None and whole else "–"


def write(doc: dict[str, Any], outdir: Path) -> None:
    write_results(outdir, doc, markdown(doc), names=("budget.json", "budget.md"))


def main(argv: list[str] | None = None) -> int:
    """Pin, configure Django as the bench servers, refuse a small catalogue, measure."""
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    if args.cpu not in os.sched_getaffinity(0):
        parser().error(f"--cpu {args.cpu} is not available ({sorted(os.sched_getaffinity(0))})")
    # Before any thread starts (the pool's, the bridge's): they inherit the CPU.
    os.sched_setaffinity(0, {args.cpu})
    env = server_env(args.database_url)
    os.environ.update(env)
    django.setup()  # before anything imports a model
    from django.conf import settings

    from bench import budget_parts, budget_timing

    # Before the first connection: the connection handler reads DATABASES once.
    pool_size = int(env["DB_POOL_MAX_SIZE"])
    settings.DATABASES.update(
        budget_timing.connection_variants(settings.DATABASES["default"], pool_size)
    )
    from django.db import DatabaseError, connection

    from movies.models import Movie

    name = connection.settings_dict["NAME"]
    try:
        films = Movie.objects.count()
        version = ".".join(map(str, connection.get_database_version()))
    except DatabaseError as error:
        print(f"bench.budget: cannot read the films of {name}: {error}", file=sys.stderr)
        return 2
    if films < MIN_FILMS:
        print(
            f"bench.budget: {name} holds {films} films; a list request needs at least "
            f"{MIN_FILMS} (a full page of 10 and a next link). Load the catalogue first "
            "(python -m bench does) or pass --database-url.",
            file=sys.stderr,
        )
        return 2
    started, machine = datetime.now(UTC), scaffold.machine()
    print(f"measuring {args.number} calls x {args.repeat} repeats per part on CPU {args.cpu}")
    timings = [asdict(t) for t in budget_parts.measure(args.number, args.repeat)]
    shown = {k: v for k, v in env.items() if k not in records.HIDDEN | records.LEFT_OUT}
    doc = document(
        timings,
        argv=argv,
        number=args.number,
        repeat=args.repeat,
        cpu=args.cpu,
        database={"name": name, "version": f"{connection.display_name} {version}", "films": films},
        settings={k: v for k, v in shown.items() if k not in ("LANG", "DATABASE_URL")},
        started=started,
        machine=machine,
    )
    outdir = results_dir(args.label, started, base=args.results_dir)
    write(doc, outdir)
    print(markdown(doc))
    print(f"results: {outdir}/budget.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
