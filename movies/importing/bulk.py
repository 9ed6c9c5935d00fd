"""Appending many rows to one table: COPY on PostgreSQL, ``bulk_create`` elsewhere.

For plain appends of rows known to be new (credits, genre links, a synthetic
catalogue). COPY skips building a model instance and an UNNEST parameter per
row, which is most of the client-side cost of a large ``bulk_create``. It
runs on Django's connection, inside whatever transaction is open there, but
bypasses ``execute_wrapper`` hooks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection
from django.db.models import Model

Row = tuple[Any, ...]
ORM_BATCH = 2000


def insert_rows(model: type[Model], columns: Sequence[str], rows: Sequence[Row]) -> None:
    """Insert ``rows`` (values in ``columns`` order, by attribute name) into ``model``'s table."""
    if not rows:
        return
    if connection.vendor == "postgresql":
        quote = connection.ops.quote_name
        column_of = {f.attname: f.column for f in model._meta.concrete_fields if f.column}
        names = ", ".join(quote(column_of[name]) for name in columns)
        statement = f"COPY {quote(model._meta.db_table)} ({names}) FROM STDIN"
        connection.ensure_connection()
        # The wrapper turns psycopg's errors into django.db ones, as the ORM would.
        with (
            connection.wrap_database_errors,
            connection.connection.cursor() as cursor,
            cursor.copy(statement) as copy,
        ):
            for row in rows:
                copy.write_row(row)
        return
    objects = [model(**dict(zip(columns, row, strict=True))) for row in rows]
    model._default_manager.bulk_create(objects, batch_size=ORM_BATCH)


def analyze(*models: type[Model]) -> None:
    """Refresh the planner's statistics of ``models``' tables after a load: without
    them the first plans price the new rows as an empty (or a much smaller) table
    (a filtered page: 7-11 ms on a fresh import, 0.5 ms after; bench.sql measures it)."""
    tables = [connection.ops.quote_name(model._meta.db_table) for model in models]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"ANALYZE {', '.join(tables)}")
        else:
            # SQLite analyses one table (or everything) per statement.
            for table in tables:
                cursor.execute(f"ANALYZE {table}")
