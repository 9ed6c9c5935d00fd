"""``python -m bench.soak``: aioapi's memory and connections stay flat over a long
mixed load (not in CI).

aioapi as deployed (bench/deployed_api.py, worker recycling off so that a leak cannot
hide behind a restart); ``--concurrency`` readers send lists, details, searches,
conditional GETs, 404s and 400s, every status checked, while a writer PATCHes a few
films with If-Match (and puts them back); every ``--sample-every`` s the workers' RSS
and the database's backends are sampled. With the response cache on, a worker may
grow by what the cache may hold.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
import psycopg

from bench.deployed_api import DEFAULT_DATABASE_URL, backends, issue_token, prepare_catalogue, spec
from bench.monitor import rss_mib
from bench.scaffold import command_line, ended, header, markdown_table, publish, run_facts
from bench.servers import ManagedServer

SORTS = ("title", "-title", "year", "-year", "rating", "-rating", "id", "-id", "-updated_at")
SEED = 7
# Growth allowed after the warm-up besides the response cache (pools, allocator).
FLAT_MIB = 8.0


def verdict(samples: list[dict[str, Any]], warm_up: float, allowed_mib: float) -> dict[str, Any]:
    """Before (first sample after the warm-up) and after (last sample), per worker.

    A worker may grow by what its response cache may hold (it fills up to its
    bound, then evicts) plus FLAT_MIB; a leak keeps growing past that.
    """
    before = next(sample for sample in samples if sample["t_s"] >= warm_up)
    after = samples[-1]
    growth = {
        pid: round(after["worker_rss_mib"].get(pid, 0.0) - rss, 1)
        for pid, rss in before["worker_rss_mib"].items()
    }
    same_workers = set(before["worker_rss_mib"]) == set(after["worker_rss_mib"])
    flat_rss = same_workers and all(value <= allowed_mib for value in growth.values())
    flat_backends = sum(after["backends"].values()) <= sum(before["backends"].values())
    return {
        "before": before,
        "after": after,
        "rss_growth_mib": growth,
        "same_workers": same_workers,
        "flat_rss": flat_rss,
        "flat_backends": flat_backends,
        "criterion": f"each worker grows at most {allowed_mib:g} MiB after the warm-up "
        f"({FLAT_MIB:g} MiB, plus the response cache's bound when it is on), and the "
        "backends after are no more than before",
    }


def report(result: dict[str, Any], judged: dict[str, Any], document: dict[str, Any]) -> str:
    """report.md: what ran, the verdict, before and after, every sample."""
    tally = result["tally"]
    before, after = judged["before"], judged["after"]
    lines = [
        *header("Soak: aioapi as deployed, mixed load", document),
        f"- Ran {result['elapsed_s']} s; {tally.requests} reads and {tally.writes} "
        f"authenticated PATCHes; statuses {dict(sorted(tally.statuses.items()))}.",
        f"- Socket errors or timeouts: {sum(tally.errors.values())} {dict(tally.errors)}; "
        f"unexpected statuses: {sum(tally.unexpected.values())} {dict(tally.unexpected)}.",
        f"- Verdict: RSS {'flat' if judged['flat_rss'] else 'NOT flat'}, backends "
        f"{'flat' if judged['flat_backends'] else 'NOT flat'} ({judged['criterion']}).",
        "",
        *markdown_table(
            ["", "t (s)", "RSS per worker (MiB)", "PostgreSQL backends"],
            [
                [label, s["t_s"], s["worker_rss_mib"], s["backends"]]
                for label, s in (("before (after warm-up)", before), ("after", after))
            ],
            ("left", "right", "left", "left"),
        ),
        f"RSS growth per worker: {judged['rss_growth_mib']} MiB.",
        "",
        "## Samples",
        "",
        *markdown_table(
            ["t (s)", "requests", "RSS per worker (MiB)", "backends"],
            [
                [s["t_s"], s["requests"], s["worker_rss_mib"], s["backends"]]
                for s in result["samples"]
            ],
            ("right", "right", "left", "left"),
        ),
    ]
    return "\n".join(lines)


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
    server: ManagedServer, database_url: str, tally: Tally, samples: list[dict[str, Any]],
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
    args: argparse.Namespace, server: ManagedServer, inputs: Inputs, token: str
) -> dict[str, Any]:
    tally, samples = Tally(), list[dict[str, Any]]()
    started = time.monotonic()
    stop = started + args.duration
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=args.concurrency + 2)
    base = f"http://127.0.0.1:{server.spec.port}"
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        await asyncio.gather(
            sampler(server, args.database_url, tally, samples, started, stop, args.sample_every),
            writer(session, base, inputs, token, tally, stop, args.write_every),
            *(
                reader(session, base, inputs, tally, stop, SEED + index)
                for index in range(args.concurrency)
            ),
        )
    elapsed = time.monotonic() - started
    return {"tally": tally, "samples": samples, "elapsed_s": round(elapsed, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    add = parser.add_argument
    add("--database-url", default=DEFAULT_DATABASE_URL)
    add("--duration", type=float, default=600.0, help="seconds of load (%(default)s)")
    add("--warm-up", type=float, default=60.0, help="seconds before 'before' (%(default)s)")
    add("--sample-every", type=float, default=10.0, help="seconds (%(default)s)")
    add("--concurrency", type=int, default=32, help="reads in flight (%(default)s)")
    add("--write-every", type=float, default=2.0, help="seconds between PATCHes")
    add("--workers", type=int, default=None, help="default: one per core")
    add("--cache", choices=("on", "off"), default="on", help="API_CACHE; on, as deployed")
    add("--cache-max-mib", type=int, default=64, help="API_CACHE_MAX_BYTES in MiB (64)")
    add("--label", default="soak")
    args = parser.parse_args(argv)
    started = datetime.now(UTC)
    command = command_line("bench.soak", argv)
    counts = prepare_catalogue(args.database_url, say=print)
    facts = run_facts(args.database_url)
    inputs = sample_inputs(args.database_url)
    token = issue_token(args.database_url, "soak-curator")
    settings = {
        "GUNICORN_API_MAX_REQUESTS": "0",
        "API_AUTH_FAILURES_PER_MINUTE": "1000",
        "API_CACHE": "1" if args.cache == "on" else "0",
        "API_CACHE_MAX_BYTES": str(args.cache_max_mib * 1024 * 1024),
    }
    if args.workers:
        settings["GUNICORN_API_WORKERS"] = str(args.workers)
    with ManagedServer(spec(args.database_url, **settings)) as server:
        print(f"aioapi on port {server.spec.port}; log {server.log_path}")
        result = asyncio.run(soak(args, server, inputs, token))
    allowed = FLAT_MIB + (args.cache_max_mib if args.cache == "on" else 0)
    judged = verdict(result["samples"], args.warm_up, allowed)
    tally: Tally = result["tally"]
    results = {
        "command": command,
        "server_command": " ".join(server.spec.argv),
        "server_settings": settings,
        "options": vars(args),
        "catalogue": counts,
        "facts": ended(facts),
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
    publish(args.label, started, results, report(result, judged, results))
    clean = not tally.errors and not tally.unexpected
    return 0 if clean and judged["flat_rss"] and judged["flat_backends"] else 1


if __name__ == "__main__":
    sys.exit(main())
