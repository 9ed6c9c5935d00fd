"""The page's rows of a search of several words: the ORM per request, or prepared.

Run from the repository with DATABASE_URL (and DEBUG=0, SECRET_KEY, ALLOWED_HOSTS):
the judged set's first 300 queries of several words, each through
``movies.selectors.films.list_movies``, alternating the two ways twice; prints the
process's CPU and the wall time per search, and whether both gave the same items.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mymoviedb.settings")
    import django

    django.setup()
    from django.db.models import OuterRef

    from movies.models import Movie
    from movies.schemas import MovieListQuery
    from movies.selectors import list_movies, ranked
    from movies.selectors.filters import LIST_FIELDS, genre_names

    judged = json.loads(Path("bench/search_quality/queries.json").read_text())
    queries = [q["q"] for film in judged for q in film["queries"] if " " in q["q"].strip()]
    queries = queries[:300]
    prepared_rows = ranked._rows

    def orm_rows(ids: list[int], using: str) -> list[Any]:
        if not ids:
            return []
        rows = (
            Movie.objects.using(using)
            .filter(id__in=ids)
            .values(*LIST_FIELDS, genre_names=genre_names(OuterRef("pk")))
        )
        by_id = {}
        for row in rows:
            row["genres"] = row.pop("genre_names")
            by_id[row["id"]] = row
        return [by_id[i] for i in ids if i in by_id]

    def search_all() -> list[Any]:
        return [
            list_movies(MovieListQuery.model_validate({"q": q, "limit": 10})).items for q in queries
        ]

    found = {}
    for name, rows in [("orm", orm_rows), ("prepared", prepared_rows)] * 2:
        ranked._rows = rows  # type: ignore[assignment]
        search_all()  # warm-up
        cpu, wall = time.process_time(), time.perf_counter()
        found[name] = search_all()
        cpu_ms = (time.process_time() - cpu) / len(queries) * 1000
        wall_ms = (time.perf_counter() - wall) / len(queries) * 1000
        print(f"{name}: CPU {cpu_ms:.2f} ms, wall {wall_ms:.2f} ms per search ({len(queries)})")
    ranked._rows = prepared_rows
    print("same items:", found["orm"] == found["prepared"])


if __name__ == "__main__":
    main()
