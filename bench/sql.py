"""``python -m bench.sql``: the statement budget, what each read the API serves costs
PostgreSQL. Each read's selector runs once under an ``execute_wrapper`` that captures its
statements; each is then PREPAREd as movies/prepared.py's are (or planned with its values
where the product binds on the client) and ``EXPLAIN (ANALYZE, BUFFERS)`` runs it
``--warm`` times unrecorded (PostgreSQL settles on a plan after five) and ``--runs``
times recorded: medians of execution and planning time, rows, shared buffers. Each
``--database-url`` runs in its own process (one DATABASE_URL per Django process) and
writes ``raw/<label>-<films>.json``; ``table.md`` is rebuilt from every raw file in
``--out``, so runs of other code (``--label before``) sit beside it as columns."""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from bench.scaffold import markdown_table, size_name

RUNS, WARM = 20, 5
# Without per-node timing: its clock reads (two per row per node) would count as execution.
EXPLAIN = "EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, FORMAT JSON)"
DEEP = (0.5, 0.9)  # where the deep keyset pages start, as a fraction of the list
SORTS = ("title", "year", "rating", "updated_at", "created_at", "id")
Read = tuple[str, Callable[[], Any]]


def _reads() -> Iterator[Read]:
    """Every read, named as the table names it, with the call that serves it."""
    from django.db.models import Count

    from movies import selectors
    from movies.cursors import Cursor
    from movies.models import Credit, Movie, Person
    from movies.schemas import FILMOGRAPHY_SORT, FilmographyQuery, MovieListQuery, PeopleListQuery
    from movies.selectors.people import FILMOGRAPHY_ORDER

    def films(**params: Any) -> Callable[[], Any]:
        query = MovieListQuery.model_validate(params)
        return lambda: selectors.list_movies(query)

    def people(**params: Any) -> Callable[[], Any]:
        query = PeopleListQuery.model_validate(params)
        return lambda: selectors.list_people(query)

    yield "list-10", films(limit=10)
    yield "list-100", films(limit=100)
    for sort in SORTS:
        for signed in (sort, f"-{sort}"):
            yield f"sort={signed}", films(sort=signed)
    # A boundary row deep in each order; the rating sorts' 90 % is in their NULL tail.
    total = Movie.objects.count()
    for sort in SORTS:
        for signed in (sort, f"-{sort}"):
            order = selectors.sort_order(signed)
            for depth in DEEP:
                value, row_id = Movie.objects.order_by(*order).values_list(sort, "id")[
                    int(total * depth)
                ]
                for backwards in (False, True):
                    cursor = Cursor(signed, value, row_id, backwards).encode()
                    way = "back" if backwards else "next"
                    yield f"sort={signed} {way} at {depth:.0%}", films(sort=signed, cursor=cursor)
    people_count = Person.objects.count()
    by_credits = Person.objects.annotate(n=Count("credits")).order_by("n", "id")
    median_person, busiest_person = (
        by_credits.values_list("id", flat=True)[min(int(people_count * rank), people_count - 1)]
        for rank in (0.5, 1.0)
    )
    yield "genre=drama", films(genre="drama")
    yield (
        "genre=drama year 1990-2010 -year",
        films(genre="drama", year_min=1990, year_max=2010, sort="-year"),
    )
    yield "year=2000", films(year=2000)
    yield "year 1990-2010", films(year_min=1990, year_max=2010)
    yield "person=median", films(person=median_person)
    yield "person=busiest", films(person=busiest_person)
    yield "q=love sort=title (search)", films(q="love", sort="title")
    by_cast = Movie.objects.annotate(n=Count("credits")).order_by("n", "id")
    for label, rank in (("median", 0.5), ("99th percentile", 0.99), ("busiest", 1.0)):
        movie_id = by_cast.values_list("id", flat=True)[min(int(total * rank), total - 1)]
        yield f"detail, {label} credits", partial(selectors.get_movie, movie_id)
    yield "genres", selectors.list_genres
    yield "people", people()
    yield "people limit=100", people(limit=100)
    yield "people q=john", people(q="john")
    yield "people q=zzyzx (none)", people(q="zzyzx")
    named = Person.objects.order_by("name", "id").values_list("name", "id")
    name, person_id = named[int(people_count * 0.9)]
    for backwards in (False, True):
        cursor = Cursor("name", name, person_id, backwards).encode()
        yield f"people {'back' if backwards else 'next'} at 90%", people(cursor=cursor)
    yield "person, median credits", partial(selectors.get_person, median_person)
    yield "person, busiest credits", partial(selectors.get_person, busiest_person)
    # The busiest person's filmography past its first page, in the order it lists it.
    credits = Credit.objects.filter(person_id=busiest_person).order_by(*FILMOGRAPHY_ORDER)
    count = credits.count()
    for depth in (0.5, 0.9):
        year, title, role, movie_id = credits.values_list(
            "movie_year", "movie_title", "role", "movie_id"
        )[int(count * depth)]
        for backwards in (False, True):
            cursor = Cursor(FILMOGRAPHY_SORT, [year, title, role], movie_id, backwards).encode()
            page = FilmographyQuery.model_validate({"cursor": cursor})
            way = "back" if backwards else "next"
            yield (
                f"person films, busiest, {way} at {depth:.0%}",
                partial(selectors.get_filmography, busiest_person, page),
            )
    yield "person=busiest sort=-title", films(person=busiest_person, sort="-title")
    yield "person=busiest sort=id", films(person=busiest_person, sort="id")
    yield "people q=jo (two letters)", people(q="jo")


Captured = tuple[str, list[Any], bool]  # SQL, parameters, PREPAREd by the product


@contextmanager
def captured(statements: list[Captured], using: str = "default") -> Iterator[None]:
    """Every statement run on ``using`` meanwhile, appended to ``statements``."""
    import psycopg
    from django.db import connections

    def capture(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        cursor = context["cursor"].cursor
        # Bound on the server, and by a cursor that prepares (plan_each's never does).
        prepares = not isinstance(cursor, psycopg.ClientCursor) and getattr(
            cursor, "prepares", True
        )
        statements.append((sql, list(params or ()), prepares))
        return execute(sql, params, many, context)

    with connections[using].execute_wrapper(capture):
        yield


def _numbered(sql: str) -> str:
    """Django's ``%s`` placeholders as PostgreSQL's ``$1, $2, ...`` (``%%`` is a ``%``)."""
    count = iter(range(1, sql.count("%s") + 1))
    return re.sub(r"%s|%%", lambda m: "%" if m.group() == "%%" else f"${next(count)}", sql)


def _explain(
    raw: Any, sql: str, params: list[Any], prepares: bool, runs: int, warm: int
) -> dict[str, Any]:
    """``sql`` as the product runs it: PREPAREd and EXECUTEd when the product prepares
    it (psycopg, after DB_PREPARE_THRESHOLD runs), else planned each time with its
    values, which its values written in reproduce (``prepared.run(plan_each=True)``)."""
    import psycopg

    with raw.cursor() as plain, psycopg.ClientCursor(raw) as literal:
        run_sql = sql
        if prepares:
            plain.execute(f"PREPARE budget AS {_numbered(sql)}")
            marks = ", ".join(["%s"] * len(params))
            run_sql = f"EXECUTE budget({marks})" if params else "EXECUTE budget"
        plans = []
        for run in range(warm + runs):
            row = literal.execute(f"{EXPLAIN} {run_sql}", params).fetchone()
            if run >= warm and row:
                plans.append(row[0][0])
        if prepares:
            plain.execute("DEALLOCATE budget")
    top = plans[-1]["Plan"]
    return {
        "sql": sql, "prepared": prepares, "params": [str(param) for param in params],
        "execution_ms": statistics.median(plan["Execution Time"] for plan in plans),
        "planning_ms": statistics.median(plan["Planning Time"] for plan in plans),
        "rows": top["Actual Rows"],
        "buffers": top.get("Shared Hit Blocks", 0) + top.get("Shared Read Blocks", 0),
        "plan": outline(top),
    }  # fmt: skip


def outline(node: dict[str, Any], depth: int = 0) -> list[str]:
    """A plan as one line per node: what it read, how, rows, loops, buffers."""
    what = [node["Node Type"]]
    for key in ("Index Name", "Relation Name", "Index Cond", "Filter", "Sort Key", "Join Type"):
        if key in node:
            what.append(f"{key.lower()}: {node[key]}")
    buffers = node.get("Shared Hit Blocks", 0) + node.get("Shared Read Blocks", 0)
    counts = f"rows={node.get('Actual Rows')} loops={node.get('Actual Loops')} buf={buffers}"
    lines = ["  " * depth + "; ".join(what) + f" ({counts})"]
    for child in node.get("Plans", ()):
        lines += outline(child, depth + 1)
    return lines


def measure(label: str, runs: int, warm: int, only: str | None) -> dict[str, Any]:
    """Every read's statements on Django's default database, measured."""
    from django.db import connection

    from movies.models import Movie

    # Django's own connection (a test's rows are in its transaction); the named
    # statement "budget" is not one of psycopg's ("_pg3_...").
    connection.ensure_connection()
    raw = connection.connection
    result: dict[str, Any] = {"label": label, "films": Movie.objects.count(), "reads": []}
    for name, call in _reads():
        if only and not re.search(only, name):
            continue
        statements: list[Captured] = []
        with captured(statements):
            call()
        explained = [_explain(raw, *statement, runs, warm) for statement in statements]
        result["reads"].append({"name": name, "statements": explained})
        costs = ", ".join(f"{s['execution_ms']:.3f} ms" for s in explained)
        print(f"{result['films']:>8} {name}: {costs}", file=sys.stderr)
    return result


def report(out: Path) -> str:
    """The README's table: one row per read, a column group per raw file."""
    runs = [json.loads(path.read_text()) for path in sorted((out / "raw").glob("*.json"))]
    runs.sort(key=lambda run: (run["films"], run["label"] != "before", run["label"]))
    names = list(dict.fromkeys(read["name"] for run in runs for read in run["reads"]))
    head = ["read"] + [f"{run['label']} {size_name(run['films'])}" for run in runs]

    def cell(run: dict[str, Any], name: str) -> str:
        read: dict[str, Any] = next(
            (r for r in run["reads"] if r["name"] == name), {"statements": []}
        )
        return " + ".join(f"{s['execution_ms']:.3f} / {s['planning_ms']:.3f}"
                          f"{'' if s.get('prepared', True) else '*'}; "
                          f"{s['rows']} rows, {s['buffers']} buf"
                          for s in read["statements"])  # fmt: skip

    return "\n".join([
        "Per read: execution / planning median (ms) of "
        f"{RUNS} `{EXPLAIN.split(', FORMAT')[0]})`, rows returned, shared buffers touched.",
        "A read of two statements shows both, joined by `+`. `*`: bound on the client and",
        "planned with its values each time (`prepared.run(plan_each=True)`); the rest are",
        "PREPAREd, as psycopg prepares them, after 5 unrecorded runs.",
        "",
        *markdown_table(head, [[name, *(cell(run, name) for run in runs)] for name in names]),
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sql", description=__doc__.split("\n")[0])
    add = parser.add_argument
    add("--database-url", action="append", default=[], help="repeatable")
    add("--label", default="after", help="the column's name (e.g. before)")
    add("--out", type=Path, default=Path("bench/results/2026-12-07-sql"))
    add("--runs", type=int, default=RUNS)
    add("--warm", type=int, default=WARM)
    add("--only", help="a regular expression: the reads whose names match")
    add("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        import django

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mymoviedb.settings")
        django.setup()
        result = measure(args.label, args.runs, args.warm, args.only)
        raw = args.out / "raw" / f"{args.label}-{size_name(result['films'])}.json"
        raw.parent.mkdir(parents=True, exist_ok=True)
        if args.only and raw.exists():  # measured again: the other reads stay
            reads = {read["name"]: read for read in json.loads(raw.read_text())["reads"]}
            reads.update((read["name"], read) for read in result["reads"])
            result["reads"] = list(reads.values())
        raw.write_text(json.dumps(result, indent=1, default=str) + "\n")
        return 0
    for url in args.database_url:
        forwarded = [f"--{name}={getattr(args, name)}" for name in ("label", "out", "runs", "warm")]
        if args.only:
            forwarded.append(f"--only={args.only}")
        env = {**os.environ, "DATABASE_URL": url, "DEBUG": os.environ.get("DEBUG", "1")}
        command = [sys.executable, "-m", "bench.sql", "--child", *forwarded]
        subprocess.run(command, env=env, check=True)
    table = args.out / "table.md"
    table.write_text(report(args.out))
    print(table.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
