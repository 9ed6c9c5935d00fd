"""``python -m bench.big_pages``: 1k to 1M films through each contender's natural path
(the NDJSON export read until N films, the list's ``next`` links, DRF's one page of N),
also the export's benchmark (bench/EXPORT.md). Per size a fresh server, a warm-up, then
the fetch on one keep-alive connection (``Accept-Encoding: identity``) while the server's
RSS is sampled every 50 ms; past the time or memory bound that is the size's result and
larger sizes are not tried. bench.admin's catalogue (the reference file plus 1,000,000
synthetic films, seed 1). Heavy: run it under ``flock /tmp/heavy.lock``."""

from __future__ import annotations

import argparse
import dataclasses
import http.client
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
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import orjson
import psycopg

from bench import scaffold, servers
from bench.catalogue import CatalogueError, CatalogueSpec, prepare
from bench.monitor import MIB, PeakRss, rss_mib
from bench.plan import AIOAPI, DJANGO, DJANGO_ASGI, DRF
from bench.scaffold import fmt, size_name
from bench.servers import ManagedServer, ServerError, ServerSpec

DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/mymoviedb_bigpages"
SYNTHETIC, SEED = 1_000_000, 1  # bench.admin's catalogue: one database serves both
SIZES = (1_000, 10_000, 100_000, 1_000_000)
# A year of a handful of films: an export's warm-up reads one whole, since one abandoned
# mid-stream could still hold the process's export slot when the measured one arrives.
WARMUP_EXPORT, WARMUP_FILMS, WARMUP_SECONDS = "?year=1907", 100, 60.0
PAGE = 100  # movies.schemas.MAX_LIMIT: the largest page our lists serve
OK, TIMED_OUT, OVER_MEMORY, SKIPPED = "ok", "timed out", "over the memory bound", "not tried"
READ_BYTES, TRAILER = 1 << 20, b'{"_trailer"'  # a read's most; an NDJSON export's last line
Kind = Literal["export", "pages", "page"]
T = TypeVar("T")


class TimedOut(Exception):  # the time bound passed before the films were read
    pass


class ServerGone(Exception):  # the server closed, refused or answered something else
    pass


@dataclass(frozen=True)
class Fetched:  # what the client got; seconds: from the first request to the last byte needed
    films: int
    bytes: int
    requests: int
    seconds: float
    first_byte_s: float | None = None  # an export's: until its headers are in


class Client:
    """One keep-alive connection to ``127.0.0.1:port``, every blocking call bounded by
    ``deadline`` (a ``time.monotonic()`` value; past it :class:`TimedOut`)."""

    def __init__(self, port: int, deadline: float) -> None:
        self.deadline, self.requests = deadline, 0
        self._connection = http.client.HTTPConnection("127.0.0.1", port)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._connection.close()

    def _bounded(self, call: Callable[[], T], what: str) -> T:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimedOut
        self._connection.timeout = left
        if self._connection.sock is not None:
            self._connection.sock.settimeout(left)
        try:
            return call()
        except TimeoutError:
            raise TimedOut from None
        except (OSError, http.client.HTTPException) as error:
            raise ServerGone(f"{what}: {error!r}") from error

    def get(self, path: str) -> http.client.HTTPResponse:
        """Send a GET, return the response once its headers are in (200 only)."""
        headers = {"Host": "localhost", "Accept-Encoding": "identity"}
        self._bounded(lambda: self._connection.request("GET", path, headers=headers), path)
        response = self._bounded(self._connection.getresponse, path)
        self.requests += 1
        if response.status != 200:
            raise ServerGone(f"GET {path} answered {response.status}: {response.read(300)!r}")
        return response

    def read(self, response: http.client.HTTPResponse) -> bytes:
        """Up to READ_BYTES of the body as they arrive; b"" at its end."""
        return self._bounded(lambda: response.read1(READ_BYTES), "reading the body")

    def body(self, path: str) -> bytes:
        response, parts = self.get(path), []
        while chunk := self.read(response):
            parts.append(chunk)
        response.read()  # marks a Content-Length response done: the connection is reusable
        return b"".join(parts)


def walk_pages(client: Client, first: str, films: int) -> Fetched:
    """Follow ``next`` from ``first`` until ``films`` films have come or the list ends;
    bytes are the whole bodies of the pages read."""
    started = time.monotonic()
    path, got, size = first, 0, 0
    while got < films:
        body = client.body(path)
        page = orjson.loads(body)
        size += len(body)
        got += min(len(page["items"]), films - got)
        if not (link := page["next"]):
            break
        path = urlsplit(first).path + link if link.startswith("?") else link
    return Fetched(got, size, client.requests, time.monotonic() - started)


def export_rows(client: Client, path: str, films: int) -> Fetched:
    """Read an NDJSON export until its ``films``-th line, then hang up; bytes are the
    body up to and including that line's newline."""
    started = time.monotonic()
    response = client.get(path)
    first_byte, lines, size, tail = time.monotonic() - started, 0, 0, b""
    while lines < films:
        chunk = client.read(response)
        if not chunk:  # the export ended first: the completion mark is no film
            lines -= tail.rstrip(b"\n").rsplit(b"\n", 1)[-1].startswith(TRAILER)
            break
        if (newlines := chunk.count(b"\n")) >= films - lines:
            cut = -1
            for _ in range(films - lines):
                cut = chunk.index(b"\n", cut + 1)
            size, lines = size + cut + 1, films
            break
        size, lines, tail = size + len(chunk), lines + newlines, (tail + chunk)[-256:]
    seconds = time.monotonic() - started
    client.close()  # mid-stream: the server sees a client that left, and stops
    return Fetched(lines, size, client.requests, seconds, first_byte)


def one_page(client: Client, path: str, films: int) -> Fetched:
    """One GET of ``path?limit=films``, its films counted in ``results`` (DRF) or ``items``."""
    started = time.monotonic()
    body = client.body(f"{path}?limit={films}")
    seconds, page = time.monotonic() - started, orjson.loads(body)
    items = page["results"] if "results" in page else page["items"]
    return Fetched(len(items), len(body), client.requests, seconds)


@dataclass(frozen=True)
class Way:  # a contender's natural path to N films: which server, how, from which URL
    server: str
    path: str  # the row's name: "export", "pages", "one page"
    kind: Kind
    url: str  # export: its path; pages: the first page (with its limit); page: the list
    warmup_query: str = ""  # appended to ``url`` for the warm-up

    def fetch(self, client: Client, films: int) -> Fetched:
        how = {"export": export_rows, "pages": walk_pages, "page": one_page}[self.kind]
        return how(client, self.url, films)


@dataclass(frozen=True)
class Bounds:  # what a contender may take for one size before that is its result
    seconds: float
    memory_mib: float


WAYS = (
    Way(DJANGO, "export", "export", "/movies/export/", WARMUP_EXPORT),
    Way(DJANGO, "pages", "pages", f"/movies/?limit={PAGE}"),
    Way(AIOAPI, "export", "export", "/api/movies/export", WARMUP_EXPORT),
    Way(AIOAPI, "pages", "pages", f"/api/movies?limit={PAGE}"),
    Way(DJANGO_ASGI, "pages", "pages", f"/async/movies/?limit={PAGE}"),
    Way(DRF, "one page", "page", "/drf/movies/"),  # ?limit=N, no max_limit
)
CONTENDERS = tuple(dict.fromkeys(way.server for way in WAYS))


def size_list(text: str) -> list[int]:
    """``1000``, ``1k``, ``10K``, ``1M`` or ``1_000_000``, comma-separated: film counts."""
    sizes = set()
    for part in text.split(","):
        match = re.fullmatch(r"\s*([0-9][0-9_]*)\s*([kKmM]?)\s*", part)
        if match is None:
            raise argparse.ArgumentTypeError(
                f"not a number of films: {part!r} (write 1000, 10k or 1M, comma-separated)"
            )
        if (films := int(match[1]) * {"": 1, "k": 1_000, "m": 1_000_000}[match[2].lower()]) < 1:
            raise argparse.ArgumentTypeError(f"a size must be at least 1 film, not {part!r}")
        sizes.add(films)
    return sorted(sizes)


def contender_list(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if (unknown := [name for name in names if name not in CONTENDERS]) or not names:
        raise argparse.ArgumentTypeError(f"unknown contender(s) {', '.join(unknown) or '(none)'};"
                                         f" choose among {', '.join(CONTENDERS)}")  # fmt: skip
    return names


def positive(text: str) -> float:
    if (value := float(text)) <= 0:  # argparse says "invalid positive value" for a ValueError
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text!r}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.big_pages", description=__doc__)
    add = p.add_argument
    add("--sizes", type=size_list, default=list(SIZES), help="films per fetch (1k,10k,100k,1M)")
    add("--contenders", type=contender_list, default=list(CONTENDERS), help=",".join(CONTENDERS))
    add("--database-url", default=DEFAULT_DATABASE, help="created and loaded if missing")
    add("--time-bound", type=positive, default=120.0, help="seconds per size (%(default)s)")
    add("--memory-bound-mib", type=positive, default=2048.0, help="server RSS (%(default)s)")
    add("--cpus", type=lambda t: tuple(int(c) for c in t.split(",")),
        default=tuple(sorted(os.sched_getaffinity(0))))  # fmt: skip
    add("--threads", type=int, default=16, help="Django threads = aioapi ORM threads")
    add("--port-base", type=int, default=20100, help="first of the servers' ports")
    add("--label", default="big-pages", help="results folder suffix")
    return p


def measure(
    way: Way, spec: ServerSpec, films: int, bounds: Bounds, cpus: tuple[int, ...], log: Path
) -> dict[str, Any]:
    """One size through one way, on a server started for it (so one size's peak does
    not carry into the next); always a result row."""
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


def run_way(way: Way, spec: ServerSpec, sizes: list[int], bounds: Bounds,
            cpus: tuple[int, ...], log: Path) -> list[dict[str, Any]]:  # fmt: skip
    """Every size in ascending order; after a size fails, the larger are not tried."""
    rows: list[dict[str, Any]] = []
    failed: dict[str, Any] | None = None
    for films in sorted(sizes):
        if failed is not None:
            reason = f"{SKIPPED}: {failed['status']} at {failed['size']:,} films"
            rows.append({"server": way.server, "path": way.path, "size": films, "status": reason})
        else:
            rows.append(measure(way, spec, films, bounds, cpus, log))
            failed = None if rows[-1]["status"] == OK else rows[-1]
        print(f"{way.server:>12} {way.path:<9} {films:>9,} films: {cell(rows[-1])}")
    return rows


def cell(row: Mapping[str, Any] | None) -> str:
    """Wall time · body MiB · peak RSS of the busiest server process, or the status."""
    if row is None or row["status"] != OK:
        return "–" if row is None else str(row["status"])
    return (f"{fmt(row['seconds'], 2)} s · {fmt(row['bytes'] / MIB, 1)} MB"
            f" · {fmt(row['peak_rss_busiest_mib'])} MB RSS")  # fmt: skip


def markdown(document: Mapping[str, Any]) -> str:
    bounds, sizes = document["bounds"], sorted(document["sizes"])
    keyed = {(r["server"], r["path"], r["size"]): r for r in document["rows"]}
    lines = dict.fromkeys((r["server"], r["path"]) for r in document["rows"])
    return "\n".join([
        *scaffold.header("Big pages: N films through each contender's natural path", document),
        f"Catalogue: {document['catalogue']['movies']:,} films in "
        f"`{document['facts'].get('database')}`",
        "",
        "Each cell: wall time from the first request to the last byte needed · response"
        " body bytes (MB = MiB) · peak RSS of the busiest server process (results.json"
        " also has the sum over the Gunicorn master and workers, and an export's time to"
        " its first byte).",
        f'Bounds per size: {fmt(bounds["seconds"])} s of wall time ("timed out"), and'
        f" {fmt(bounds['memory_mib'])} MiB of RSS summed over the server's processes (the"
        ' server is killed: "over the memory bound"); after either, larger sizes are'
        " not tried.",
        "",
        *scaffold.markdown_table(
            ["contender", "path", *map(size_name, sizes)],
            [[s, p, *(cell(keyed.get((s, p, n))) for n in sizes)] for s, p in lines],
        ),
        "Paths: " + "; ".join(f"{w['server']} {w['path']}: `{w['url']}`" for w in document["ways"]),
        "",
        "## Servers",
        "",
        *(f"- {name}: `{' '.join(command)}`" for name, command in document["commands"].items()),
        "",
    ])  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the server of the moment is stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    started = datetime.now(UTC)
    options = servers.default_options(args.threads, args.port_base)
    options = dataclasses.replace(options, cpus=args.cpus, workers=len(args.cpus))
    specs = servers.server_specs(args.database_url, 0.0, options)
    try:
        spec = CatalogueSpec(str(servers.SHARED_CATALOGUE), SYNTHETIC, SEED)
        env = servers.base_env(args.database_url, 0.0, options)
        counts = prepare(args.database_url, spec, env, recreate=False, say=print)
    except (CatalogueError, psycopg.Error) as error:
        print(f"big_pages: {error}", file=sys.stderr)
        return 2
    if counts["movies"] < max(args.sizes):
        print(f"big_pages: the catalogue holds {counts['movies']:,} films, fewer than"
              f" {max(args.sizes):,}", file=sys.stderr)  # fmt: skip
        return 2
    facts = scaffold.run_facts(args.database_url)
    logs = Path(tempfile.mkdtemp(prefix="big-pages-"))
    print(f"server logs: {logs}")
    bounds = Bounds(seconds=args.time_bound, memory_mib=args.memory_bound_mib)
    chosen = [way for way in WAYS if way.server in args.contenders]
    rows: list[dict[str, Any]] = []
    for way in chosen:
        log = logs / f"{way.server}.log"
        rows += run_way(way, specs[way.server], args.sizes, bounds, args.cpus, log)
    ways = [{"server": w.server, "path": w.path, "kind": w.kind, "url": w.url} for w in chosen]
    document = {
        "command": scaffold.command_line("bench.big_pages", argv), "facts": scaffold.ended(facts),
        "catalogue": counts, "sizes": args.sizes, "bounds": dataclasses.asdict(bounds),
        "ways": ways, "rows": rows,
        "commands": {w["server"]: specs[w["server"]].command(args.cpus) for w in ways},
        "server_settings": {w["server"]: dict(specs[w["server"]].settings) for w in ways},
    }  # fmt: skip
    scaffold.publish(args.label, started, document, markdown(document))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
