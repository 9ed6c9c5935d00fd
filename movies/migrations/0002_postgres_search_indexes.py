"""PostgreSQL-only indexes: full-text over title + synopsis, trigram over names.

SQLite has neither; there the API falls back to substring matching, so these
operations do nothing on other database vendors.
"""

from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps
from django.db.models.functions import Upper

from movies.search import movie_search_vector

FTS_INDEX = "movie_fulltext"
PERSON_TRGM_INDEX = "person_name_trgm"

def _indexes():
    return [
        ("Movie", GinIndex(movie_search_vector(), name=FTS_INDEX)),
        ("Person", GinIndex(OpClass(Upper("name"), name="gin_trgm_ops"), name=PERSON_TRGM_INDEX)),
    ]

def create(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for model_name, index in _indexes():
        schema_editor.add_index(apps.get_model("movies", model_name), index)

def drop(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for model_name, index in _indexes():
        schema_editor.remove_index(apps.get_model("movies", model_name), index)

class Migration(migrations.Migration):
    dependencies = [("movies", "0001_initial")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
