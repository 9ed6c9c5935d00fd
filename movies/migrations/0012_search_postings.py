"""Ranked postings: for every prefix of 3 to 10 letters of every title word of up to 15
(movies.search.POSTING_KEY_MAX, POSTING_WORD_MAX), the films holding it with the score a search for that one word gives them
(movies.search explains why). PostgreSQL only; SQLite searches its FTS5 index.

``movies_search_keys(title, search_title)`` is the one definition of a film's keys
and ranks; statement triggers on ``movies_movie`` (with transition tables, so a
COPY of a million films is one INSERT ... SELECT) keep the table in step with
every write path: the admin, the API, the importer and the synthetic generator.
A rank is a pure function of the title, so a film's old postings are deleted by
recomputing them (exact primary-key probes, no index on ``movie_id`` needed).

Building it at 1,036,248 films: ~10.1 M rows, ~5 min on the shared 2-core
machine (the trigram scores), 1.16 GB with its primary key.
"""

from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

POSTGRES = [
    # The score movies.search's general statement gives a film for a query that is
    # the key alone, typed in lower case (exact +4, starts with it +2, holds it +1,
    # trigram word similarity x1.5 and similarity x1, the title as typed equal +1
    # and starting with it +1), negated so that the best film comes first in the
    # primary key's order; rounded as that statement rounds it.
    (
        r"""
        CREATE FUNCTION movies_search_keys(title text, search_title text)
        RETURNS TABLE (key text, rank float8)
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
        BEGIN ATOMIC
            SELECT k.key, -round((
                4 * (search_title = k.key)::int + 2 * (search_title ^@ k.key)::int + 1
                + 1.5 * word_similarity(k.key, search_title) + similarity(k.key, search_title)
                + (lower(title) = k.key)::int + (lower(title) ^@ k.key)::int
              )::numeric, 6)::float8
            FROM (SELECT DISTINCT left(w, n) AS key
                  FROM regexp_split_to_table(search_title, ' ') AS w,
                       generate_series(3, least(length(w), 10)) AS n
                  WHERE length(w) <= 15) AS k;
        END
        """,
        "DROP FUNCTION movies_search_keys(text, text)",
    ),
    (
        """
        CREATE TABLE movies_search_posting (
            key text NOT NULL,
            rank float8 NOT NULL,
            movie_id bigint NOT NULL,
            PRIMARY KEY (key, rank, movie_id)
        )
        """,
        "DROP TABLE movies_search_posting",
    ),
    (
        """
        INSERT INTO movies_search_posting
        SELECT k.key, k.rank, m.id FROM movies_movie m,
            movies_search_keys(m.title, m.search_title) k
        """,
        None,
    ),
    (
        """
        CREATE FUNCTION movies_search_postings_add() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO movies_search_posting
            SELECT k.key, k.rank, n.id FROM new_rows n,
                movies_search_keys(n.title, n.search_title) k;
            RETURN NULL;
        END $$
        """,
        "DROP FUNCTION movies_search_postings_add()",
    ),
    (
        """
        CREATE FUNCTION movies_search_postings_drop() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            DELETE FROM movies_search_posting p
            USING old_rows o, movies_search_keys(o.title, o.search_title) k
            WHERE p.key = k.key AND p.rank = k.rank AND p.movie_id = o.id;
            RETURN NULL;
        END $$
        """,
        "DROP FUNCTION movies_search_postings_drop()",
    ),
    # An UPDATE trigger with transition tables cannot name its columns (UPDATE OF
    # title): every update statement runs it, and it touches retitled films only.
    (
        """
        CREATE FUNCTION movies_search_postings_retitle() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            DELETE FROM movies_search_posting p
            USING old_rows o JOIN new_rows n ON n.id = o.id AND n.title <> o.title,
                movies_search_keys(o.title, o.search_title) k
            WHERE p.key = k.key AND p.rank = k.rank AND p.movie_id = o.id;
            INSERT INTO movies_search_posting
            SELECT k.key, k.rank, n.id
            FROM new_rows n JOIN old_rows o ON o.id = n.id AND n.title <> o.title,
                movies_search_keys(n.title, n.search_title) k;
            RETURN NULL;
        END $$
        """,
        "DROP FUNCTION movies_search_postings_retitle()",
    ),
    (
        """
        CREATE FUNCTION movies_search_postings_truncate() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            TRUNCATE movies_search_posting;
            RETURN NULL;
        END $$
        """,
        "DROP FUNCTION movies_search_postings_truncate()",
    ),
    (
        """
        CREATE TRIGGER movies_search_postings_insert AFTER INSERT ON movies_movie
        REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
        EXECUTE FUNCTION movies_search_postings_add()
        """,
        "DROP TRIGGER movies_search_postings_insert ON movies_movie",
    ),
    (
        """
        CREATE TRIGGER movies_search_postings_update AFTER UPDATE ON movies_movie
        REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
        EXECUTE FUNCTION movies_search_postings_retitle()
        """,
        "DROP TRIGGER movies_search_postings_update ON movies_movie",
    ),
    (
        """
        CREATE TRIGGER movies_search_postings_delete AFTER DELETE ON movies_movie
        REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
        EXECUTE FUNCTION movies_search_postings_drop()
        """,
        "DROP TRIGGER movies_search_postings_delete ON movies_movie",
    ),
    (
        """
        CREATE TRIGGER movies_search_postings_truncate AFTER TRUNCATE ON movies_movie
        FOR EACH STATEMENT EXECUTE FUNCTION movies_search_postings_truncate()
        """,
        "DROP TRIGGER movies_search_postings_truncate ON movies_movie",
    ),
    ("ANALYZE movies_search_posting", None),
]


def create(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        for forward, _ in POSTGRES:
            schema_editor.execute(forward, None)  # None: no placeholders (% is an operator)


def drop(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        for _, backward in reversed(POSTGRES):
            if backward is not None:
                schema_editor.execute(backward, None)


class Migration(migrations.Migration):
    dependencies = [("movies", "0011_list_statements")]

    operations = [
        migrations.RunPython(create, drop, elidable=False),
        # The table is the SQL above (PostgreSQL only); the model reads it.
        migrations.CreateModel(
            name="SearchPosting",
            fields=[
                ("pk", models.CompositePrimaryKey("key", "rank", "movie", blank=True, editable=False, primary_key=True, serialize=False)),  # noqa: E501
                ("key", models.TextField()),
                ("rank", models.FloatField()),
                (
                    "movie",
                    models.ForeignKey(
                        db_constraint=False,
                        on_delete=models.DO_NOTHING,
                        related_name="search_postings",
                        to="movies.movie",
                    ),
                ),
            ],
            options={"managed": False, "db_table": "movies_search_posting"},
        ),
    ]
