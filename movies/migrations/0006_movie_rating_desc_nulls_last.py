"""PostgreSQL-only: the index that ``sort=-rating`` walks.

The list puts unrated films (NULL rating) last in both directions. The
(rating, id) index serves ``rating`` (ASC NULLS LAST) and its backward pages;
``-rating`` (DESC NULLS LAST) and its backward pages (ASC NULLS FIRST) need this
one. SQLite cannot order an index's NULLs; there the sort reads the table.
"""

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

INDEX = "movie_rating_desc_id"


def create(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        table = schema_editor.quote_name(apps.get_model("movies", "Movie")._meta.db_table)
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON {table} (rating DESC NULLS LAST, id DESC)"
        )


def drop(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("movies", "0005_change_sequence")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
