"""``python -m bench.admin``: the curator admin's pages timed at a million films.

On the reference file plus ``--synthetic`` films (bench/catalogue.py), a curator (staff,
in the Curators group, not a superuser) requests each page through Django's whole stack
in this process (no network, no Gunicorn): server-side time, queries and their time.
Every page is checked, warmed up, then timed ``--rounds`` times in turn. Heavy: run it
under ``flock /tmp/heavy.lock``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import scaffold
from bench.catalogue import CatalogueSpec, prepare
from bench.servers import SHARED_CATALOGUE

TARGET_MEDIAN_MS, TARGET_P95_MS = 300.0, 600.0
DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/mymoviedb_admin1m"
# Words of the synthetic titles (movies/synthetic/factory.py): common, a pair, none; and
# a first name of thousands of synthetic people, whose films are too many to list.
ONE_WORD, TWO_WORDS, NO_MATCH, COMMON_NAME = "harbor", "silent harbor", "qzxjv", "ada"
CURATOR, DEEP_PAGE = "bench-curator", 500


@dataclass(frozen=True)
class Page:  # one request a curator makes; for a changelist, whether films must be found
    name: str
    path: str
    method: str = "GET"
    status: int = 200
    found: bool | None = None


@dataclass
class Timing:
    name: str
    path: str
    method: str
    milliseconds: list[float] = field(default_factory=list)
    queries: int = 0
    sql_milliseconds: float = 0.0

    @property
    def median_ms(self) -> float:
        return statistics.median(self.milliseconds)

    @property
    def p95_ms(self) -> float:
        # With few samples, the inclusive method interpolates toward the slowest.
        return statistics.quantiles(self.milliseconds, n=20, method="inclusive")[18]

    @property
    def within_target(self) -> bool:
        return self.median_ms <= TARGET_MEDIAN_MS and self.p95_ms <= TARGET_P95_MS

    def record(self) -> dict[str, Any]:
        return {**asdict(self), "median_ms": round(self.median_ms, 1),
                "p95_ms": round(self.p95_ms, 1), "max_ms": round(max(self.milliseconds), 1),
                "within_target": self.within_target}  # fmt: skip


@dataclass(frozen=True)
class Landmarks:  # what the pages are about, looked up in the catalogue being measured
    busiest_film: int  # the film with the most credits
    credits: int
    genre: str  # a genre slug
    deep_page: int  # page 500 of the film list, or its last page if it has fewer


def landmarks() -> Landmarks:
    from django.contrib import admin
    from django.db.models import Count

    from movies.models import Credit, Genre, Movie

    by_credits = Credit.objects.values("movie_id").annotate(n=Count("*"))
    if (busiest := by_credits.order_by("-n", "movie_id").first()) is None:
        raise SystemExit("the catalogue has no credits: load films first")
    genre = Genre.objects.order_by("name").values_list("slug", flat=True).first()
    per_page = admin.site.get_model_admin(Movie).list_per_page
    last_page = -(-Movie.objects.count() // per_page)
    return Landmarks(busiest["movie_id"], busiest["n"], genre or "", min(DEEP_PAGE, last_page))


def pages(marks: Landmarks) -> list[Page]:
    films = "/admin/movies/movie/"
    change = f"{films}{marks.busiest_film}/change/"
    autocomplete = "/admin/autocomplete/?app_label=movies&model_name=credit&field_name=person"
    return [
        Page("changelist, first page", films, found=True),
        Page(f"changelist, page {marks.deep_page}", f"{films}?p={marks.deep_page}", found=True),
        Page("search, one word", f"{films}?q={ONE_WORD}", found=True),
        Page("search, two words", f"{films}?q={TWO_WORDS.replace(' ', '+')}", found=True),
        Page("search, no match", f"{films}?q={NO_MATCH}", found=False),
        Page("search, a common name", f"{films}?q={COMMON_NAME}", found=True),
        Page("filter, decade", f"{films}?decade=1990", found=True),
        Page("filter, genre", f"{films}?genre={marks.genre}", found=True),
        Page("filter, decade and genre", f"{films}?decade=1990&genre={marks.genre}", found=True),
        Page(f"change page ({marks.credits} credits)", change),
        Page("person autocomplete", f"{autocomplete}&term=ada"),
        Page("save (change page)", change, method="POST", status=302),
    ]


def form_data(response: Any) -> dict[str, Any]:
    """The POST a browser would send from a change page, as the page rendered it."""
    forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        forms += [inline.formset.management_form, *inline.formset.forms]
    data: dict[str, Any] = {}
    for bound in (bound for form in forms for bound in form):
        value = bound.value()
        if isinstance(value, bool):
            if value:
                data[bound.html_name] = "on"
        elif isinstance(value, list | tuple):
            data[bound.html_name] = [str(v) for v in value]
        elif value is not None:
            data[bound.html_name] = str(value)
    return data


def check(page: Page, response: Any) -> None:
    """A page that answers wrongly is not timed: the benchmark stops, saying why."""
    if response.status_code != page.status:
        raise SystemExit(f"{page.name}: {page.path} answered {response.status_code}")
    if page.found is not None:
        count = response.context["cl"].result_count
        if bool(count) != page.found:
            raise SystemExit(f"{page.name}: {page.path} listed {count} films")


def alternating_saves(client: Any, path: str) -> Iterator[dict[str, Any]]:
    """Change-page POSTs that rename the film and back, each read from the page anew:
    the form carries the film's version, and an older page's save is refused."""
    title = form_data(client.get(path))["title"]
    while True:
        for renamed in (f"{title} (saved)", title):
            yield {**form_data(client.get(path)), "title": renamed}


def measure(
    client: Any, marks: Landmarks, *, rounds: int, warmup: int, say: Callable[[str], None]
) -> list[Timing]:
    """Each page ``warmup`` times untimed, then ``rounds`` times timed, in turn."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    plan = pages(marks)
    saves = alternating_saves(client, next(p.path for p in plan if p.method == "POST"))
    timings = {p.name: Timing(p.name, p.path, p.method) for p in plan}

    def request(page: Page) -> tuple[Any, float, Any]:
        form = next(saves) if page.method == "POST" else None  # prepared before the timer
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.post(page.path, form) if form else client.get(page.path)
            return response, (time.perf_counter() - started) * 1000, captured

    for page in plan:
        check(page, request(page)[0])
    for _ in range(warmup):
        for page in plan:
            request(page)
    for number in range(rounds):
        for page in plan:
            response, elapsed, captured = request(page)
            check(page, response)
            timing = timings[page.name]
            timing.milliseconds.append(elapsed)
            # The same page makes the same queries every time; keep the last round's.
            timing.queries = len(captured.captured_queries)
            timing.sql_milliseconds = sum(float(q["time"]) for q in captured) * 1000
        say(f"round {number + 1}/{rounds} done")
    return list(timings.values())


def curator_client() -> Any:
    """A test client logged in as a curator (created or reset in the Curators group)."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from movies.management.commands.create_demo_curator import curators_group

    user, _ = get_user_model().objects.get_or_create(username=CURATOR, defaults={"is_staff": True})
    user.groups.add(curators_group())
    (client := Client()).force_login(user)
    return client


def report(document: dict[str, Any]) -> str:
    pages = document["pages"]
    return "\n".join([
        *scaffold.header(f"Curator admin at {document['catalogue']['movies']:,} films", document),
        f"Target: median ≤ {TARGET_MEDIAN_MS:.0f} ms and p95 ≤ {TARGET_P95_MS:.0f} ms per page, "
        "server-side (Django's whole stack in one process, no network), "
        f"{document['rounds']} rounds after {document['warmup']} warm-up.",
        "",
        *scaffold.markdown_table(
            ("page", "median ms", "p95 ms", "max ms", "queries", "SQL ms", "within"),
            ((p["name"], f"{p['median_ms']:.1f}", f"{p['p95_ms']:.1f}", f"{p['max_ms']:.1f}",
              p["queries"], f"{p['sql_milliseconds']:.1f}",
              "yes" if p["within_target"] else "**no**") for p in pages),
            align=("left", *("right",) * 5, "left"),
        ),
        "Paths: " + "; ".join(f"{p['name']}: `{p['method']} {p['path']}`" for p in pages),
        "",
    ])  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.admin", description=__doc__)
    add = parser.add_argument
    add("--database-url", default=DEFAULT_DATABASE, help="(%(default)s)")
    add("--source", default=str(SHARED_CATALOGUE), help="reference file (%(default)s)")
    add("--synthetic", type=int, default=1_000_000, help="(%(default)s)")
    add("--seed", type=int, default=1, help="(%(default)s)")
    add("--rounds", type=int, default=20, help="(%(default)s)")
    add("--warmup", type=int, default=2, help="(%(default)s)")
    add("--results-dir", type=Path, default=scaffold.RESULTS)
    args = parser.parse_args(argv)
    started = datetime.now(UTC)
    env = {
        **os.environ, "DATABASE_URL": args.database_url,
        "DJANGO_SETTINGS_MODULE": "mymoviedb.settings",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-admin-only-" + "x" * 40),
        "DEBUG": "0", "ALLOWED_HOSTS": "testserver", "SECURE_SSL_REDIRECT": "0",
        # No static files are served here; an empty directory keeps WhiteNoise quiet.
        "STATIC_ROOT": tempfile.mkdtemp(prefix="bench-admin-static-"),
    }  # fmt: skip
    spec = CatalogueSpec(args.source, args.synthetic, args.seed)
    counts = prepare(args.database_url, spec, env, recreate=False, say=print)
    os.environ.update(env)
    import django

    django.setup()
    from django.test.utils import setup_test_environment

    # Lets the client see each response's template context (the changelist's result
    # count, the change form to save): the test runner's instrumentation.
    setup_test_environment()
    facts = scaffold.run_facts(args.database_url)
    client, marks = curator_client(), landmarks()
    print(f"timing {args.rounds} rounds; busiest film {marks.busiest_film} ({marks.credits})")
    timings = measure(client, marks, rounds=args.rounds, warmup=args.warmup, say=print)
    document = {
        "command": scaffold.command_line("bench.admin", argv), "facts": scaffold.ended(facts),
        "target": {"median_ms": TARGET_MEDIAN_MS, "p95_ms": TARGET_P95_MS},
        "rounds": args.rounds, "warmup": args.warmup, "catalogue": counts,
        "catalogue_spec": asdict(spec), "landmarks": asdict(marks),
        "pages": [timing.record() for timing in timings],
        "all_within_target": all(t.within_target for t in timings),
    }  # fmt: skip
    scaffold.publish("admin", started, document, report(document), base=args.results_dir)
    return 0 if document["all_within_target"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
