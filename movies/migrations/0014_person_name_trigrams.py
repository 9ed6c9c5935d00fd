"""People by any three characters of their name, in name order (issue 28: ``GET
/api/people?q=``). PostgreSQL only; SQLite filters the name index as before.

A name search is a substring match listed by name. Walking the name index and
testing every name is cheap when matches are dense in the alphabet's start and
slow when they are not (``q=john`` at a million films tested ~33,000 synthetic
names for a page); the trigram index finds every match but in no order, so a
common substring sorts all of them. Here every name is filed under each of its
three-character substrings (upper-cased, as ``icontains`` compares), in (name, id)
order: a name holding the query holds the query's first three characters, so a
page is one range of the primary key, ``key = left(upper(q), 3)``, read in order
and tested against the whole query (movies.selectors.people).

``movies_name_keys(name)`` is the one definition of a name's keys; statement
triggers on ``movies_person`` (transition tables: a COPY of the generator's
people is one INSERT ... SELECT) keep the table in step with every write path. A
person's old rows are found by recomputing their keys (primary-key probes).
"""

from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

POSTGRES = [
    (
        """
        CREATE FUNCTION movies_name_keys(name text) RETURNS SETOF text
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
        BEGIN ATOMIC
            SELECT DISTINCT substr(upper(name), i, 3)
            FROM generate_series(1, length(upper(name)) - 2) AS i;
        END
        """,
        "DROP FUNCTION movies_name_keys(text)",
    ),
    (
        """
        CREATE TABLE movies_person_name_key (
            key text NOT NULL,
            name varchar(200) NOT NULL,
            person_id bigint NOT NULL,
            PRIMARY KEY (key, name, person_id)
        )
        """,
        "DROP TABLE movies_person_name_key",
    ),
    (
        """
        INSERT INTO movies_person_name_key
        SELECT k, p.name, p.id FROM movies_person p, movies_name_keys(p.name) k
        """,
        None,
    ),
    (
        """
        CREATE FUNCTION movies_name_keys_add() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO movies_person_name_key
            SELECT k, n.name, n.id FROM new_rows n, movies_name_keys(n.name) k;
            RETURN NULL;
        END $$
        """,
        "DROP FUNCTION movies_name_keys_add()",
    ),
    (
        """
        CREATE FUNCTION movies_name_keys_drop() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            DELETE FROM movies_person_name_key p
            USING old_rows o, movies_name_keys(o.name) k
            WHERE p.key = k AND p.name = o.name AND p.person_id = o.id;
            RETURN NULL;
        END $$
        """,
        "DROP FUNCTION movies_name_keys_drop()",
    ),
    # An UPDATE trigger with transition tables cannot name its columns (UPDATE OF
    # name): every update statement runs it, and it touches renamed people only.
    (
        """
        CREATE FUNCTION movies_name_keys_rename() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            DELETE FROM movies_person_name_key p
            USING old_rows o JOIN new_rows n ON n.id = o.id AND n.name <> o.name,
                movies_name_keys(o.name) k
            WHERE p.key = k AND p.name = o.name AND p.person_id = o.id;
            INSERT INTO movies_person_name_key
            SELECT k, n.name, n.id
            FROM new_rows n JOIN old_rows o ON o.id = n.id AND n.name <> o.name,
                movies_name_keys(n.name) k;
            RETURN NULL;
        END $$
        """,
        "DROP FUNCTION movies_name_keys_rename()",
    ),
    (
        """
        CREATE FUNCTION movies_name_keys_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            TRUNCATE movies_person_name_key;
            RETURN NULL;
        END $$
        """,
        "DROP FUNCTION movies_name_keys_truncate()",
    ),
    (
        """
        CREATE TRIGGER movies_name_keys_insert AFTER INSERT ON movies_person
        REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
        EXECUTE FUNCTION movies_name_keys_add()
        """,
        "DROP TRIGGER movies_name_keys_insert ON movies_person",
    ),
    (
        """
        CREATE TRIGGER movies_name_keys_update AFTER UPDATE ON movies_person
        REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
        EXECUTE FUNCTION movies_name_keys_rename()
        """,
        "DROP TRIGGER movies_name_keys_update ON movies_person",
    ),
    (
        """
        CREATE TRIGGER movies_name_keys_delete AFTER DELETE ON movies_person
        REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
        EXECUTE FUNCTION movies_name_keys_drop()
        """,
        "DROP TRIGGER movies_name_keys_delete ON movies_person",
    ),
    (
        """
        CREATE TRIGGER movies_name_keys_truncate AFTER TRUNCATE ON movies_person
        FOR EACH STATEMENT EXECUTE FUNCTION movies_name_keys_truncate()
        """,
        "DROP TRIGGER movies_name_keys_truncate ON movies_person",
    ),
    ("ANALYZE movies_person_name_key", None),
]


def create(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        for forward, _ in POSTGRES:
            schema_editor.execute(forward, None)  # None: no placeholders


def drop(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        for _, backward in reversed(POSTGRES):
            if backward is not None:
                schema_editor.execute(backward, None)


class Migration(migrations.Migration):
    dependencies = [("movies", "0013_credit_film_copies")]

    operations = [
        migrations.RunPython(create, drop, elidable=False),
        # The table is the SQL above (PostgreSQL only); the model reads it.
        migrations.CreateModel(
            name="PersonNameKey",
            fields=[
                ("pk", models.CompositePrimaryKey("key", "name", "person", blank=True, editable=False, primary_key=True, serialize=False)),  # noqa: E501
                ("key", models.TextField()),
                ("name", models.CharField(max_length=200)),
                (
                    "person",
                    models.ForeignKey(
                        db_constraint=False,
                        on_delete=models.DO_NOTHING,
                        related_name="+",
                        to="movies.person",
                    ),
                ),
            ],
            options={"managed": False, "db_table": "movies_person_name_key"},
        ),
    ]
