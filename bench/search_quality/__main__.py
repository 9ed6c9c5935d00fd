"""``python -m bench.search_quality``: hit@1, hit@3, MRR@10 per query class, and latency.

Each query goes through ``movies.selectors.list_movies`` with only ``q`` and ``limit=10``
(the API's default order for a search), in this process, on ``DATABASE_URL``'s database;
one pass warms up, the next are measured."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.scaffold import markdown_table

QUERIES = Path(__file__).resolve().parent / "queries.json"
CLASSES = ("exact", "no_article", "typo", "prefix", "title_year", "person_title")
DEPTH = 10


def run(judged: list[dict[str, Any]], passes: int) -> dict[str, Any]:
    from movies.models import Movie
    from movies.schemas import MovieListQuery
    from movies.selectors import list_movies

    keys = {film["source_key"] for film in judged}
    ids = dict(Movie.objects.filter(source_key__in=keys).values_list("source_key", "id"))
    if missing := keys - ids.keys():
        sys.exit(f"{len(missing)} judged films are not in this database, e.g. {min(missing)}")
    ranks: dict[str, list[int | None]] = defaultdict(list)
    latency: dict[str, list[float]] = defaultdict(list)
    misses: list[str] = []
    for pass_ in range(passes + 1):
        for film in judged:
            target = ids[film["source_key"]]
            for query in film["queries"]:
                started = time.perf_counter()
                page = list_movies(MovieListQuery.model_validate({"q": query["q"], "limit": DEPTH}))
                elapsed = (time.perf_counter() - started) * 1000
                if pass_ == 0:
                    continue  # warm-up
                found = [item["id"] for item in page.items]
                rank = found.index(target) + 1 if target in found else None
                latency[query["class"]].append(elapsed)
                if pass_ == 1:
                    ranks[query["class"]].append(rank)
                    if rank != 1:
                        misses.append(f"{query['class']:12} {rank or '-':>2}  {query['q']!r}")
    return {"ranks": ranks, "latency": latency, "misses": misses}


def table(result: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    every: list[float] = []
    for name in (name for name in CLASSES if result["ranks"].get(name)):
        ranks, times = result["ranks"][name], result["latency"][name]
        every += times
        rows.append({
            "class": name, "queries": len(ranks),
            "hit@1": sum(r == 1 for r in ranks) / len(ranks),
            "hit@3": sum(r is not None and r <= 3 for r in ranks) / len(ranks),
            "mrr@10": sum(1 / r for r in ranks if r) / len(ranks),
            **latencies(times),
        })  # fmt: skip
    total = sum(r["queries"] for r in rows)
    return [*rows, {"class": "all (latency)", "queries": total, **latencies(every)}]


def latencies(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return {"p50_ms": statistics.median(times), "p95_ms": p95, "max_ms": max(times)}


def render(rows: list[dict[str, Any]]) -> str:
    return "\n".join(markdown_table(
        ["class", "queries", "hit@1", "hit@3", "MRR@10", "p50 ms", "p95 ms", "max ms"],
        [[r["class"], r["queries"], *(f"{r[k]:.1%}" if k in r else "" for k in ("hit@1", "hit@3")),
          f"{r['mrr@10']:.3f}" if "mrr@10" in r else "",
          *(f"{r[k]:.1f}" for k in ("p50_ms", "p95_ms", "max_ms"))] for r in rows],
        ("left", *("right",) * 7),
    ))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--queries", type=Path, default=QUERIES)
    add("--passes", type=int, default=1, help="measured passes (latency)")
    add("--misses", action="store_true", help="print every query not at rank 1")
    add("--json", type=Path, help="also write the table and misses here")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mymoviedb.settings")
    os.environ.setdefault("DEBUG", "1")  # a local measurement, not a deployment
    import django

    django.setup()
    from django.db import connection

    from movies.models import Movie

    result = run(json.loads(args.queries.read_text()), args.passes)
    rows = table(result)
    header = (f"{Movie.objects.count()} films on {connection.vendor} "
              f"({connection.settings_dict['NAME']}), {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
              f"{platform.node()}")  # fmt: skip
    print(header, render(rows), *(result["misses"] if args.misses else ()), sep="\n")
    if args.json:
        document = {"header": header, "rows": rows, "misses": result["misses"]}
        args.json.write_text(json.dumps(document, indent=1))


if __name__ == "__main__":
    main()
