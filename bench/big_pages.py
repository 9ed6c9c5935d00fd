"""``python -m bench.big_pages``: 1k to 1M films through each contender's natural path.

A talk measured Django REST framework serializing 1,000,000 rows in about 40 s
with 3.1 GB of RAM (and ``values()`` without a serializer in 9.8 s). This is the
same question asked of our contenders, each the way its clients would ask it:
Django's and aioapi's NDJSON export, read until N films have come; their paged
list, walked 100 films a page along its ``next`` cursor links; Django's async
views walked the same way; and DRF's one page of N (``?limit=N``) through its
default JSONRenderer, what the talk measured. Wall time, body bytes and the
server's peak RSS, one server at a time, pinned with taskset and started by
bench.servers exactly as the main bench starts them. See bench/README.md, "Big pages".

The catalogue is bench.admin's (the reference file plus 1,000,000 synthetic
films, seed 1), in a database created and loaded when missing. Heavy: run it
under ``flock /tmp/heavy.lock``.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from bench import plan
from bench.big_pages_report import write
from bench.big_pages_run import Bounds, Way, run_way
from bench.catalogue import CatalogueError, CatalogueSpec, database_name, prepare, server_version
from bench.facts import machine, versions
from bench.plan import AIOAPI, DJANGO
from bench.scaffold import results_dir
from bench.servers import REPO, ServerOptions, ServerSpec, base_env, server_specs

DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/mymoviedb_bigpages"
DEFAULT_SOURCE = REPO.parent / "shared" / "data" / "wikipedia-movies.json.gz"
SYNTHETIC, SEED = 1_000_000, 1  # bench.admin's catalogue: one database serves both
SIZES = (1_000, 10_000, 100_000, 1_000_000)
TIME_BOUND_SECONDS = 120.0
MEMORY_BOUND_MIB = 2048.0
# A year of a handful of films: the exports' warm-up reads one whole (big_pages_run.Way).
WARMUP_EXPORT = "?year=1907"
PAGE = 100  # movies.schemas.MAX_LIMIT: the largest page our lists serve
# The contenders issue 15a adds (bench.plan.DJANGO_ASGI and DRF once merged).
DJANGO_ASGI: str = getattr(plan, "DJANGO_ASGI", "django-asgi")
DRF: str = getattr(plan, "DRF", "drf")

WAYS: tuple[tuple[Way, str], ...] = (
    (
        Way(DJANGO, "export", "export", "/movies/export/", WARMUP_EXPORT),
        "`GET /movies/export/` (NDJSON, id order), read until the N-th film line, then the"
        " client hangs up: the export takes no limit.",
    ),
    (
        Way(DJANGO, "pages", "pages", f"/movies/?limit={PAGE}"),
        f"`GET /movies/?limit={PAGE}` (title order), then each page's `next` cursor link"
        f" until N films: N/{PAGE} requests on one keep-alive connection.",
    ),
    (
        Way(AIOAPI, "export", "export", "/api/movies/export", WARMUP_EXPORT),
        "`GET /api/movies/export`, read as Django's.",
    ),
    (
        Way(AIOAPI, "pages", "pages", f"/api/movies?limit={PAGE}"),
        "`GET /api/movies?limit=100`, walked as Django's.",
    ),
    (
        Way(DJANGO_ASGI, "pages", "pages", f"/async/movies/?limit={PAGE}"),
        "`GET /async/movies/?limit=100` (async views, the same bytes as /movies/), walked"
        " as Django's.",
    ),
    (
        Way(DRF, "one page", "page", "/drf/movies/"),
        "`GET /drf/movies/?limit=N`: one page of N through DRF's ListAPIView,"
        " LimitOffsetPagination (no max_limit) and default JSONRenderer, read whole.",
    ),
)
CONTENDERS = tuple(dict.fromkeys(way.server for way, _ in WAYS))


def parse_size(text: str) -> int:
    """``1000``, ``1k``, ``10K``, ``1M`` or ``1_000_000``: a positive film count."""
    match = re.fullmatch(r"\s*([0-9][0-9_]*)\s*([kKmM]?)\s*", text)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"not a number of films: {text!r} (write 1000, 10k or 1M, comma-separated)"
        )
    films = int(match[1]) * {"": 1, "k": 1_000, "m": 1_000_000}[match[2].lower()]
    if films < 1:
        raise argparse.ArgumentTypeError(f"a size must be at least 1 film, not {text!r}")
    return films


def size_list(text: str) -> list[int]:
    return sorted({parse_size(part) for part in text.split(",")})


def contender_list(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in CONTENDERS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown contender(s) {', '.join(unknown) or '(none given)'};"
            f" choose among {', '.join(CONTENDERS)}"
        )
    return names


def positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text!r}")
    return value


def parser() -> argparse.ArgumentParser:
    cpus = tuple(sorted(os.sched_getaffinity(0)))
    p = argparse.ArgumentParser(prog="python -m bench.big_pages", description=__doc__)
    add = p.add_argument
    add("--sizes", type=size_list, default=list(SIZES), help="films per fetch (1k,10k,100k,1M)")
    add("--contenders", type=contender_list, default=list(CONTENDERS), help=",".join(CONTENDERS))
    add("--database-url", default=DEFAULT_DATABASE, help="created and loaded if missing")
    add("--time-bound", type=positive, default=TIME_BOUND_SECONDS, help="seconds per size")
    add("--memory-bound-mib", type=positive, default=MEMORY_BOUND_MIB, help="server RSS, MiB")
    add("--cpus", type=lambda t: tuple(int(c) for c in t.split(",")), default=cpus)
    add("--threads", type=int, default=16, help="Django threads = aioapi ORM threads")
    add("--port-base", type=int, default=20100, help="first of the servers' ports")
    add("--label", default="big-pages", help="results folder suffix")
    return p


def options(args: argparse.Namespace) -> ServerOptions:
    """The main bench's defaults (bench/cli.py): one worker per CPU, persistent
    connections, aioapi's response cache off."""
    return ServerOptions(
        cpus=args.cpus,
        workers=len(args.cpus),
        django_threads=args.threads,
        api_db_threads=args.threads,
        api_db_max_pending=2048,
        api_db_funnel=False,
        api_cache=False,
        pool_size=args.threads,
        keepalive=75,
        host="127.0.0.1",
        port_base=args.port_base,
    )


def available(
    contenders: Sequence[str], specs: Mapping[str, ServerSpec], say: Callable[[str], None] = print
) -> tuple[list[tuple[Way, str]], list[str]]:
    """The ways of ``contenders`` this build can start, and the contenders it cannot
    (a server issue 15a adds is not in ``server_specs`` before it is merged)."""
    chosen, missing = [], []
    for way, how in WAYS:
        if way.server not in contenders:
            continue
        if way.server in specs:
            chosen.append((way, how))
            continue
        say(f"{way.server} {way.path}: not in this build (no such server in"
            " bench.servers.server_specs); skipped")  # fmt: skip
        missing.append(way.server)
    return chosen, list(dict.fromkeys(missing))


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the server of the moment is stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    started = datetime.now(UTC)
    server_options = options(args)
    specs = server_specs(args.database_url, 0.0, server_options)
    env = {**base_env(args.database_url, 0.0, server_options), "PYTHONPATH": str(REPO)}
    try:
        spec = CatalogueSpec(str(DEFAULT_SOURCE), SYNTHETIC, SEED)
        counts = prepare(args.database_url, spec, env, recreate=False, say=print)
    except (CatalogueError, psycopg.Error) as error:
        print(f"big_pages: {error}", file=sys.stderr)
        return 2
    if counts["movies"] < max(args.sizes):
        print(f"big_pages: the catalogue holds {counts['movies']:,} films, fewer than"
              f" {max(args.sizes):,}", file=sys.stderr)  # fmt: skip
        return 2
    with psycopg.connect(args.database_url) as conn:
        postgres = server_version(conn)
    logs = Path(tempfile.mkdtemp(prefix="big-pages-"))
    print(f"server logs: {logs}")
    bounds = Bounds(seconds=args.time_bound, memory_mib=args.memory_bound_mib)
    chosen, missing = available(args.contenders, specs)
    rows: list[dict[str, Any]] = []
    for way, _ in chosen:
        log = logs / f"{way.server}.log"
        rows += run_way(way, specs[way.server], args.sizes, bounds, args.cpus, log)
    ways = [{"server": w.server, "path": w.path, "kind": w.kind, "how": how} for w, how in chosen]
    document = {
        "command": " ".join(["python -m bench.big_pages", *(argv or sys.argv[1:])]),
        "started_utc": started.isoformat(timespec="seconds"),
        "database": database_name(args.database_url),
        "catalogue": counts,
        "sizes": args.sizes,
        "bounds": {"seconds": bounds.seconds, "memory_mib": bounds.memory_mib},
        "ways": ways,
        "missing": missing,
        "commands": {w["server"]: specs[w["server"]].command(args.cpus) for w in ways},
        "server_settings": {w["server"]: dict(specs[w["server"]].settings) for w in ways},
        "machine": machine(),
        "versions": versions({"postgresql": postgres}),
        "rows": rows,
    }
    directory = results_dir(args.label, started)
    write(directory, document)
    print(f"Written to {directory.relative_to(REPO)}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
