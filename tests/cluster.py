"""The local cluster of deploy/cluster.py, once per session, for tests/test_cluster_*.py.

Registered through ``pytest_plugins`` in tests/conftest.py; started only when a
test asks for ``local_cluster`` (about 15 s of one core), stopped by pid at the
end of the session. Skipped, saying why, only where the PostgreSQL server
binaries are missing, and never under CI=true (tests/pgcluster.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import orjson
import pytest

from deploy.cluster import DELAYED, LocalCluster, down, up
from deploy.postgres import Cluster
from deploy.processes import Server, listens
from tests.live import Reply, fetch
from tests.pgcluster import require_server

# The delayed standby's lag: long enough to see it, short enough for CI.
APPLY_DELAY_SECONDS = 2.0
# The cluster is PostgreSQL servers of its own, whatever DATABASE_URL names: its tests
# run once, in the PostgreSQL suite, not again in the SQLite one (CI runs both).
IN_POSTGRES_SUITE = pytest.mark.postgres(
    reason="the local cluster of deploy/cluster.py runs with the PostgreSQL suite"
)


@pytest.fixture(scope="session")
def local_cluster() -> Iterator[LocalCluster]:
    """Primary, streaming standby, delayed standby, PgBouncer, 2 API processes,
    the admin and nginx, as ``python -m deploy.cluster up`` starts them."""
    require_server()
    cluster = up(api_processes=2, apply_delay_seconds=APPLY_DELAY_SECONDS)
    try:
        yield cluster
    except BaseException:
        cluster.stop()
        raise
    # What `python -m deploy.cluster down` does, from the state file's contents alone:
    # it must leave nothing listening and no directory behind.
    state = cluster.state()
    down(state)
    for server in cluster.servers.values():
        server.process.wait(timeout=10)
    ports = [server["port"] for server in state["servers"].values()]
    ports += [postgres["port"] for postgres in state["postgres"].values()]
    assert [port for port in ports if listens(port)] == []
    assert not cluster.root.exists()


def sql_value(server: Cluster, query: str) -> str:
    """The one value ``query`` returns on ``server``."""
    [[value]] = server.psql(query)
    return value


def wait_for(condition: Callable[[], bool], timeout: float, step: float = 0.05) -> float:
    """Seconds until ``condition()`` holds; fails the test after ``timeout``."""
    started = time.monotonic()
    while not condition():
        elapsed = time.monotonic() - started
        assert elapsed < timeout, f"not true after {timeout} s"
        time.sleep(step)
    return time.monotonic() - started


def body(raw: bytes) -> dict[str, object]:
    loaded = json.loads(raw)
    assert isinstance(loaded, dict)
    return loaded


def rename(cluster: LocalCluster, port: int, movie_id: int, title: str) -> Reply:
    """PATCH a film's title through the API on ``port``, as the demo curator (200 or a failure)."""
    reply = fetch(
        port,
        f"/api/movies/{movie_id}",
        "PATCH",
        orjson.dumps({"title": title}),
        {"Authorization": f"Bearer {cluster.curator.token}", "Content-Type": "application/json"},
    )
    assert reply.status == 200, reply.body
    return reply


def start_api_on_delayed_standby(cluster: LocalCluster, name: str, **env: str) -> Server:
    """An API process whose only replica is the delayed standby, never skipped for lag:
    after an idle spell the standby's measured lag (the age of the last commit it
    replayed) passes the default 5 s bound at once, and the primary would answer."""
    return cluster.start_api(
        name,
        DATABASE_REPLICA_URLS=cluster.standbys[DELAYED].url(),
        DATABASE_REPLICA_MAX_LAG_SECONDS="3600",
        **env,
    )
