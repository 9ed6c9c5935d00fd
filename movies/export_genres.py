"""Genre names of the films of an export, one query per batch of films.

The export writes each film's genre names in name order, as the list does. A
batch's query returns each film's genre ids as one aggregated string (``{3,7}``
on PostgreSQL, ``3,7`` on SQLite). Films share few distinct sets of genres, so
each set is turned into sorted names once and afterwards only looked up: per
film, the genres cost one dictionary lookup instead of a sort.
"""

from __future__ import annotations

from typing import Any

from django.db import connections

from movies.models import Genre, Movie

# A batch whose ids span less than this many times its size is read as one id range.
DENSE_SPAN = 4


class GenreNames:
    """Genre names by film for one export; use it on the export's own thread."""

    def __init__(self, alias: str) -> None:
        self._connection = connections[alias]
        self._alias = alias
        self._postgresql = self._connection.vendor == "postgresql"
        self._load_genres()
        self._sets: dict[str | None, list[str]] = {None: []}  # None: a film without genres
        quote = self._connection.ops.quote_name
        links = Movie.genres.through._meta
        self._movie = quote(links.get_field("movie").column)
        genre = quote(links.get_field("genre").column)
        aggregate = f"array_agg({genre})::text" if self._postgresql else f"group_concat({genre})"
        self._select = f"SELECT {self._movie}, {aggregate} FROM {quote(links.db_table)}"

    def of(self, ids: list[int]) -> list[list[str]]:
        """The genre names of each film of ``ids``, in the same order as ``ids``."""
        found = dict(self._genre_sets(ids))
        sets = self._sets
        missing = [key for key in set(found.values()) if key not in sets]
        for key in missing:
            sets[key] = self._names(key)
        return [sets[found.get(movie_id)] for movie_id in ids]

    def _genre_sets(self, ids: list[int]) -> list[tuple[int, str]]:
        low, high = min(ids), max(ids)
        params: list[Any]
        if high - low < DENSE_SPAN * len(ids):
            # Ids close together (the id order, broad filters): one range scan of
            # the (movie, genre) index, far cheaper than looking each id up. Films
            # of the range outside the batch come back too, and are ignored.
            where, params = f"{self._movie} BETWEEN %s AND %s", [low, high]
        elif self._postgresql:
            # One array literal, not one parameter per film: bound one by one, the
            # ids cost Django and psycopg more than the query itself.
            where, params = (
                f"{self._movie} = ANY(%s::bigint[])",
                ["{" + ",".join(map(str, ids)) + "}"],
            )
        else:
            where, params = f"{self._movie} IN ({', '.join(['%s'] * len(ids))})", ids
        with self._connection.cursor() as cursor:
            cursor.execute(f"{self._select} WHERE {where} GROUP BY {self._movie}", params)
            return cursor.fetchall()

    def _names(self, key: str) -> list[str]:
        ids = [int(part) for part in key.strip("{}").split(",")]
        if any(genre_id not in self._rank for genre_id in ids):
            self._load_genres()  # created after the export started (SQLite: no snapshot)
        return [self._name[genre_id] for genre_id in sorted(ids, key=self._rank.__getitem__)]

    def _load_genres(self) -> None:
        # Ordered by the database, so names sort in its collation, as the list's do.
        genres = Genre.objects.using(self._alias).order_by("name").values_list("id", "name")
        self._name = dict(genres)
        self._rank = {genre_id: rank for rank, genre_id in enumerate(self._name)}
