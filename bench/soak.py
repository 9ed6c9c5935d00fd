"""Soak: memory and connections of aioapi stay flat over a long mixed load (not in CI).

    .venv/bin/python -m bench.soak [--duration 600] [--concurrency 32] [--cache on|off]

aioapi runs under Gunicorn (deploy/gunicorn_api.conf.py, one worker per core,
worker recycling off so that a leak cannot hide behind a restart) on PostgreSQL
with the shared catalogue. An asyncio client keeps ``--concurrency`` requests in
flight: lists (sorts, filters, pages), film and person details, people searches,
genres, conditional GETs (304), unknown films (404) and bad parameters (400),
every status checked; beside them a writer PATCHes a few films with If-Match,
authenticated, once every ``--write-every`` seconds, and puts them back at the
end. Every ``--sample-every`` seconds the RSS of each worker and the PostgreSQL
backends of the database are sampled. With the response cache on (as deployed),
a worker may grow by what the cache may hold: it fills up to its bound, then
evicts. Results: bench/results/<UTC date>-<label>/.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
import psycopg

from bench.deployed_api import (
    DEFAULT_DATABASE_URL,
    ApiServer,
    backends,
    issue_token,
    prepare_catalogue,
    rss_mib,
)
from bench.scaffold import results_dir, run_facts, write_results
from bench.soak_report import FLAT_MIB, report, verdict

SORTS = ("title", "-title", "year", "-year", "rating", "-rating", "id", "-id", "-updated_at")
SEED = 7


@dataclass
class Inputs:
    """Ids and words the requests are built from, sampled once with a fixed seed."""

    movies: list[int]
    people: list[int]
    names: list[str]
    genres: list[str]
    writable: list[int]


@dataclass
class Tally:
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    unexpected: Counter[str] = field(default_factory=Counter)  # "kind status"
    errors: Counter[str] = field(default_factory=Counter)
    writes: int = 0


def sample_inputs(database_url: str) -> Inputs:
    rng = random.Random(SEED)
    with psycopg.connect(database_url) as conn:
        movies = [row[0] for row in conn.execute("SELECT id FROM movies_movie ORDER BY id")]
        people = conn.execute("SELECT id, name FROM movies_person ORDER BY id").fetchall()
        genres = [row[0] for row in conn.execute("SELECT slug FROM movies_genre ORDER BY slug")]
    chosen = rng.sample(people, min(2000, len(people)))
    return Inputs(
        movies=rng.sample(movies, min(5000, len(movies))),
        people=[pk for pk, _ in chosen],
        names=[name.split()[0][:6] for _, name in chosen if name.split()],
        genres=genres,
        writable=rng.sample(movies, 10),
    )


def next_request(
    rng: random.Random, inputs: Inputs, etags: dict[str, str]
) -> tuple[str, str, dict[str, str], tuple[int, ...]]:
    """(kind, path, headers, expected statuses) of the next read."""
    roll = rng.random()
    if roll < 0.35:
        query = f"limit={rng.choice((10, 20, 50))}&sort={rng.choice(SORTS)}"
        if rng.random() < 0.3:
            query += f"&genre={rng.choice(inputs.genres)}"
        if rng.random() < 0.3:
            low = rng.randint(1920, 2015)
            query += f"&year_min={low}&year_max={low + rng.randint(0, 10)}"
        if rng.random() < 0.3:
            query += f"&offset={rng.randint(0, 500)}"
        return "list", f"/api/movies?{query}", {}, (200,)
    if roll < 0.60:
        path = f"/api/movies/{rng.choice(inputs.movies)}"
        return "detail", path, {}, (200,)
    if roll < 0.66:
        return "search", f"/api/people?q={quote(rng.choice(inputs.names))}&limit=10", {}, (200,)
    if roll < 0.76:
        return "person", f"/api/people/{rng.choice(inputs.people)}", {}, (200,)
    if roll < 0.81:
        return "genres", "/api/genres", {}, (200,)
    if roll < 0.88 and etags:
        path, tag = rng.choice(list(etags.items()))
        # 200 when a writer changed the film since.
        return "conditional", path, {"If-None-Match": tag}, (304, 200)
    if roll < 0.94:
        return "not-found", f"/api/movies/{rng.randint(10**9, 2 * 10**9)}", {}, (404,)
    bad = rng.choice(("limit=0", "sort=bogus", "year=abc", "cursor=%25%25", "colour=red"))
    return "bad-request", f"/api/movies?{bad}", {}, (400,)


async def reader(
    session: aiohttp.ClientSession, base: str, inputs: Inputs, tally: Tally, stop: float, seed: int
) -> None:
    rng = random.Random(seed)
    etags: dict[str, str] = {}
    while time.monotonic() < stop:
        kind, path, headers, expected = next_request(rng, inputs, etags)
        try:
            async with session.get(base + path, headers=headers) as response:
                await response.read()
                status = response.status
                if kind == "detail" and status == 200 and len(etags) < 50:
                    etags[path] = response.headers["ETag"]
        except (aiohttp.ClientError, TimeoutError) as error:
            tally.errors[type(error).__name__] += 1
            continue
        tally.requests += 1
        tally.statuses[status] += 1
        if status not in expected:
            tally.unexpected[f"{kind} {status}"] += 1


async def writer(
    session: aiohttp.ClientSession, base: str, inputs: Inputs, token: str, tally: Tally,
    stop: float, every: float,
) -> None:  # fmt: skip
    """PATCH a film's rating with its current ETag; put every film back at the end."""
    auth = {"Authorization": f"Bearer {token}"}
    originals: dict[int, Any] = {}
    rng = random.Random(SEED)
    while time.monotonic() < stop:
        await asyncio.sleep(every)
        film = rng.choice(inputs.writable)
        url = f"{base}/api/movies/{film}"
        async with session.get(url) as response:
            body, etag = orjson.loads(await response.read()), response.headers["ETag"]
        originals.setdefault(film, body["rating"])
        rating = round(rng.uniform(1, 9), 1)
        async with session.patch(
            url, json={"rating": rating}, headers={**auth, "If-Match": etag}
        ) as response:
            await response.read()
            tally.writes += 1
            tally.statuses[response.status] += 1
            if response.status != 200:
                tally.unexpected[f"patch {response.status}"] += 1
    for film, rating in originals.items():
        async with session.patch(
            f"{base}/api/movies/{film}", json={"rating": rating}, headers=auth
        ) as response:
            if response.status != 200:
                tally.unexpected[f"restore {response.status}"] += 1


async def sampler(
    server: ApiServer, database_url: str, tally: Tally, samples: list[dict[str, Any]],
    started: float, stop: float, every: float,
) -> None:  # fmt: skip
    while True:
        rss = await asyncio.to_thread(rss_mib, server.workers())
        connections = await asyncio.to_thread(backends, database_url)
        elapsed = round(time.monotonic() - started, 1)
        samples.append(
            {"t_s": elapsed, "worker_rss_mib": rss, "backends": connections,
             "requests": tally.requests, "errors": sum(tally.errors.values())}
        )  # fmt: skip
        print(
            f"{elapsed:6.0f} s  requests {tally.requests:8d}  rss {rss}  backends {connections}",
            flush=True,
        )
        if time.monotonic() >= stop:
            return
        await asyncio.sleep(min(every, max(0.0, stop - time.monotonic())))


async def soak(
    args: argparse.Namespace, server: ApiServer, inputs: Inputs, token: str
) -> dict[str, Any]:
    tally, samples = Tally(), list[dict[str, Any]]()
    started = time.monotonic()
    stop = started + args.duration
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=args.concurrency + 2)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        await asyncio.gather(
            sampler(server, args.database_url, tally, samples, started, stop, args.sample_every),
            writer(session, server.base, inputs, token, tally, stop, args.write_every),
            *(
                reader(session, server.base, inputs, tally, stop, SEED + index)
                for index in range(args.concurrency)
            ),
        )
    elapsed = time.monotonic() - started
    return {"tally": tally, "samples": samples, "elapsed_s": round(elapsed, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load (600)")
    parser.add_argument("--warm-up", type=float, default=60.0, help="seconds before 'before' (60)")
    parser.add_argument("--sample-every", type=float, default=10.0, help="seconds (10)")
    parser.add_argument("--concurrency", type=int, default=32, help="reads in flight (32)")
    parser.add_argument("--write-every", type=float, default=2.0, help="seconds between PATCHes")
    parser.add_argument("--workers", type=int, default=None, help="default: one per core")
    parser.add_argument(
        "--cache",
        choices=("on", "off"),
        default="on",
        help="aioapi's response cache (API_CACHE); on, as deployed on PostgreSQL",
    )
    parser.add_argument(
        "--cache-max-mib", type=int, default=64, help="API_CACHE_MAX_BYTES in MiB (64)"
    )
    parser.add_argument("--label", default="soak")
    args = parser.parse_args(argv)
    command = " ".join(["python -m bench.soak", *(argv if argv is not None else sys.argv[1:])])

    counts = prepare_catalogue(args.database_url, say=print)
    inputs = sample_inputs(args.database_url)
    token = issue_token(args.database_url, "soak-curator")
    directory = results_dir(args.label)
    settings = {
        "GUNICORN_API_MAX_REQUESTS": "0",
        "API_AUTH_FAILURES_PER_MINUTE": "1000",
        "API_CACHE": "1" if args.cache == "on" else "0",
        "API_CACHE_MAX_BYTES": str(args.cache_max_mib * 1024 * 1024),
    }
    if args.workers:
        settings["GUNICORN_API_WORKERS"] = str(args.workers)
    log = Path(tempfile.mkdtemp(prefix="mymoviedb-soak-")) / "server.log"
    server = ApiServer.start(args.database_url, log, **settings)
    print(f"aioapi on {server.base}, workers {[p.pid for p in server.workers()]}; log {log}")
    try:
        result = asyncio.run(soak(args, server, inputs, token))
    finally:
        server.stop()
    allowed = FLAT_MIB + (args.cache_max_mib if args.cache == "on" else 0)
    judged = verdict(result["samples"], args.warm_up, allowed)
    tally: Tally = result["tally"]
    results = {
        "command": command,
        "server_command": " ".join(server.command),
        "server_settings": server.settings,
        "options": vars(args),
        "catalogue": counts,
        "facts": run_facts(args.database_url),
        "elapsed_s": result["elapsed_s"],
        "reads": tally.requests,
        "writes": tally.writes,
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
        "errors": dict(tally.errors),
        "unexpected_statuses": dict(tally.unexpected),
        "verdict": {key: value for key, value in judged.items() if key not in ("before", "after")},
        "before": judged["before"],
        "after": judged["after"],
        "samples": result["samples"],
    }
    write_results(directory, results, report(result, judged, command))
    print(f"results: {directory}")
    clean = not tally.errors and not tally.unexpected
    return 0 if clean and judged["flat_rss"] and judged["flat_backends"] else 1


if __name__ == "__main__":
    sys.exit(main())
