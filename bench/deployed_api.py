"""aioapi as deployed (Gunicorn with deploy/gunicorn_api.conf.py and the product's
settings), for bench/overload.py and bench/soak.py: its catalogue (the shared file,
in ``mymoviedb_reliability`` by default), a token, the server, its backends."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import psycopg

from bench.catalogue import CatalogueSpec, prepare
from bench.scaffold import server_env
from bench.servers import REPO, SHARED_CATALOGUE, ServerSpec, free_port

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/mymoviedb_reliability"
PATH = "/api/movies?limit=10"


def api_env(database_url: str) -> dict[str, str]:
    """The bench servers' environment with the deployed pool, Gunicorn quiet."""
    env = server_env(database_url, pool_size=None, DJANGO_SETTINGS_MODULE="mymoviedb.settings")
    return env | {"GUNICORN_API_ACCESS_LOG": "", "GUNICORN_LOG_LEVEL": "warning"}


def spec(database_url: str, **settings: str) -> ServerSpec:
    """The deployed API on a free port; ``settings`` add to its environment."""
    port = free_port()
    settings = {"GUNICORN_API_BIND": f"127.0.0.1:{port}", **settings}
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    config = [gunicorn, "--config", "deploy/gunicorn_api.conf.py"]
    return ServerSpec(
        "aioapi",
        "aioapi as deployed (deploy/gunicorn_api.conf.py)",
        tuple(config),
        env=api_env(database_url) | settings,
        port=port,
        list_path="/api/movies",
        detail_path="/api/movies/{id}",
        ready_path="/healthz",
        workers=int(settings.get("GUNICORN_API_WORKERS", "1")),
        settings=settings,
    )


def prepare_catalogue(database_url: str, say: Callable[[str], None]) -> dict[str, int]:
    """Create, migrate and load the database once (the shared file, no synthetic films)."""
    if not SHARED_CATALOGUE.exists():
        sys.exit(f"the shared catalogue is missing: {SHARED_CATALOGUE}")
    catalogue = CatalogueSpec(source=str(SHARED_CATALOGUE), synthetic=0, seed=0)
    return prepare(database_url, catalogue, api_env(database_url), recreate=False, say=say)


def issue_token(database_url: str, username: str) -> str:
    """A new API token of a demo curator (``manage.py create_demo_curator``)."""
    printed = subprocess.run(
        [sys.executable, "manage.py", "create_demo_curator", "--username", username],
        cwd=REPO,
        env=api_env(database_url),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"API token: (\S+)", printed)
    if match is None:
        sys.exit(f"create_demo_curator printed no token:\n{printed}")
    return match[1]


def backends(database_url: str) -> dict[str, int]:
    """Connections to the bench database by state (this one excluded)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT coalesce(state, 'unknown'), count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid() GROUP BY 1"
        ).fetchall()
    return dict(Counter({str(state): int(count) for state, count in rows}))
