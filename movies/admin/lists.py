"""Changelist pieces that stay fast on a million films.

Each one replaces a stock piece whose cost grows with the table: ``COUNT(*)`` on
every page, filters that scan the table to list their choices, and many-to-many
filters that make Django add ``DISTINCT`` to the whole result.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.functional import cached_property

from movies.models import MIN_YEAR, Genre, Movie

# Below this many rows an exact COUNT(*) is cheap and the planner's estimate is
# at its least accurate (it is -1 for a table never analysed).
ESTIMATE_ABOVE_ROWS = 100_000
# A filtered or searched list is counted exactly up to this many rows; past it,
# the count would read every match (a common word, a big genre: tens of
# thousands of films), so the planner's estimate of the filtered query numbers
# the pages instead.
EXACT_COUNT_UP_TO = 1_000
# Where holding_at_least() notes, on a list's SQL query, how many rows the list
# is known to hold; every clone of the query copies it.
_AT_LEAST = "mymoviedb_rows_at_least"


def holding_at_least(queryset: QuerySet[Any], rows: int) -> QuerySet[Any]:
    """``queryset``, known to hold at least ``rows`` rows. Past EXACT_COUNT_UP_TO,
    EstimatedCountPaginator then skips its capped count, which would read
    EXACT_COUNT_UP_TO rows only to find what the caller already knows."""
    marked = queryset.all()
    setattr(marked.query, _AT_LEAST, rows)
    return marked


class EstimatedCountPaginator(Paginator):
    """Count a large PostgreSQL list from the planner's estimates.

    ``COUNT(*)`` has to visit every row, which at a million films costs more than
    rendering the page. An unfiltered table is counted from ``pg_class.reltuples``,
    kept up to date by autovacuum and ANALYZE. A filtered or searched list is
    counted exactly while it has at most ``EXACT_COUNT_UP_TO`` rows (the count
    stops reading there), and from the planner's estimate of its query past
    that, or from the estimate at once for a list marked by ``holding_at_least``
    as longer. Either is close enough to number the pages. A small table and
    other databases get the exact count.

    ``estimated`` says which it was, so the changelist can say "about" before a
    planner's number (movies/templates/admin/movies/): it can be off severalfold.
    """

    @cached_property
    def count(self) -> int:
        return self._counted[0]

    @property
    def estimated(self) -> bool:
        """Whether :attr:`count` is the planner's number rather than a count."""
        return self._counted[1]

    @cached_property
    def _counted(self) -> tuple[int, bool]:
        """The count, and whether it is an estimate."""
        estimate = self._estimated_count()
        if estimate is not None:
            return estimate, True
        queryset = self.object_list
        if not isinstance(queryset, QuerySet) or connections[queryset.db].vendor != "postgresql":
            return super().count, False
        at_least = getattr(queryset.query, _AT_LEAST, 0)
        if at_least > EXACT_COUNT_UP_TO:
            return self._planned_count(queryset.order_by(), at_least), True
        return self._capped_count(queryset.order_by())

    @classmethod
    def _capped_count(cls, queryset: QuerySet[Any]) -> tuple[int, bool]:
        capped = queryset[: EXACT_COUNT_UP_TO + 1].count()
        if capped <= EXACT_COUNT_UP_TO:
            return capped, False
        return cls._planned_count(queryset, capped), True

    @staticmethod
    def _planned_count(queryset: QuerySet[Any], at_least: int) -> int:
        plan = json.loads(queryset.explain(format="json"))
        return max(at_least, int(plan[0]["Plan"]["Plan Rows"]))

    def _estimated_count(self) -> int | None:
        queryset = self.object_list
        if not isinstance(queryset, QuerySet) or queryset.query.where:
            return None
        connection = connections[queryset.db]
        if connection.vendor != "postgresql":
            return None
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                [connection.ops.quote_name(queryset.model._meta.db_table)],
            )
            row = cursor.fetchone()
        if row is None or row[0] < ESTIMATE_ABOVE_ROWS:
            return None
        return int(row[0])


class DecadeFilter(admin.SimpleListFilter):
    """Films by decade, from a fixed range: listing the choices reads no rows."""

    title = "decade"
    parameter_name = "decade"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        first = MIN_YEAR - MIN_YEAR % 10
        latest = timezone.now().year
        return [(str(d), f"{d}s") for d in range(latest - latest % 10, first - 1, -10)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Movie]) -> QuerySet[Movie]:
        value = self.value()
        if value is None:
            return queryset
        if value not in dict(self.lookup_choices):
            # The changelist answers with its "invalid filter" redirect (?e=1).
            raise IncorrectLookupParameters(f"no such decade: {value}")
        start = int(value)
        return queryset.filter(year__gte=start, year__lt=start + 10)


class GenreFilter(admin.SimpleListFilter):
    """Films of one genre.

    Stock alternatives cost too much at scale: ``RelatedOnlyFieldListFilter``
    runs ``SELECT DISTINCT`` over every film's genres to list its choices, and a
    field filter on ``genres`` makes the changelist add ``DISTINCT`` to the whole
    result. A film has each genre at most once, so this join adds no duplicates.
    """

    title = "genre"
    parameter_name = "genre"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return list(Genre.objects.values_list("slug", "name"))

    def queryset(self, request: HttpRequest, queryset: QuerySet[Movie]) -> QuerySet[Movie]:
        value = self.value()
        return queryset if value is None else queryset.filter(genres__slug=value)
