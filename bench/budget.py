"""``python -m bench.budget``: where the CPU of one list request goes, in-process.

Both servers answer ``?limit=10`` (``--limit``: any page size) with the same selector
and renderer; this times each step of that work (bench/budget_parts.py) in one process
pinned to one CPU, configured as ``python -m bench`` configures its servers (DEBUG off,
their connection policy and thread counts). What both servers share bounds how much
faster one can be than the other. Writes budget.json and budget.md to
``bench/results/<UTC date>-<label>/`` and prints the table; exit status 2 when the
database holds fewer than limit + 1 films.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import django

from bench import records
from bench.catalogue import DEFAULT_DATABASE_URL
from bench.plan import AIOAPI
from bench.scaffold import (
    RESULTS,
    command_line,
    ended,
    fmt,
    header,
    results_dir,
    run_facts,
    table,
    write_results,
)
from bench.servers import default_options, server_specs

SHARED = [(1, "parse"), (1, "list_movies_cycled"), (1, "render")]
# (figure, signed parts, how): each figure is a sum of measured minima. A difference
# of two large parts carries both parts' noise, so the connection policies are
# compared on the SELECT 1 parts, whose parts are small.
DERIVED: list[tuple[str, list[tuple[int, str]], str]] = [
    ("list_movies over its raw statement", [(1, "list_movies_held"), (-1, "list_sql")],
     "statement lookup, binding, converters, cursors"),
    ("the servers' connection cycle", [(1, "list_movies_cycled"), (-1, "list_movies_held")],
     "the settings' policy, DB_POOL above"),
    ("pool checkout and return", [(1, "select1_pool"), (-1, "select1_held")], "DB_POOL=1"),
    ("the same with the checkout check", [(1, "select1_pool_checked"), (-1, "select1_held")],
     "DB_POOL=1, DB_POOL_CHECK=1"),
    ("persistent connection per thread", [(1, "select1_persistent"), (-1, "select1_held")],
     "DB_POOL=0, no health check"),
    ("in-process work both servers share", SHARED, "parse + list_movies_cycled + render"),
    ("aioapi's whole in-process path", [(1, "aioapi_app")], "all but aiohttp's HTTP parsing"),
    ("aioapi outside the shared work", [(1, "aioapi_app"), *((-1, k) for _, k in SHARED)],
     "routing, middlewares, bridge hop, response"),
    ("Django's whole in-process path", [(1, "django_view")], "all but Gunicorn's HTTP parsing"),
    ("Django outside the shared work", [(1, "django_view"), *((-1, k) for _, k in SHARED)],
     "request, middlewares, signals, response"),
]  # fmt: skip


def derived(timings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Figures computed from the minima (None when a part was not measured here)."""
    us = {t["key"]: t["min_us"] for t in timings}
    figures = []
    for figure, terms, how in DERIVED:
        known = [sign * us[key] for sign, key in terms if us.get(key) is not None]
        value = round(sum(known), 1) if len(known) == len(terms) else None
        parts = {key: sign for sign, key in terms}
        figures.append({"figure": figure, "us": value, "parts": parts, "how": how})
    return figures


def markdown(doc: dict[str, Any]) -> str:
    """budget.md: the facts, one row per part, then the derived figures."""
    held = next((t["min_us"] for t in doc["timings"] if t["key"] == "list_movies_held"), None)

    def share(value: float | None) -> str:
        return fmt(100 * value / held, 0, " %") if value is not None and held else "–"

    db = doc["database"]
    lines = [
        *header(f"CPU budget of one list request (`?limit={doc.get('limit', 10)}`)", doc),
        f"Database: {db['version']}, `{db['name']}`, {db['films']:,} films; this process "
        f"pinned to CPU {doc['cpu']}; settings: "
        + ", ".join(f"{k}={v}" for k, v in doc["settings"].items()),
        "",
        "CPU of this process (`time.process_time()`: all its threads, not PostgreSQL's) per "
        f"call, {doc['number']} calls × {doc['repeat']} repeats after one warm-up batch; the "
        "least and the median of the repeats.",
        "",
        *table([
            ("part", lambda t: f"`{t['key']}` {t['title']}"),
            ("min µs", lambda t: fmt(t["min_us"])),
            ("median µs", lambda t: fmt(t["median_us"])),
            ("of list_movies", lambda t: share(t["min_us"])),
            ("what it is", lambda t: t["what"] + (f" (not measured: {t['skipped']})"
                                                   if t["skipped"] else "")),
        ], doc["timings"]),
        "## Derived (from the minima)",
        "",
        *table([
            ("figure", lambda d: d["figure"]),
            ("µs", lambda d: fmt(d["us"])),
            ("of list_movies", lambda d: share(d["us"])),
            ("how", lambda d: " ".join(f"{'+-'[s < 0]} {k}" for k, s in d["parts"].items())
             + f" ({d['how']})"),
        ], doc["derived"]),
    ]  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Pin, configure Django as the bench servers, refuse a small catalogue, measure."""
    p = argparse.ArgumentParser(prog="python -m bench.budget", description=__doc__)
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    p.add_argument("--database-url", default=url, help="a loaded catalogue, only read")
    p.add_argument("--number", type=int, default=500, help="calls per repeat (%(default)s)")
    p.add_argument("--repeat", type=int, default=7, help="min and median kept (%(default)s)")
    p.add_argument("--cpu", type=int, default=0, help="the CPU this process runs on")
    p.add_argument("--limit", type=int, default=10, help="films per page: list 10, list 100")
    p.add_argument("--label", default="budget", help="results folder suffix (%(default)s)")
    p.add_argument("--results-dir", type=Path, default=RESULTS, help="(%(default)s)")
    args = p.parse_args(argv)
    if args.cpu not in os.sched_getaffinity(0):
        p.error(f"--cpu {args.cpu} is not available ({sorted(os.sched_getaffinity(0))})")
    # Before any thread starts (the pool's, the bridge's): they inherit the CPU.
    os.sched_setaffinity(0, {args.cpu})
    # aioapi's environment in the default bench: Django's, plus the bridge's API_* settings.
    env = dict(server_specs(args.database_url, 0.0, default_options())[AIOAPI].env)
    os.environ.update(env)
    django.setup()  # before anything imports a model
    from django.conf import settings

    from bench import budget_parts, budget_timing

    # Before the first connection: the connection handler reads DATABASES once.
    variants = budget_timing.connection_variants(
        settings.DATABASES["default"], int(env["DB_POOL_MAX_SIZE"])
    )
    settings.DATABASES.update(variants)
    from django.db import DatabaseError, connection

    from movies.models import Movie

    name = connection.settings_dict["NAME"]
    try:
        films = Movie.objects.count()
        version = ".".join(map(str, connection.get_database_version()))
    except DatabaseError as error:
        print(f"bench.budget: cannot read the films of {name}: {error}", file=sys.stderr)
        return 2
    if films < args.limit + 1:
        print(f"bench.budget: {name} holds {films} films; a list request needs at least "
              f"{args.limit + 1} (a full page and a next link). Load the catalogue first "
              "(python -m bench does) or pass --database-url.", file=sys.stderr)  # fmt: skip
        return 2
    started, facts = datetime.now(UTC), run_facts()
    print(f"measuring {args.number} calls x {args.repeat} repeats per part on CPU {args.cpu}")
    timings = [asdict(t) for t in budget_parts.measure(args.number, args.repeat, args.limit)]
    hidden = records.HIDDEN | records.LEFT_OUT | {"LANG", "DATABASE_URL"}
    doc = {
        "command": command_line("bench.budget", argv),
        "facts": ended(facts),
        "cpu": args.cpu,
        "database": {
            "name": name,
            "version": f"{connection.display_name} {version}",
            "films": films,
        },  # fmt: skip
        "settings": {k: v for k, v in env.items() if k not in hidden},
        "number": args.number,
        "repeat": args.repeat,
        "limit": args.limit,
        "timings": timings,
        "derived": derived(timings),
    }
    outdir = results_dir(args.label, started, base=args.results_dir)
    write_results(outdir, doc, markdown(doc), names=("budget.json", "budget.md"))
    print(markdown(doc))
    print(f"results: {outdir}/budget.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
