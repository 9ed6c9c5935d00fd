"""PostgreSQL-only: the sequence that numbers change notifications (movies.changes).

Every API worker receives the same notification with the same id, so an id a
client got from one worker means the same point in time to all of them (the
``Last-Event-ID`` of ``GET /api/events``). Nothing on other database vendors.
"""

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

SEQUENCE = "movies_change_seq"


def create(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"CREATE SEQUENCE IF NOT EXISTS {SEQUENCE}")


def drop(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP SEQUENCE IF EXISTS {SEQUENCE}")


class Migration(migrations.Migration):
    dependencies = [("movies", "0004_leaner_indexes")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
