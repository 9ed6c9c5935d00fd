"""The stored search document of films and people (movies.search explains the search).

PostgreSQL: the unaccent extension; ``movies_search_fold`` (lower case, accents
and punctuation folded away) and ``movies_search_title`` (the same without a
leading article), declared IMMUTABLE so stored columns and indexes can use them
(``unaccent(text)`` itself is only STABLE: it reads its dictionary by search
path; the two-argument form with a schema-qualified dictionary is what the
PostgreSQL documentation shows for such a wrapper); stored generated columns
``movies_movie.search_title`` and ``search_words`` and ``movies_person.search_name``
kept by PostgreSQL itself on every write path (the admin, the API, the importer's
COPY, the synthetic generator); their B-tree, trigram and GIN indexes.

SQLite: an FTS5 index of titles (``movies_movie_fts``, external content: the
titles stay in ``movies_movie``; rowid = film id, accents folded by its
tokenizer) kept by triggers on ``movies_movie``, ranked with ``bm25()``.
"""

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

POSTGRES = [
    (
        "CREATE EXTENSION IF NOT EXISTS unaccent",
        None,
    ),
    (
        "CREATE EXTENSION IF NOT EXISTS fuzzystrmatch",
        None,
    ),
    (
        r"""
        CREATE FUNCTION movies_search_fold(text) RETURNS text
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
        RETURN btrim(regexp_replace(
            lower(public.unaccent('public.unaccent'::regdictionary, $1)),
            '[^[:alnum:]]+', ' ', 'g'))
        """,
        "DROP FUNCTION movies_search_fold(text)",
    ),
    (
        r"""
        CREATE FUNCTION movies_search_title(text) RETURNS text
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
        RETURN regexp_replace(movies_search_fold($1), '^(the|a|an) (?=.)', '')
        """,
        "DROP FUNCTION movies_search_title(text)",
    ),
    (
        """
        ALTER TABLE movies_movie
          ADD COLUMN search_title text
            GENERATED ALWAYS AS (movies_search_title(title)) STORED,
          ADD COLUMN search_words tsvector
            GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, movies_search_title(title)))
            STORED
        """,
        "ALTER TABLE movies_movie DROP COLUMN search_title, DROP COLUMN search_words",
    ),
    (
        """
        ALTER TABLE movies_person ADD COLUMN search_name tsvector
          GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, movies_search_fold(name))) STORED
        """,
        "ALTER TABLE movies_person DROP COLUMN search_name",
    ),
    # The words of every title, for typo correction (pg_trgm's documented way: compare
    # a query word with the distinct words, not with every title). Kept by statement
    # triggers (one INSERT per COPY or bulk insert, not per row); a word is never
    # removed: a stale one only offers a correction that matches nothing.
    (
        "CREATE TABLE movies_search_word (word text PRIMARY KEY)",
        "DROP TABLE movies_search_word",
    ),
    (
        """
        INSERT INTO movies_search_word
        SELECT DISTINCT w FROM movies_movie, regexp_split_to_table(search_title, ' ') w
        WHERE length(w) >= 3
        """,
        None,
    ),
    (
        "CREATE INDEX search_word_trgm ON movies_search_word USING gin (word gin_trgm_ops)",
        None,
    ),
    (
        """
        CREATE FUNCTION movies_search_words_add() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO movies_search_word
            SELECT DISTINCT w FROM new_rows, regexp_split_to_table(new_rows.search_title, ' ') w
            WHERE length(w) >= 3
            ON CONFLICT DO NOTHING;
            RETURN NULL;
        END $$
        """,
        "DROP FUNCTION movies_search_words_add()",
    ),
    (
        """
        CREATE TRIGGER movies_search_words_insert AFTER INSERT ON movies_movie
        REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
        EXECUTE FUNCTION movies_search_words_add()
        """,
        "DROP TRIGGER movies_search_words_insert ON movies_movie",
    ),
    (
        """
        CREATE TRIGGER movies_search_words_update AFTER UPDATE ON movies_movie
        REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
        EXECUTE FUNCTION movies_search_words_add()
        """,
        "DROP TRIGGER movies_search_words_update ON movies_movie",
    ),
    # A search's words, read once per search (movies.search.ranked): the title part
    # (folded, no leading article, no trailing year), the year, and tsqueries of
    # every word (a word of 4+ letters no title has: also its nearest title words
    # within two edits; the last word as a prefix too if it has 3+ letters: a
    # shorter prefix matches too many words to read their index entries) and of any word. The trigram threshold is lowered
    # here only: two swapped letters in a short word share few trigrams.
    (
        r"""
        CREATE FUNCTION movies_search_parse(
            q text, OUT t text, OUT y int, OUT whole text, OUT words text[],
            OUT tand tsquery, OUT tor tsquery)
        LANGUAGE plpgsql STABLE PARALLEL SAFE
        SET pg_trgm.similarity_threshold = 0.2 AS $$
        DECLARE
            f text := movies_search_fold(q);
        BEGIN
            IF f ~ '^.+ (18[7-9][0-9]|19[0-9][0-9]|20[0-9][0-9]|2100)$' THEN
                y := right(f, 4)::int;
                t := movies_search_title(left(f, -5));
            ELSE
                t := movies_search_title(f);
            END IF;
            whole := movies_search_title(f);
            words := array_remove(string_to_array(t, ' '), '');
            SELECT to_tsquery('simple', string_agg(
                '(' || array_to_string(array_prepend(
                    quote_literal(w)
                    || CASE WHEN n = cardinality(words) AND length(w) >= 3 THEN ':*' ELSE '' END,
                    fixes), ' | ') || ')',
                ' & ' ORDER BY n))
            INTO tand
            FROM (
                SELECT w, n, ARRAY(
                    SELECT quote_literal(v.word) FROM (
                        SELECT word FROM movies_search_word
                        WHERE length(w) >= 4 AND word % w
                          AND NOT EXISTS (SELECT FROM movies_search_word known WHERE known.word = w)
                        ORDER BY word <-> w LIMIT 20
                    ) v
                    WHERE levenshtein(v.word, w) <= 2
                    ORDER BY levenshtein(v.word, w), v.word <-> w LIMIT 3
                ) AS fixes
                FROM unnest(words) WITH ORDINALITY AS x(w, n)
            ) z;
            SELECT to_tsquery('simple', string_agg(quote_literal(w), ' | '))
            INTO tor
            FROM unnest(words) w
            WHERE length(w) >= 3
              AND w <> ALL ('{the,and,of,in,on,to,for,with,at,by,from}'::text[]);
        END $$
        """,
        "DROP FUNCTION movies_search_parse(text)",
    ),
    (
        "CREATE INDEX movie_search_title ON movies_movie (search_title text_pattern_ops)",
        "DROP INDEX movie_search_title",
    ),
    (
        "CREATE INDEX movie_search_title_trgm ON movies_movie USING gin (search_title gin_trgm_ops)",
        "DROP INDEX movie_search_title_trgm",
    ),
    (
        "CREATE INDEX movie_search_words ON movies_movie USING gin (search_words)",
        "DROP INDEX movie_search_words",
    ),
    (
        "CREATE INDEX person_search_name ON movies_person USING gin (search_name)",
        "DROP INDEX person_search_name",
    ),
]

SQLITE = [
    (
        """
        CREATE VIRTUAL TABLE movies_movie_fts USING fts5(
            title, content='movies_movie', content_rowid='id',
            tokenize='unicode61 remove_diacritics 2'
        )
        """,
        "DROP TABLE movies_movie_fts",
    ),
    (
        "INSERT INTO movies_movie_fts (movies_movie_fts) VALUES ('rebuild')",
        None,
    ),
    (
        """
        CREATE TRIGGER movies_movie_fts_insert AFTER INSERT ON movies_movie BEGIN
            INSERT INTO movies_movie_fts (rowid, title) VALUES (new.id, new.title);
        END
        """,
        "DROP TRIGGER movies_movie_fts_insert",
    ),
    (
        """
        CREATE TRIGGER movies_movie_fts_update AFTER UPDATE OF title ON movies_movie BEGIN
            INSERT INTO movies_movie_fts (movies_movie_fts, rowid, title)
                VALUES ('delete', old.id, old.title);
            INSERT INTO movies_movie_fts (rowid, title) VALUES (new.id, new.title);
        END
        """,
        "DROP TRIGGER movies_movie_fts_update",
    ),
    (
        """
        CREATE TRIGGER movies_movie_fts_delete AFTER DELETE ON movies_movie BEGIN
            INSERT INTO movies_movie_fts (movies_movie_fts, rowid, title)
                VALUES ('delete', old.id, old.title);
        END
        """,
        "DROP TRIGGER movies_movie_fts_delete",
    ),
]


def _statements(schema_editor: BaseDatabaseSchemaEditor) -> list[tuple[str, str | None]]:
    vendor = schema_editor.connection.vendor
    return POSTGRES if vendor == "postgresql" else SQLITE if vendor == "sqlite" else []


def create(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    for forward, _ in _statements(schema_editor):
        schema_editor.execute(forward, None)  # None: no placeholders (% is an operator)


def drop(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    for _, backward in reversed(_statements(schema_editor)):
        if backward is not None:
            schema_editor.execute(backward, None)


class Migration(migrations.Migration):
    dependencies = [("movies", "0008_text_and_poster_validators")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
