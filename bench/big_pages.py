"""``python -m bench.big_pages``: 1k to 1M films through each contender's natural path.

A talk measured Django REST framework serializing 1,000,000 rows in about 40 s with
3.1 GB of RAM (``values()`` without a serializer: 9.8 s). The same question asked of
our contenders the way their clients would: the NDJSON export read until N films,
the paged list walked along its ``next`` links, DRF's one page of N. Each size gets a
fresh server (bench.servers, as the main bench starts it), a warm-up request, then the
measured fetch while the server's RSS is sampled every 50 ms; past the time or memory
bound that is the size's result, and larger sizes are not tried. The catalogue is
bench.admin's (the reference file plus 1,000,000 synthetic films, seed 1). Heavy: run
it under ``flock /tmp/heavy.lock``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import psycopg

from bench.big_pages_client import (
    Client,
    Fetched,
    ServerGone,
    TimedOut,
    export_rows,
    one_page,
    walk_pages,
)
from bench.catalogue import CatalogueError, CatalogueSpec, prepare
from bench.monitor import MIB, PeakRss, rss_mib
from bench.plan import AIOAPI, DJANGO, DJANGO_ASGI, DRF
from bench.scaffold import (
    Column,
    command_line,
    ended,
    fmt,
    header,
    results_dir,
    run_facts,
    table,
    write_results,
)
from bench.servers import (
    SHARED_CATALOGUE,
    ManagedServer,
    ServerError,
    ServerSpec,
    base_env,
    default_options,
    server_specs,
)

DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/mymoviedb_bigpages"
SYNTHETIC, SEED = 1_000_000, 1  # bench.admin's catalogue: one database serves both
SIZES = (1_000, 10_000, 100_000, 1_000_000)
TIME_BOUND_SECONDS = 120.0
MEMORY_BOUND_MIB = 2048.0
# A year of a handful of films: the exports' warm-up reads one whole (see Way).
WARMUP_EXPORT = "?year=1907"
WARMUP_FILMS = 100
WARMUP_SECONDS = 60.0
PAGE = 100  # movies.schemas.MAX_LIMIT: the largest page our lists serve
OK, TIMED_OUT, OVER_MEMORY, SKIPPED = "ok", "timed out", "over the memory bound", "not tried"
Kind = Literal["export", "pages", "page"]
# Published figures, not measured here: kept apart from ours and labelled as theirs.
TALK_FIGURES = (
    ("Django REST framework serializer, 1,000,000 rows", "~40 s", "3.1 GB"),
    ("Django ORM `values()`, no serializer, 1,000,000 rows", "9.8 s", "not given"),
    ("a team's report after leaving DRF", "~5x faster", "not given"),
)


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


WAYS: tuple[tuple[Way, str], ...] = (
    (Way(DJANGO, "export", "export", "/movies/export/", WARMUP_EXPORT),
     "`GET /movies/export/` (NDJSON, id order), read until the N-th film line, then the"
     " client hangs up: the export takes no limit."),
    (Way(DJANGO, "pages", "pages", f"/movies/?limit={PAGE}"),
     f"`GET /movies/?limit={PAGE}` (title order), then each page's `next` cursor link"
     f" until N films: N/{PAGE} requests on one keep-alive connection."),
    (Way(AIOAPI, "export", "export", "/api/movies/export", WARMUP_EXPORT),
     "`GET /api/movies/export`, read as Django's."),
    (Way(AIOAPI, "pages", "pages", f"/api/movies?limit={PAGE}"),
     f"`GET /api/movies?limit={PAGE}`, walked as Django's."),
    (Way(DJANGO_ASGI, "pages", "pages", f"/async/movies/?limit={PAGE}"),
     f"`GET /async/movies/?limit={PAGE}` (the async views, the bytes of /movies/), walked"
     " as Django's."),
    (Way(DRF, "one page", "page", "/drf/movies/"),
     "`GET /drf/movies/?limit=N`: one page of N through DRF's ListAPIView,"
     " LimitOffsetPagination (no max_limit) and default JSONRenderer, read whole."),
)  # fmt: skip
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


def measure(
    way: Way, spec: ServerSpec, films: int, bounds: Bounds, cpus: tuple[int, ...], log: Path
) -> dict[str, Any]:
    """One size through one way, on a server started for it; always a result row. A
    fresh server per size keeps one size's peak from carrying into the next."""
    row: dict[str, Any] = {"server": way.server, "path": way.path, "size": films}
    server = ManagedServer(spec, cpus, log)
    try:
        with server:
            warmup = dataclasses.replace(way, url=way.url + way.warmup_query)
            with Client(spec.port, time.monotonic() + WARMUP_SECONDS) as client:
                warmup.fetch(client, min(films, WARMUP_FILMS))
            row["idle_rss_mib"] = round(sum(rss_mib(server.processes()).values()), 1)
            # Past the bound the sampler kills the server (the client sees it go).
            watch = PeakRss(server.processes, 0.05, bounds.memory_mib, server.kill)
            with watch, Client(spec.port, time.monotonic() + bounds.seconds) as client:
                try:
                    row.update(status=OK, **vars(way.fetch(client, films)))
                except TimedOut:
                    row.update(status=TIMED_OUT, seconds=bounds.seconds)
                except ServerGone as error:
                    row["status"] = f"error: {error}"
            if watch.tripped:  # whatever the client saw, the server went past the bound
                row["status"] = OVER_MEMORY
            row["peak_rss_mib"] = round(watch.total_mib, 1)
            row["peak_rss_busiest_mib"] = round(watch.busiest_mib, 1)
    except (ServerError, ServerGone, TimedOut) as error:  # start-up or warm-up failed
        row["status"] = f"error: {error!r}"[:2000]
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


def size_name(films: int) -> str:
    """1k, 10k, 100k, 1M: the talk's column names."""
    for unit, suffix in ((1_000_000, "M"), (1_000, "k")):
        if films >= unit and films % unit == 0:
            return f"{films // unit}{suffix}"
    return f"{films:,}"


def cell(row: Mapping[str, Any] | None) -> str:
    if row is None:
        return "–"
    if row["status"] != OK:
        return str(row["status"])
    return (
        f"{fmt(row['seconds'], 2)} s · {fmt(row['bytes'] / MIB, 1)} MB"
        f" · {fmt(row['peak_rss_busiest_mib'])} MB RSS"
    )


def grid(rows: Sequence[Mapping[str, Any]], sizes: Sequence[int]) -> list[str]:
    """One line per contender and path, one column per size."""
    keyed = {(r["server"], r["path"], r["size"]): r for r in rows}
    lines = list(dict.fromkeys((r["server"], r["path"]) for r in rows))
    columns: list[Column] = [
        ("contender", lambda line: str(line["server"])),
        ("path", lambda line: str(line["path"])),
    ]

    def at(films: int) -> Column:
        return size_name(films), lambda line: cell(keyed.get((*line["key"], films)))

    columns += [at(films) for films in sorted(sizes)]
    return table(columns, [{"server": s, "path": p, "key": (s, p)} for s, p in lines])


def markdown(document: Mapping[str, Any]) -> str:
    bounds = document["bounds"]
    lines = [
        *header("Big pages: N films through each contender's natural path", document),
        f"Catalogue: {document['catalogue']['movies']:,} films in "
        f"`{document['facts'].get('database')}`",
        "",
        "Each cell: wall time from the first request to the last byte needed · response"
        " body bytes (MB = MiB) · peak RSS of the busiest server process (results.json"
        " also has the sum over the Gunicorn master and workers).",
        f'Bounds per size: {fmt(bounds["seconds"])} s of wall time ("timed out"), and'
        f" {fmt(bounds['memory_mib'])} MiB of RSS summed over the server's processes (the"
        ' server is killed: "over the memory bound"); after either, larger sizes are'
        " not tried.",
        "",
        *grid(document["rows"], document["sizes"]),
        "Paths:",
        "",
        *(f"- **{w['server']} {w['path']}**: {w['how']}" for w in document["ways"]),
        "",
    ]
    lines += [
        "## Their figures (the talk, not measured here)",
        "",
        *table(
            [
                ("what they measured", lambda r: str(r["what"])),
                ("wall time", lambda r: str(r["time"])),
                ("memory", lambda r: str(r["memory"])),
            ],
            [{"what": w, "time": t, "memory": m} for w, t, m in TALK_FIGURES],
        ),
        "Their machine, data and rows differ from ours: read them as orders of magnitude.",
        "",
        "## Servers",
        "",
        *(f"- {name}: `{' '.join(command)}`" for name, command in document["commands"].items()),
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the server of the moment is stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    started = datetime.now(UTC)
    options = dataclasses.replace(
        default_options(args.threads, args.port_base), cpus=args.cpus, workers=len(args.cpus)
    )
    specs = server_specs(args.database_url, 0.0, options)
    try:
        spec = CatalogueSpec(str(SHARED_CATALOGUE), SYNTHETIC, SEED)
        env = base_env(args.database_url, 0.0, options)
        counts = prepare(args.database_url, spec, env, recreate=False, say=print)
    except (CatalogueError, psycopg.Error) as error:
        print(f"big_pages: {error}", file=sys.stderr)
        return 2
    if counts["movies"] < max(args.sizes):
        print(f"big_pages: the catalogue holds {counts['movies']:,} films, fewer than"
              f" {max(args.sizes):,}", file=sys.stderr)  # fmt: skip
        return 2
    facts = run_facts(args.database_url)
    logs = Path(tempfile.mkdtemp(prefix="big-pages-"))
    print(f"server logs: {logs}")
    bounds = Bounds(seconds=args.time_bound, memory_mib=args.memory_bound_mib)
    chosen = [(way, how) for way, how in WAYS if way.server in args.contenders]
    rows: list[dict[str, Any]] = []
    for way, _ in chosen:
        log = logs / f"{way.server}.log"
        rows += run_way(way, specs[way.server], args.sizes, bounds, args.cpus, log)
    ways = [{"server": w.server, "path": w.path, "kind": w.kind, "how": how} for w, how in chosen]
    document = {
        "command": command_line("bench.big_pages", argv),
        "facts": ended(facts),
        "catalogue": counts,
        "sizes": args.sizes,
        "bounds": {"seconds": bounds.seconds, "memory_mib": bounds.memory_mib},
        "ways": ways,
        "commands": {w["server"]: specs[w["server"]].command(args.cpus) for w in ways},
        "server_settings": {w["server"]: dict(specs[w["server"]].settings) for w in ways},
        "rows": rows,
    }
    directory = results_dir(args.label, started)
    write_results(directory, document, markdown(document))
    print(f"Written to {directory}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
