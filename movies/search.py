"""Search: the films a user's words mean, best first.

Two uses. ``movie_search_vector``/``movie_search_query`` are the PostgreSQL
full-text *filter* (title and synopsis, web search syntax) that a list with an
explicit ``sort`` and the export apply; migration 0002 indexes that expression.
``ranked`` is the *relevance* search, the list's default order when ``q`` is
given (``sort=relevance``): a bounded set of candidate films with a score each;
for one plain word, on PostgreSQL, the list reads that word's ranked postings
instead (movies.selectors.ranked), which reach every film holding the word.

Relevance on PostgreSQL, what was chosen and why (bench/search_quality, the
judged set of 913 queries; figures in bench/results/2026-12-07-search/):

* A stored search document, kept by PostgreSQL on every write path (migration
  0009): ``search_title``, the title folded (lower case, ``unaccent``,
  punctuation to spaces) without a leading article, and ``search_words``, its
  ``simple`` tsvector (no stemming: a half-typed word is a prefix of the
  title's word, not of its stem); ``movies_person.search_name`` likewise.
  Generated columns need IMMUTABLE functions: ``movies_search_fold`` wraps
  ``unaccent`` with its dictionary named, as PostgreSQL's documentation shows.
* Candidates, each from an index and each bounded, so the cost does not grow
  with the number of matches (the old filter ranked every match: ``q=war``
  1.2-2.1 s at a million films): titles starting with the words (B-tree range
  on ``search_title``, read in the index's own ``text_pattern_ops`` order,
  ``USING ~<~``, so it stops after its limit; the exact title sorts first), the exact whole query
  (a title ending in a number: "blade runner 2049"), titles holding every word
  with the last one as a prefix (GIN on ``search_words``, ``word:*``), and films
  crediting a person named by one of the words whose title holds another
  (GIN on ``search_name``, then the credits).
* Typos: each query word of five letters or more is widened with up to three
  of the catalogue's title words nearest to it by trigram similarity
  (``movies_search_word``, pg_trgm's documented spelling-suggestion table:
  ~14k words for the 36k films). Comparing the query with every title by
  trigram instead (``search_title % q`` on a GIN index) cost 10 ms at 36k
  films, growing with the catalogue, because every trigram posting list is
  read and every loose match rechecked on the heap.
* The score (computed for the candidates only, from the stored columns):
  exact title +4, +1 more as typed (article and all), +1 for a title that
  starts with the text as typed ("the midnig" prefers "The Midnight ..."),
  title starting with the words +2, every word in the title +1, pg_trgm
  word similarity x1.5 and similarity x1 (typos, word order), the query's
  year (a trailing 1870-2100) equal to the film's +1.5, a credited person
  named in the query +1 and the rest of the query equal to the title +3.
  Rounded to 6 decimals so a cursor's score compares equal to itself.
* Considered and not used: RUM (``postgresql-15-rum``, returns matches in
  rank order) ranks by ts_rank, which does not know exact titles, prefixes or
  typos; synopsis matches are left to an explicit sort (the filter below),
  because the synopsis index answers a common word with a bitmap of all its
  matches before any LIMIT.

* Ranked postings for one word (migration 0012, chosen by measurement,
  bench/results/2026-12-07-search-speed/): ``movies_search_posting`` holds, for every
  prefix of 3-10 letters of every title word of up to 15 (a word of 3-10 letters is its
  own longest prefix), the film with the score the statement below gives it when the
  query is that word alone (so the order is the same, computed once per write instead of
  per search; only its +1 for a credited person named by the word is left out), primary
  key (key, -score, film id). A one-word search (the first keystrokes, the bench's
  search scenario) is then one prepared statement that walks that key from its best film
  and joins the page's rows, as the film list walks its sort index, instead of 3-4
  statements (parsing, planning, reading candidates from three indexes and the heap,
  trigram scores), at a few per cent of their CPU. Its cursors reach every film holding
  the word (the candidates below stop after ~150). The word must be plain (ASCII letters
  and digits, any case): the score's as-typed bonuses compare the title with the text
  itself. A word no title holds is searched below, where its typos widen it. The cost is
  in writes and space: ~10 M rows for 1M films before the length bounds (1.16 GB),
  ~5 min to build, ~10 rows rewritten when a film is retitled (statement triggers).
  Precomputing only the best K films per key was the smaller option; its
  triggers would have to refill a key's list from every film holding it when
  one of its K films is retitled or deleted.
* Measured in bench/results/2026-12-07-search-speed/ (the bench's search
  scenario and the judged set's quality, before and after). The general
  statement (below) answers every other search, a few ms of PostgreSQL each,
  measured the same way. Its words are parsed in a statement of their own: as
  CTEs of one statement the plan was costed past ``jit_above_cost`` and
  JIT-compiled on every search (~50 ms); both statements are bound on the
  server (movies.prepared.statement_cursor), so PostgreSQL does not plan them
  per search.

SQLite: an FTS5 index of titles (migration 0009) matched with every word and
the last one as a prefix, ranked by ``bm25()`` and the same exact/prefix/year
bonuses, computed in Python. No typo tolerance and no people there.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from django.contrib.postgres.search import SearchQuery, SearchVector
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Expression

from movies.prepared import Param, statement_cursor

SEARCH_CONFIG = "english"
# Bounds of the candidate set (see the module docstring). Halving them from
# 100/300/100 changed no figure of the judged set at 1M + 36k films and took
# the search scenario from 170 to 183 req/s (bench/results/2026-12-07-search).
PREFIX_LIMIT = 50
WORDS_LIMIT = 100
PEOPLE_LIMIT = 50
# The films a one-word search ranks for the admin or a filtered list: as many as
# the general statement's candidates at most (the unfiltered list pages them all).
POSTINGS_LIMIT = PREFIX_LIMIT + WORDS_LIMIT + PEOPLE_LIMIT
ARTICLES = ("the", "a", "an")
_YEAR = re.compile(r"^(.+) (18[7-9][0-9]|19[0-9][0-9]|20[0-9][0-9]|2100)$")

# websearch_to_tsquery reads every "-" as NOT while it waits for a word, skipping
# spaces and the characters !&|()< there, and PostgreSQL stacks pending operators
# 32 deep: "-" 33 times, or "(-" or "- " repeated, is an error ("tsquery stack too
# small"), not a search. Only a run of NOTs can grow that stack (the binary
# operators unwind it), so a run of them is searched as the one NOT it means.
_NOT_RUN = re.compile(r"-(?:[\s!&|()<]*-)+")


def websearch_text(text: str) -> str:
    """``text`` as websearch_to_tsquery can always parse it."""
    return _NOT_RUN.sub("-", text)


class SearchText(Param):
    """The user's words, bound as websearch_to_tsquery's input (made safe first)."""

    def bind(self, value: Any, connection: BaseDatabaseWrapper) -> Any:
        return super().bind(websearch_text(value), connection)


def movie_search_vector() -> SearchVector:
    return SearchVector("title", "synopsis", config=SEARCH_CONFIG)


def movie_search_query(text: str | Expression) -> SearchQuery:
    """``text`` is the user's words, or a Param standing for them (movies.prepared)."""
    if isinstance(text, str):
        text = websearch_text(text)
    elif isinstance(text, Param):
        text = SearchText(text.name, text.output_field)
    return SearchQuery(text, config=SEARCH_CONFIG, search_type="websearch")


# The postings hold prefixes of 3 to POSTING_KEY_MAX letters of title words of at
# most POSTING_WORD_MAX letters (migration 0012 writes the same numbers). Every key
# costs two trigram similarities over the whole title when a film is written: without
# the bounds a 300-character title of random letters wrote ~250 keys in ~30 ms, with
# them 24 keys in ~4 ms. A longer query word, or a prefix of a longer title word,
# takes the general statement, which reads the title indexes themselves.
POSTING_KEY_MAX = 10
POSTING_WORD_MAX = 15


def posting_key(text: str) -> str | None:
    """The postings key (migration 0012) a search for ``text`` reads, or None: ``text``
    is one word of 3 to POSTING_KEY_MAX letters or digits, plain ASCII in any case, so
    that the key's ranks are the scores the general statement would give (its as-typed
    bonuses compare the title with the text itself, not with its folded form)."""
    word = text.strip().lower()
    if 3 <= len(word) <= POSTING_KEY_MAX and word.isascii() and word.isalnum():
        return word
    return None


def ranked(text: str, using: str) -> list[tuple[int, float]]:
    """(film id, score) of the films ``text`` may mean, best first (ties: lower id)."""
    connection = connections[using]
    key = posting_key(text) if connection.vendor == "postgresql" else None
    if key is not None:
        # One word: its best films from the ranked postings (the list pages them
        # itself, movies.selectors.ranked; this is for the admin and a filtered list).
        with statement_cursor(connection) as cursor:
            cursor.execute(
                "SELECT movie_id, -rank FROM movies_search_posting WHERE key = %s"
                " ORDER BY rank, movie_id LIMIT %s",
                [key, POSTINGS_LIMIT],
            )
            rows = [(int(row[0]), float(row[1])) for row in cursor.fetchall()]
        if rows:
            return rows
    return candidates(text, using)


def candidates(text: str, using: str) -> list[tuple[int, float]]:
    """:func:`ranked` without the postings: the bounded candidates of ``text`` scored
    by one statement (any text: more words, a year, typos, people), best first."""
    connection = connections[using]
    if connection.vendor == "postgresql":
        # Bound on the server (movies.prepared): psycopg PREPAREs both statements
        # on a connection that runs them often, and PostgreSQL stops planning them.
        with statement_cursor(connection) as cursor:
            # Two statements: the second is planned with the search's words as its
            # values (not as the output of a CTE the planner cannot see into).
            cursor.execute(
                "SELECT t, y, whole, words, tand::text, tor::text FROM movies_search_parse(%s)",
                [text],
            )
            t, year, whole, words, tand, tor = cursor.fetchone()
            if not words:
                return []
            params = {
                "t": t,
                "y": year,
                "whole": whole,
                "words": words,
                "tand": tand,
                "tor": tor or "",
                "q": text,
                "people_limit": PEOPLE_LIMIT,
                "prefix_limit": PREFIX_LIMIT,
                "words_limit": WORDS_LIMIT,
            }
            cursor.execute(_POSTGRES_RANKED, params)
            rows = [(int(row[0]), float(row[1])) for row in cursor.fetchall()]
    else:
        rows = _sqlite_ranked(text, connection)
    rows.sort(key=lambda row: (-row[1], row[0]))
    return rows


def fold(text: str) -> str:
    """Lower case, accents and punctuation folded away (SQLite's side of
    ``movies_search_fold``; FTS5's tokenizer folds the titles the same way)."""
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(re.sub(r"[\W_]+", " ", text).split())


def _without_article(folded: str) -> str:
    first, _, rest = folded.partition(" ")
    return rest if first in ARTICLES and rest else folded


def _sqlite_ranked(text: str, connection: BaseDatabaseWrapper) -> list[tuple[int, float]]:
    folded = fold(text)
    year_match = _YEAR.match(folded)
    year = int(year_match.group(2)) if year_match else None
    title = _without_article(year_match.group(1) if year_match else folded)
    words = title.split()
    if not words:
        return []
    match = " ".join(f'"{word}"' for word in words) + "*"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT m.id, m.title, m.year, bm25(movies_movie_fts) FROM movies_movie_fts"
            " JOIN movies_movie m ON m.id = movies_movie_fts.rowid"
            " WHERE movies_movie_fts MATCH %s ORDER BY bm25(movies_movie_fts) LIMIT %s",
            [match, WORDS_LIMIT],
        )
        found = cursor.fetchall()
    rows = []
    for film_id, film_title, film_year, bm25 in found:
        candidate = _without_article(fold(film_title))
        score = (
            4 * (candidate == title)
            + 2 * candidate.startswith(title)
            + 1.5 * (film_year == year)
            - bm25 / (1 - bm25)  # bm25() is negative, better when lower: this is in 0-1
        )
        rows.append((int(film_id), round(score, 6)))
    return rows


_POSTGRES_RANKED = """
WITH people AS MATERIALIZED (
  SELECT DISTINCT ON (c.movie_id) c.movie_id,
    array_to_string(ARRAY(
      SELECT w FROM unnest(%(words)s::text[]) WITH ORDINALITY AS x(w, n)
      WHERE NOT p.search_name @@ to_tsquery('simple', quote_literal(w)) ORDER BY n
    ), ' ') AS rest
  FROM movies_person p
  JOIN movies_credit c ON c.person_id = p.id
  JOIN movies_movie m ON m.id = c.movie_id
  WHERE p.search_name @@ %(tor)s::tsquery AND m.search_words @@ %(tor)s::tsquery
  ORDER BY c.movie_id
  LIMIT %(people_limit)s
), candidates AS (
  (SELECT id FROM movies_movie
   WHERE search_title ~>=~ %(t)s AND search_title ~<~ (%(t)s || chr(1114111))
   ORDER BY search_title USING ~<~ LIMIT %(prefix_limit)s)
  UNION (SELECT id FROM movies_movie WHERE search_title = %(whole)s)
  UNION (SELECT id FROM movies_movie WHERE search_words @@ %(tand)s::tsquery
         LIMIT %(words_limit)s)
  UNION (SELECT movie_id FROM people)
)
SELECT m.id, round((
    4 * (m.search_title = %(t)s OR m.search_title = %(whole)s)::int
    + 2 * (m.search_title ^@ %(t)s)::int
    + (m.search_words @@ %(tand)s::tsquery)::int
    + 1.5 * word_similarity(%(t)s, m.search_title) + similarity(%(t)s, m.search_title)
    + 1.5 * (m.year IS NOT DISTINCT FROM %(y)s)::int
    + (lower(m.title) = lower(%(q)s))::int + (lower(m.title) ^@ lower(%(q)s))::int
    + CASE WHEN pp.movie_id IS NULL THEN 0
           ELSE 1 + 3 * (m.search_title = pp.rest)::int + similarity(pp.rest, m.search_title)
      END
  )::numeric, 6)::float8 AS score
FROM candidates
JOIN movies_movie m ON m.id = candidates.id
LEFT JOIN people pp ON pp.movie_id = m.id
"""
