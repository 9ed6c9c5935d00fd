"""The benchmark's own PostgreSQL database and catalogue: created when missing, dropped
only with ``--recreate-db``. A loaded catalogue is marked with a comment on the database
(what, from where, which seed), so a second run skips the import, and a database holding
anything else is refused rather than overwritten."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

REPO = Path(__file__).resolve().parent.parent
MARKER_PREFIX = "mymoviedb bench catalogue: "
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/mymoviedb_bench"


class CatalogueError(RuntimeError):
    """The database cannot be prepared as asked (the message says what to do)."""


@dataclass(frozen=True)
class CatalogueSpec:  # what the benchmark loads: a Wikipedia-format file, synthetic films
    source: str
    synthetic: int
    seed: int

    def marker(self) -> str:
        return MARKER_PREFIX + json.dumps(asdict(self), sort_keys=True)


def database_name(database_url: str) -> str:
    name = conninfo_to_dict(database_url).get("dbname")
    if not name:
        raise CatalogueError(f"the database URL names no database: {database_url}")
    return str(name)


def maintenance_url(database_url: str) -> str:
    """The same server's ``postgres`` database, for CREATE/DROP DATABASE."""
    return make_conninfo(database_url, dbname="postgres")


def ensure_database(database_url: str, *, recreate: bool) -> bool:
    """Create the database if missing (drop it first with ``recreate``); True if new."""
    name = database_name(database_url)
    with psycopg.connect(maintenance_url(database_url), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists and recreate:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        if not exists or recreate:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return True
    return False


TABLES = {"movies": "movies_movie", "people": "movies_person", "credits": "movies_credit",
          "genres": "movies_genre", "movie_genres": "movies_movie_genres"}  # fmt: skip


def counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Rows per catalogue table; 0 everywhere before the first migration."""
    count = sql.SQL("SELECT count(*) FROM {}")
    return {key: int(scalar(conn, count.format(sql.Identifier(table))))
            if scalar(conn, "SELECT to_regclass(%s)", table) else 0
            for key, table in TABLES.items()}  # fmt: skip


def manage(args: list[str], env: Mapping[str, str]) -> None:
    """Run ``manage.py`` with the servers' environment; a failure stops the bench."""
    command = [sys.executable, str(REPO / "manage.py"), *args]
    completed = subprocess.run(command, cwd=REPO, env=dict(env), check=False)
    if completed.returncode != 0:
        raise CatalogueError(f"{' '.join(command)} failed with exit status {completed.returncode}")


def prepare(
    database_url: str,
    spec: CatalogueSpec,
    env: Mapping[str, str],
    *,
    recreate: bool,
    say: Callable[[str], None],
) -> dict[str, int]:
    """Make the database hold ``spec``'s catalogue; return its row counts."""
    if not spec.source.startswith(("http://", "https://")) and not Path(spec.source).exists():
        raise CatalogueError(f"catalogue file not found: {spec.source} (see --source)")
    created = ensure_database(database_url, recreate=recreate)
    name = database_name(database_url)
    say(f"database {name}: {'created' if created else 'exists'}; migrating")
    manage(["migrate", "--no-input", "--verbosity", "0"], env)
    with psycopg.connect(database_url, autocommit=True) as conn:
        query = "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s"
        row = conn.execute(query, (conn.info.dbname,)).fetchone()
        marker, before = row[0] if row else None, counts(conn)
        if marker == spec.marker():
            say(f"catalogue already loaded ({before['movies']} films); not importing again")
            return before
        if before["movies"]:
            raise CatalogueError(
                f"database {name} already holds {before['movies']} films that are not "
                f"the requested catalogue ({marker or 'no bench marker'}); "
                "pass --recreate-db to drop and rebuild it, or choose another --database-url"
            )
        say(f"importing {spec.source}")
        manage(["import_movies", spec.source], env)
        if spec.synthetic:
            say(f"generating {spec.synthetic} synthetic films (seed {spec.seed})")
            manage(["generate_movies", "--count", str(spec.synthetic), "--seed", str(spec.seed)],
                   env)  # fmt: skip
        # VACUUM too: index-only scans (the credits of the people a search matches) need
        # the visibility map, which autovacuum, maybe off, would set.
        conn.execute("VACUUM (ANALYZE)")
        comment = sql.SQL("COMMENT ON DATABASE {} IS {}")
        conn.execute(comment.format(sql.Identifier(conn.info.dbname), sql.Literal(spec.marker())))
        return counts(conn)


def sample_movie_ids(
    conn: psycopg.Connection[Any], count: int, seed: int, *, exclude: tuple[int, ...] = ()
) -> list[int]:
    """``count`` films that have a cast, in a fixed pseudo-random order for ``seed``."""
    rows = conn.execute(
        """SELECT m.id FROM movies_movie m WHERE NOT (m.id = ANY(%s)) AND EXISTS
             (SELECT 1 FROM movies_credit c WHERE c.movie_id = m.id AND c.role = 'cast')
           ORDER BY md5(m.id::text || %s), m.id LIMIT %s""",
        (list(exclude), str(seed), count),
    )
    return [int(row[0]) for row in rows]


def busiest_movie_ids(conn: psycopg.Connection[Any], count: int, seed: int) -> list[int]:
    """``count`` of the 1 % of films with the most credits (the famous films, which
    people open most), in a fixed pseudo-random order for ``seed``."""
    rows = conn.execute(
        """WITH busiest AS (SELECT movie_id FROM movies_credit GROUP BY movie_id
             ORDER BY count(*) DESC, movie_id
             LIMIT (SELECT ceil(count(*) / 100.0)::int FROM movies_movie))
           SELECT movie_id FROM busiest ORDER BY md5(movie_id::text || %s), movie_id LIMIT %s""",
        (str(seed), count),
    )
    return [int(row[0]) for row in rows]


def scalar(conn: psycopg.Connection[Any], query: Any, *params: object) -> Any:
    row = conn.execute(query, params or None).fetchone()  # type: ignore[arg-type]
    return row[0] if row else None


def backends(conn: psycopg.Connection[Any], database: str) -> int:
    """Connections to ``database`` other than ``conn`` itself."""
    query = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
    return int(scalar(conn, query, database) or 0)
