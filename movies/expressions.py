"""ORM expressions the selectors need that Django has on one backend only."""

from __future__ import annotations

from typing import Any

import orjson
from django.db.models import Field, QuerySet, Subquery


class ListField(Field):  # type: ignore[type-arg]
    """A read-only list column: a PostgreSQL array, or JSON array text on SQLite."""

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> list[Any]:
        if value is None:
            return []
        if isinstance(value, str | bytes):
            return list(orjson.loads(value))
        return list(value)


class ValueArray(Subquery):
    """The one ``value`` column of an ordered subquery, in its order, as one list.

    PostgreSQL: ``ARRAY(subquery)`` (``ArraySubquery``, which keeps the order).
    SQLite: ``json_group_array`` over the ordered subquery; SQLite feeds an
    aggregate the rows of an ORDER BY subquery in that order (it does not flatten
    such a subquery into an aggregate query), and tests/test_prepared.py checks
    the result against the plain ORM on both backends.
    The queryset must select exactly one column named ``value``.
    """

    template = "ARRAY(%(subquery)s)"

    def __init__(self, queryset: QuerySet[Any, Any]) -> None:
        super().__init__(queryset, output_field=ListField())

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, Any]:
        template = "(SELECT json_group_array(value) FROM (%(subquery)s))"
        return self.as_sql(compiler, connection, template=template, **extra)


class JsonRowArray(ValueArray):
    """Several columns of each row of an ordered subquery, as one list of lists.

    The queryset selects one column named ``value``, a ``JSONArray`` of the
    columns wanted: PostgreSQL returns ``jsonb[]``, whose elements psycopg
    decodes; SQLite's ``json()`` keeps each element JSON rather than quoting it
    as text (a value's JSON subtype does not survive the subquery).
    """

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, Any]:
        template = "(SELECT json_group_array(json(value)) FROM (%(subquery)s))"
        return self.as_sql(compiler, connection, template=template, **extra)
