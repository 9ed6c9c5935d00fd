"""ORM expressions the selectors need that Django has on one backend only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from django.db.models import (
    BooleanField,
    Expression,
    F,
    Field,
    FloatField,
    Func,
    IntegerField,
    QuerySet,
    Subquery,
    TextField,
)


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


class SortKey(Func):
    """A nullable sort field as a key that is never NULL: ``COALESCE(field, sentinel)``.

    The list puts unrated films last in both directions. As a key, NULL becomes a
    value past every rating in the direction of the sort (11 ascending, -1
    descending; the column's check keeps ratings in 0-10), so the order is the
    same, every keyset bound is a value, and one index on the expression serves
    the sort and its deep pages as a range scan (an ``OR rating IS NULL`` in the
    bound made the planner read the NULL tail or the whole index: ~1 s at 1M films).
    The sentinel is written into the SQL, not bound: only then is the expression
    the one the index was built on, also in a prepared statement's generic plan.
    """

    template = "COALESCE(%(expressions)s, %(sentinel)s)"

    def __init__(self, field: str, sentinel: int) -> None:
        if type(sentinel) is not int:  # written into the SQL: only ever an int
            raise TypeError(f"the sentinel is an int, not {sentinel!r}")
        super().__init__(F(field), sentinel=sentinel, output_field=FloatField())
        self.sorted_field, self.sentinel = field, sentinel

    def deconstruct(self) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
        return "movies.expressions.SortKey", (self.sorted_field, self.sentinel), {}


class Negated(Func):
    """``(-field)``: a descending key as an ascending one, so that one row comparison
    (:class:`RowAfter`) bounds a keyset whose columns run in mixed directions (a
    filmography: newest year first, then title, film and role ascending). Written
    without parameters, as :class:`SortKey` is, so that it is the expression its
    index was built on.
    """

    template = "(-%(expressions)s)"

    def __init__(self, field: str) -> None:
        super().__init__(F(field), output_field=IntegerField())
        self.negated_field = field

    def deconstruct(self) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
        return "movies.expressions.Negated", (self.negated_field,), {}


class RowAfter(Expression):
    """``(a, b) > (x, y)`` (``<`` when ``descending``): the rows after a keyset boundary.

    One row comparison, which PostgreSQL's B-tree starts a range scan at (an index
    condition on both columns); SQLite plans row values the same way. The OR that
    spells it out (``a > x OR (a = x AND b > y)``) is only a filter: the scan
    started at ``a >= x`` and read every row of a long run of equal keys (a year
    holds ~7,000 films at 1M) before the boundary.
    """

    conditional = True
    output_field = BooleanField()

    def __init__(self, columns: Sequence[Any], values: Sequence[Any], *, descending: bool) -> None:
        super().__init__()
        if len(columns) != len(values):
            raise ValueError("a row comparison needs as many values as columns")
        self.columns, self.values = list(columns), list(values)
        self.descending = descending

    def get_source_expressions(self) -> list[Any]:
        return [*self.columns, *self.values]

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        width = len(self.columns)
        self.columns, self.values = list(exprs[:width]), list(exprs[width:])

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:  # type: ignore[override]
        sides: list[str] = []
        params: list[Any] = []
        for side in (self.columns, self.values):
            parts = []
            for expression in side:
                sql, part_params = compiler.compile(expression)
                parts.append(sql)
                params.extend(part_params)
            sides.append(f"({', '.join(parts)})")
        op = "<" if self.descending else ">"
        return f"{sides[0]} {op} {sides[1]}", params


class JsonTextArray(ValueArray):
    """The ``value`` column of an ordered subquery as JSON array text (``'["a","b"]'``):
    what ``movies.models.NameListField`` stores, built by the database in one UPDATE."""

    template = "array_to_json(ARRAY(%(subquery)s))::text"

    def __init__(self, queryset: QuerySet[Any, Any]) -> None:
        Subquery.__init__(self, queryset, output_field=TextField())
