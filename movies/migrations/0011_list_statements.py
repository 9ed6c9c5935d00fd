"""Every read at index speed (issue 28).

* ``Movie.genre_list``, each film's genre names on its row, and
  ``Genre.movie_count`` (movies.genre_copies), filled here for what is stored.
* The rating sort's keys, one index per direction (movies.expressions.SortKey);
  they replace ``movie_rating_desc_id`` (0006), which only ``-rating`` walked.
* Credits by (movie, role, billing order, id): a film's credits in the order its
  detail lists them, one index range scan and no sort.

The indexes come before the films are updated: an index built in the transaction
that updated its table waits (``pg_index.indcheckxmin``) until every snapshot
older than that transaction is gone, and the planner cannot use it before.
"""

from typing import Any

import django.db.models.expressions
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

import movies.expressions
import movies.models


def fill_copies(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    from movies.genre_copies import recount, refresh_names

    movie = apps.get_model("movies", "Movie")
    through = movie._meta.get_field("genres").remote_field.through
    refresh_names(movie.objects.filter(pk__in=through.objects.values("movie_id")))
    recount(apps.get_model("movies", "Genre").objects.all())


def add_genre_list(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    movie = apps.get_model("movies", "Movie")
    if schema_editor.connection.vendor != "sqlite":
        schema_editor.add_field(movie, _genre_list(movie))
        return
    # Django's SQLite editor would copy the table into a new one to add a NOT NULL
    # column, which drops the triggers that keep movies_movie_fts (0009) in line.
    table = schema_editor.quote_name(movie._meta.db_table)
    schema_editor.execute(f"ALTER TABLE {table} ADD COLUMN genre_list text NOT NULL DEFAULT '[]'")


def drop_genre_list(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    movie = apps.get_model("movies", "Movie")
    if schema_editor.connection.vendor != "sqlite":
        schema_editor.remove_field(movie, _genre_list(movie))
        return
    table = schema_editor.quote_name(movie._meta.db_table)
    schema_editor.execute(f"ALTER TABLE {table} DROP COLUMN genre_list")


def _genre_list(movie: Any) -> movies.models.NameListField:
    field = movies.models.NameListField(default=list, editable=False)
    field.set_attributes_from_name("genre_list")
    field.model = movie
    return field


def drop_rating_desc(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS movie_rating_desc_id")


def create_rating_desc(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        table = schema_editor.quote_name(apps.get_model("movies", "Movie")._meta.db_table)
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS movie_rating_desc_id ON {table} "
            "(rating DESC NULLS LAST, id DESC)"
        )


class Migration(migrations.Migration):
    dependencies = [("movies", "0010_auth_failures")]

    operations = [
        migrations.AddIndex(
            model_name="movie",
            index=models.Index(
                movies.expressions.SortKey("rating", 11),
                models.F("id"),
                name="movie_rating_key_id",
            ),
        ),
        migrations.AddIndex(
            model_name="movie",
            index=models.Index(
                django.db.models.expressions.OrderBy(
                    movies.expressions.SortKey("rating", -1), descending=True
                ),
                django.db.models.expressions.OrderBy(models.F("id"), descending=True),
                name="movie_rating_key_desc_id",
            ),
        ),
        migrations.RunPython(drop_rating_desc, create_rating_desc, elidable=False),
        migrations.AddIndex(
            model_name="credit",
            index=models.Index(
                fields=["movie", "role", "billing_order", "id"], name="credit_movie_billing"
            ),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name="movie",
                    name="genre_list",
                    field=movies.models.NameListField(default=list, editable=False),
                )
            ],
            database_operations=[
                migrations.RunPython(add_genre_list, drop_genre_list, elidable=False)
            ],
        ),
        migrations.AddField(
            model_name="genre",
            name="movie_count",
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
        migrations.RunPython(fill_copies, migrations.RunPython.noop, elidable=False),
    ]
