"""A credit carries its film's title and year (issue 28: a person's reads at index speed).

A person's filmography is listed newest first, then by title, and the film list's
person filter in the list's order (by title by default). With the film's keys on
the credit, both read one range of an index on the person's credits, a page at a
time, instead of joining every credit to its film and sorting: a person credited
in 10,371 films read all of them for one page.

The copies are written by the database, on both backends: a credit inserted, or
moved to another film, takes its film's title and year; a film whose title or
year changes passes them to its credits. Triggers, not model code, because every
writer must keep them (the ORM, ``QuerySet.update``, the importer's and the
generator's COPY) and a trigger is the one place none of them can skip. Every
writer stores a film before its credits, so a film's insert has no trigger.

The indexes come after the copies are filled, unlike 0011's: built before, every
credit the fill rewrote left an entry in each, and at a million films they came
out about three times the size (bench/results/2026-12-07-sql-people/). The
price is 0011's caveat: built after an update of their table in the same
transaction, they are usable by transactions that start after this one
(``pg_index.indcheckxmin``), which is every request. After this migration at a
million films, ``VACUUM (ANALYZE) movies_credit``: the fill rewrote every credit.
"""

from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

import movies.expressions

POSTGRES = [
    (
        """
        CREATE FUNCTION movies_credit_copy_film() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            film_title varchar(300);
            film_year smallint;
        BEGIN
            SELECT title, year INTO film_title, film_year FROM movies_movie
            WHERE id = NEW.movie_id;
            IF FOUND THEN
                NEW.movie_title := film_title;
                NEW.movie_year := film_year;
            END IF;
            RETURN NEW;
        END $$
        """,
        "DROP FUNCTION movies_credit_copy_film()",
    ),
    (
        """
        CREATE TRIGGER movies_credit_copy_film BEFORE INSERT OR UPDATE OF movie_id
        ON movies_credit FOR EACH ROW EXECUTE FUNCTION movies_credit_copy_film()
        """,
        "DROP TRIGGER movies_credit_copy_film ON movies_credit",
    ),
    (
        """
        CREATE FUNCTION movies_movie_copy_to_credits() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE movies_credit SET movie_title = NEW.title, movie_year = NEW.year
            WHERE movie_id = NEW.id;
            RETURN NULL;
        END $$
        """,
        "DROP FUNCTION movies_movie_copy_to_credits()",
    ),
    (
        """
        CREATE TRIGGER movies_movie_copy_to_credits AFTER UPDATE OF title, year
        ON movies_movie FOR EACH ROW
        WHEN (OLD.title IS DISTINCT FROM NEW.title OR OLD.year IS DISTINCT FROM NEW.year)
        EXECUTE FUNCTION movies_movie_copy_to_credits()
        """,
        "DROP TRIGGER movies_movie_copy_to_credits ON movies_movie",
    ),
    (
        """
        UPDATE movies_credit SET movie_title = m.title, movie_year = m.year
        FROM movies_movie m WHERE m.id = movies_credit.movie_id
        """,
        None,
    ),
]

# SQLite's triggers run after the row is written: the credit is updated in place
# (its triggers do not fire again: SQLite's recursive_triggers is off).
_SQLITE_FILM_OF_NEW = """
    UPDATE movies_credit SET (movie_title, movie_year) =
        (SELECT title, year FROM movies_movie WHERE id = NEW.movie_id)
    WHERE id = NEW.id AND EXISTS (SELECT 1 FROM movies_movie WHERE id = NEW.movie_id);
"""
SQLITE = [
    (
        "CREATE TRIGGER movies_credit_copy_film_insert AFTER INSERT ON movies_credit "
        f"BEGIN {_SQLITE_FILM_OF_NEW} END",
        "DROP TRIGGER movies_credit_copy_film_insert",
    ),
    (
        "CREATE TRIGGER movies_credit_copy_film_move AFTER UPDATE OF movie_id ON movies_credit "
        f"BEGIN {_SQLITE_FILM_OF_NEW} END",
        "DROP TRIGGER movies_credit_copy_film_move",
    ),
    (
        """
        CREATE TRIGGER movies_movie_copy_to_credits AFTER UPDATE OF title, year ON movies_movie
        WHEN OLD.title IS NOT NEW.title OR OLD.year IS NOT NEW.year
        BEGIN
            UPDATE movies_credit SET movie_title = NEW.title, movie_year = NEW.year
            WHERE movie_id = NEW.id;
        END
        """,
        "DROP TRIGGER movies_movie_copy_to_credits",
    ),
    (
        """
        UPDATE movies_credit SET (movie_title, movie_year) =
            (SELECT title, year FROM movies_movie WHERE id = movies_credit.movie_id)
        WHERE EXISTS (SELECT 1 FROM movies_movie WHERE id = movies_credit.movie_id)
        """,
        None,
    ),
]
# The defaults stay in the database: a COPY that does not name the columns (the
# importer's, the generator's) writes them, and the trigger then overwrites them.
COLUMNS = (
    ("movie_title", "varchar(300) NOT NULL DEFAULT ''"),
    ("movie_year", "smallint NOT NULL DEFAULT 0"),
)


def _statements(schema_editor: BaseDatabaseSchemaEditor) -> list[tuple[str, str | None]]:
    return POSTGRES if schema_editor.connection.vendor == "postgresql" else SQLITE


def add_columns(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    # Plain ADD COLUMN on both: Django's SQLite editor would copy the table into a
    # new one to add a NOT NULL column, dropping the triggers made on it. PostgreSQL
    # adds a column with a constant default without rewriting the table.
    for name, definition in COLUMNS:
        schema_editor.execute(f"ALTER TABLE movies_credit ADD COLUMN {name} {definition}")


def drop_columns(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    for name, _ in reversed(COLUMNS):
        schema_editor.execute(f"ALTER TABLE movies_credit DROP COLUMN {name}")


def create(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    for forward, _ in _statements(schema_editor):
        schema_editor.execute(forward, None)  # None: no placeholders


def drop(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    for _, backward in reversed(_statements(schema_editor)):
        if backward is not None:
            schema_editor.execute(backward, None)


class Migration(migrations.Migration):
    dependencies = [("movies", "0012_search_postings")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name="credit",
                    name="movie_title",
                    field=models.CharField(default="", editable=False, max_length=300),
                ),
                migrations.AddField(
                    model_name="credit",
                    name="movie_year",
                    field=models.SmallIntegerField(default=0, editable=False),
                ),
            ],
            database_operations=[
                migrations.RunPython(add_columns, drop_columns, elidable=False)
            ],
        ),
        migrations.RunPython(create, drop, elidable=False),
        migrations.AddIndex(
            model_name="credit",
            index=models.Index(
                models.F("person"),
                movies.expressions.Negated("movie_year"),
                models.F("movie_title"),
                models.F("movie"),
                models.F("role"),
                name="credit_person_filmography",
            ),
        ),
        migrations.AddIndex(
            model_name="credit",
            index=models.Index(
                fields=["person", "movie_title", "movie"], name="credit_person_title"
            ),
        ),
    ]
