"""deploy/roles.sql: the migrations run as the owner, the servers as a role that
may only read and write rows.

On the throw-away cluster (tests/live.py): a database given the two roles, migrated
as the owner; the application's own commands then work as the servers' role, and
that role can change no table.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.postgres import give_to
from deploy.processes import REPO, SAMPLE, django_environment, manage
from tests.pgcluster import Cluster

DATABASE = "mymoviedb_roles"
OWNER, APP = "roles_owner", "roles_app"


def psql_as(cluster: Cluster, role: str, sql: str) -> str:
    address = ["-h", "127.0.0.1", "-p", str(cluster.port), "-U", role, "-d", DATABASE]
    return cluster.run("psql", "-Xq", *address, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql)


def test_migrations_as_the_owner_and_the_servers_with_rights_on_rows_only(
    pg_cluster: Cluster, tmp_path: Path
) -> None:
    pg_cluster.psql(f"CREATE DATABASE {DATABASE}", database="postgres")
    # In the cluster's directory: psql runs as the server's user, who may not read ours.
    script = pg_cluster.root / "roles.sql"
    script.write_text((REPO / "deploy" / "roles.sql").read_text())
    give_to(script, pg_cluster.user)
    variables = {"owner": OWNER, "owner_password": "o", "app": APP, "app_password": "a"}
    arguments = [f"--set={name}={value}" for name, value in variables.items()]
    pg_cluster.run(
        "psql", "-Xq", "-h", "127.0.0.1", "-p", str(pg_cluster.port), "-U", "postgres",
        "-d", DATABASE, *arguments, f"--set=database={DATABASE}", "-f", str(script),
    )  # fmt: skip

    def url(role: str) -> str:
        return f"postgres://{role}@127.0.0.1:{pg_cluster.port}/{DATABASE}"

    manage(django_environment(url(OWNER), tmp_path), "migrate", "--no-input", "-v0")
    # The servers' work, as the servers' role: rows in, out, changed.
    app = django_environment(url(APP), tmp_path)
    manage(app, "import_movies", str(SAMPLE))
    manage(app, "create_demo_curator", "--username", "curator")
    assert psql_as(pg_cluster, APP, "SELECT count(*) > 0 FROM movies_movie").strip() == "t"
    psql_as(pg_cluster, APP, "UPDATE movies_movie SET rating = rating WHERE id = 1")
    # But no table of its own, and none of the owner's changed or emptied.
    for sql, refusal in [
        ("CREATE TABLE mine (id int)", "permission denied for schema public"),
        ("DROP TABLE movies_genre", "must be owner of table movies_genre"),
        ("ALTER TABLE movies_movie ADD COLUMN x int", "must be owner of table movies_movie"),
        ("TRUNCATE movies_credit", "permission denied for table movies_credit"),
    ]:
        with pytest.raises(RuntimeError, match=refusal):
            psql_as(pg_cluster, APP, sql)
    # And the schema's tables are the owner's, every one.
    owners = psql_as(
        pg_cluster,
        "postgres",
        "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'",
    )
    assert owners.split() == [OWNER]
