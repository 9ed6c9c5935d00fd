"""``manage.py generate_movies --count N --seed S``: a deterministic synthetic catalogue."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from movies.synthetic import GenerateError, default_people, generate_catalogue


def positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number


class Command(BaseCommand):
    help = (
        "Load COUNT synthetic films for SEED: titles, years, ratings, runtimes, synopses, "
        "genres, people, cast and one or two directors per film. The same count, seed and "
        "--people give the same rows. Films are keyed synthetic:SEED:N; if SEED is already "
        "loaded with COUNT films nothing is done, and a different count is refused. "
        "Uses COPY on PostgreSQL, in one transaction."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=positive_int, required=True, help="films to create")
        parser.add_argument("--seed", type=int, required=True, help="random seed")
        parser.add_argument(
            "--people",
            type=positive_int,
            default=None,
            help="size of the people pool (default: count / 4, at least 10)",
        )
        parser.add_argument(
            "--batch-size",
            type=positive_int,
            default=10_000,
            help="films per batch (default 10000)",
        )
        parser.add_argument("--quiet", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        count: int = options["count"]
        people: int = options["people"] or default_people(count)
        if people < 10:
            raise CommandError("--people must be at least 10")
        with tqdm(
            total=count, desc="films", unit=" films", disable=True if options["quiet"] else None
        ) as bar:

            def on_progress(done: int, total: int) -> None:
                bar.update(done - bar.n)

            try:
                report = generate_catalogue(
                    count,
                    options["seed"],
                    people=people,
                    batch_size=options["batch_size"],
                    on_progress=on_progress,
                )
            except GenerateError as exc:
                raise CommandError(str(exc)) from exc
        if report.already_loaded:
            self.stdout.write(
                f"Seed {report.seed} is already loaded with {report.films} films: nothing to do."
            )
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"films:   {report.films} created (seed {report.seed})\n"
                f"people:  {report.people_created} created, {report.people_reused} reused\n"
                f"genres:  {report.genres_created} created\n"
                f"credits: {report.credits} created\n"
                f"time:    {report.seconds:.1f} s"
            )
        )
