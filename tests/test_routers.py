"""The read-replica router, against two real PostgreSQL databases.

Honest about the set-up: the "replica" here is a second PostgreSQL database with
the same schema (migrated by the test run), not a streaming standby, so a row
written to one is not copied to the other. That is what makes routing visible:
a row that exists only in the replica can be read only through the replica, and
a row the router writes lands only in the primary.

Settings are read once at start-up, so the replica alias exists only in a run
started with ``DATABASE_REPLICA_URLS``. In the PostgreSQL run,
``test_router_on_two_real_databases`` starts that run: a child pytest of
``tests/routing_on_replicas.py`` on ``mymoviedb_deploy`` and
``mymoviedb_deploy_replica``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit
from xml.etree import ElementTree

import pytest
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS

REPO = Path(__file__).resolve().parent.parent
REPLICA = "replica_0"
HAS_REPLICA = REPLICA in settings.DATABASES

CHILD_MODULE = Path(__file__).with_name("routing_on_replicas.py")


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.mark.postgres(reason="a second real database for the replica alias")
def test_router_on_two_real_databases() -> None:
    base = os.environ["DATABASE_URL"]
    env = {
        **os.environ,
        "DATABASE_URL": _with_database(base, "mymoviedb_deploy"),
        "DATABASE_REPLICA_URLS": _with_database(base, "mymoviedb_deploy_replica"),
        # Not test_mymoviedb_deploy: a parent run on mymoviedb_deploy is using that one.
        "TEST_DATABASE_NAME": "test_mymoviedb_deploy_primary",
    }
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "child.xml"
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                f"--junitxml={report}",
                str(CHILD_MODULE),
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        cases = ElementTree.parse(report).getroot().iter("testcase")
        outcomes = {case.get("name"): [child.tag for child in case] for case in cases}
    # Every routing check ran there and passed: none skipped, none failed.
    not_passed = {name for name, tags in outcomes.items() if tags}
    assert not_passed == set(), outcomes
    assert len(outcomes) >= 7, outcomes


def test_settings_add_replica_aliases_and_router() -> None:
    """Behind PgBouncer only ``default`` loses server-side cursors (and prepared
    statements): the replicas and the direct alias for exports are PostgreSQL itself."""
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(sorted(s.DATABASES), s.DATABASE_ROUTERS, "
        "s.DATABASES['replica_1']['OPTIONS']['pool']['max_size'], "
        "[(alias, d['DISABLE_SERVER_SIDE_CURSORS'], d['OPTIONS']['prepare_threshold']) "
        "for alias, d in s.DATABASES.items()], "
        "s.DATABASES['direct']['HOST'], s.DATABASES['direct']['OPTIONS']['pool']['min_size'])"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mymoviedb.settings",
        "DATABASE_URL": "postgres://u@pgbouncer.invalid:6432/primary",
        "DATABASE_DIRECT_URL": "postgres://u@db.invalid:5432/primary",
        "DATABASE_REPLICA_URLS": "postgres://u@r0.invalid/a,postgres://u@r1.invalid/b",
        "DB_POOL_MAX_SIZE": "7",
        "DB_DISABLE_SERVER_SIDE_CURSORS": "1",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "['default', 'direct', 'replica_0', 'replica_1'] ['mymoviedb.routers.ReplicaRouter'] 7 "
        "[('default', True, None), ('replica_0', False, 2), ('replica_1', False, 2), "
        "('direct', False, 2)] db.invalid 0"
    )


def test_replicas_behind_a_transaction_pooler_lose_server_side_cursors_too() -> None:
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print([(alias, d['DISABLE_SERVER_SIDE_CURSORS'], d['OPTIONS']['prepare_threshold']) "
        "for alias, d in s.DATABASES.items()])"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mymoviedb.settings",
        "DATABASE_URL": "postgres://u@db.invalid:5432/primary",
        "DATABASE_REPLICA_URLS": "postgres://u@r0-pgbouncer.invalid/a",
        "DB_REPLICA_DISABLE_SERVER_SIDE_CURSORS": "1",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[('default', False, 2), ('replica_0', True, None)]"


def test_no_router_without_replicas() -> None:
    assert list(settings.DATABASES) == [DEFAULT_DB_ALIAS]
    assert getattr(settings, "DATABASE_ROUTERS", []) == []
