"""deploy/budget.py: a deployment needing more connections than PostgreSQL allows is refused.

The arithmetic on its own, then the real Gunicorn configs: ``--check-config``
loads a config (and so runs its budget check) and exits, 0 or 1.
"""

from __future__ import annotations

import os
import subprocess

import pytest
from django.conf import settings

from aioapi.settings import ApiSettings
from deploy import budget
from deploy.processes import BIN, REPO

POSTGRES = "postgres://app@db:5432/mymoviedb"
# A 4-core host with every default, two API replicas (compose's): the case.
FOUR_CORES = {
    "DATABASE_URL": POSTGRES,
    "API_REPLICAS": "2",
    "GUNICORN_API_WORKERS": "4",
    "GUNICORN_ADMIN_WORKERS": "9",
}


def test_the_defaults_of_a_four_core_host_are_over_budget() -> None:
    assert budget.over_budget(FOUR_CORES) == (
        "The database connection budget is exceeded: "
        "API 2 replicas x 4 workers x (8 threads + 1 LISTEN) = 72 + "
        "admin 9 workers x 4 threads = 36 = 108 connections, but PostgreSQL allows "
        "100 (DB_MAX_CONNECTIONS) - 3 (DB_SUPERUSER_RESERVED_CONNECTIONS) - "
        "5 (DB_RESERVED_CONNECTIONS) = 92. Lower the workers or threads "
        "(GUNICORN_API_WORKERS, API_DB_THREADS, API_REPLICAS, GUNICORN_ADMIN_WORKERS, "
        "GUNICORN_ADMIN_THREADS), raise max_connections with DB_MAX_CONNECTIONS, or put "
        "PgBouncer in front (deploy/README.md, 'The connection budget')."
    )
    assert budget.over_budget({**FOUR_CORES, "DB_MAX_CONNECTIONS": "120"}) is None


def test_behind_pgbouncer_postgresql_sees_its_pool_listeners_and_exports() -> None:
    # 2 x 4 x (1 + 2) + 9 x 1 + 20 = 53 <= 70 - 8: the threads' connections are PgBouncer's.
    pooled = {**FOUR_CORES, "DB_DISABLE_SERVER_SIDE_CURSORS": "1", "DB_MAX_CONNECTIONS": "70"}
    assert budget.over_budget(pooled) is None
    message = budget.over_budget({**pooled, "API_REPLICAS": "4"})
    assert message is not None and "= 77 connections" in message, message


def test_sqlite_has_no_budget() -> None:
    assert budget.over_budget({**FOUR_CORES, "DATABASE_URL": "sqlite:///x.sqlite3"}) is None


def test_the_defaults_agree_with_the_servers() -> None:
    assert ApiSettings.model_fields["db_threads"].default == budget.API_DB_THREADS
    pool = settings.DATABASES["default"].get("OPTIONS", {}).get("pool")
    if pool is not None and "DB_POOL_MAX_SIZE" not in os.environ:
        assert pool["max_size"] == budget.DB_POOL_MAX_SIZE


def check_config(config: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "DEBUG": "1", **env}
    command = [str(BIN / "gunicorn"), "--config", config, "--check-config"]
    return subprocess.run(
        command, cwd=REPO, env=environment, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("config", ["deploy/gunicorn_api.conf.py", "deploy/gunicorn_admin.conf.py"])
def test_a_server_over_budget_refuses_to_start_and_one_within_starts(config: str) -> None:
    refused = check_config(config, **FOUR_CORES)
    assert refused.returncode == 1
    message = budget.over_budget(FOUR_CORES)
    assert message is not None and message in refused.stderr, refused.stderr[-2000:]
    started = check_config(config, **FOUR_CORES, DB_MAX_CONNECTIONS="200")
    assert started.returncode == 0, started.stderr[-2000:]
    assert "budget" not in started.stderr
