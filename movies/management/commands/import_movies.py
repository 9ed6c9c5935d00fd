"""``manage.py import_movies SOURCE``: load films from the reference JSON format."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from movies.importing import (
    ImportAborted,
    ImportReport,
    SourceError,
    import_movies,
    read_source,
)

# Rejections beyond this many are counted, not listed.
MAX_LISTED_REJECTIONS = 50


def positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number


class Command(BaseCommand):
    help = (
        "Import films from a JSON array in the wikipedia-movies format (title, year, cast, "
        "genres, href, extract, thumbnail), read from a path (plain or gzip) or an http(s) "
        "URL. Running it again updates changed films and leaves the rest untouched. "
        "Rejected records are listed by 0-based position with the reason and skipped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("source", help="path to a .json or .json.gz file, or an http(s) URL")
        parser.add_argument(
            "--batch-size",
            type=positive_int,
            default=2000,
            help="films written per transaction (default 2000)",
        )
        parser.add_argument(
            "--timeout", type=float, default=30.0, help="seconds to wait on a URL (default 30)"
        )
        parser.add_argument("--quiet", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        source: str = options["source"]
        try:
            records = read_source(source, timeout=options["timeout"])
        except SourceError as exc:
            raise CommandError(str(exc)) from exc
        # disable=None lets tqdm hide itself when stderr is not a terminal.
        with tqdm(desc="films", unit=" films", disable=True if options["quiet"] else None) as bar:

            def on_progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            try:
                report = import_movies(
                    records, batch_size=options["batch_size"], on_progress=on_progress
                )
            except ImportAborted as exc:
                self._print(exc.report)
                raise CommandError(
                    f"import stopped: {exc}. The {exc.report.created + exc.report.updated} "
                    "films written before it are saved; running the import again resumes."
                ) from exc
        self._print(report)

    def _print(self, report: ImportReport) -> None:
        for rejection in report.rejections[:MAX_LISTED_REJECTIONS]:
            self.stderr.write(f"rejected {rejection}")
        hidden = report.rejected - MAX_LISTED_REJECTIONS
        if hidden > 0:
            self.stderr.write(f"... and {hidden} more rejected records")
        if report.posters_refused:
            self.stderr.write(
                f"warning: {report.posters_refused} thumbnails are not on a public host; "
                "their films were imported without a poster"
            )
        lines = [
            f"records:  {report.records} read, {report.rejected} rejected, "
            f"{report.duplicates} merged into a later record with the same key",
            f"films:    {report.created} created, {report.updated} updated, "
            f"{report.unchanged} unchanged",
            f"people:   {report.people_created} created "
            f"({report.cast_entries_dropped} cast entries were not names)",
            f"genres:   {report.genres_created} created",
            f"credits:  {report.credits_created} created, {report.credits_updated} reordered, "
            f"{report.credits_deleted} removed",
            f"time:     {report.seconds:.1f} s",
        ]
        self.stdout.write(self.style.SUCCESS("\n".join(lines)))
