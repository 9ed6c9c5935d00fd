"""Streaming replicas for real, on the local cluster (deploy/cluster.py).

A row written on the primary behind the application's back reaches the
streaming standby at once and the delayed standby only after its apply delay;
an API process reading from the delayed standby serves the old row until then.
"""

from __future__ import annotations

import time

from deploy.cluster import DELAYED, STANDBY, LocalCluster, status
from tests.cluster import (
    APPLY_DELAY_SECONDS,
    IN_POSTGRES_SUITE,
    body,
    sql_value,
    start_api_on_delayed_standby,
    wait_for,
)
from tests.live import fetch

pytestmark = IN_POSTGRES_SUITE


def test_a_write_on_the_primary_reaches_each_standby_after_its_delay(
    local_cluster: LocalCluster,
) -> None:
    primary = local_cluster.primary
    standby, delayed = local_cluster.standbys[STANDBY], local_cluster.standbys[DELAYED]
    title = f"Behind the back of the app {time.monotonic_ns()}"
    [[movie_id]] = primary.psql(
        f"UPDATE movies_movie SET title = '{title}' "
        "WHERE id = (SELECT min(id) FROM movies_movie) RETURNING id"
    )
    written = time.monotonic()
    query = f"SELECT title FROM movies_movie WHERE id = {movie_id}"
    assert sql_value(primary, query) == title
    on_standby = wait_for(lambda: sql_value(standby, query) == title, timeout=5)
    assert sql_value(delayed, query) != title
    wait_for(lambda: sql_value(delayed, query) == title, timeout=APPLY_DELAY_SECONDS + 5)
    on_delayed = time.monotonic() - written
    # Streaming is immediate; the delayed standby replays no earlier than its delay.
    assert on_standby < 1.0
    assert on_delayed >= APPLY_DELAY_SECONDS - 0.1


def test_an_api_on_the_delayed_standby_serves_the_old_row_until_it_replays(
    local_cluster: LocalCluster,
) -> None:
    # Without its response cache: this write sends no NOTIFY to invalidate it.
    api = start_api_on_delayed_standby(local_cluster, "delayed-only", API_CACHE="0")
    primary = local_cluster.primary
    [[movie_id, old_title]] = primary.psql(
        "SELECT id, title FROM movies_movie ORDER BY id OFFSET 1 LIMIT 1"
    )
    path = f"/api/movies/{movie_id}"
    title = f"Replayed late {time.monotonic_ns()}"
    # Before the write: the time since is never less than the time since its commit.
    writing = time.monotonic()
    primary.psql(f"UPDATE movies_movie SET title = '{title}' WHERE id = {movie_id}")
    assert body(fetch(api.port, path).body)["title"] == old_title
    wait_for(lambda: body(fetch(api.port, path).body)["title"] == title, timeout=10, step=0.2)
    assert time.monotonic() - writing >= APPLY_DELAY_SECONDS - 0.1


def test_status_lists_every_server_up(local_cluster: LocalCluster) -> None:
    lines = status(local_cluster.state())
    names = [line.split()[0] for line in lines]
    assert names == [*local_cluster.ports, "primary", STANDBY, DELAYED]
    assert all(line.split()[2] == "up" for line in lines), lines
