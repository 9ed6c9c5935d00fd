"""Read-your-writes across requests and the lag bound, on the delayed standby.

Each test starts an API process on the local cluster whose only replica is the
standby that replays APPLY_DELAY_SECONDS late, so any read it serves from that
replica during the delay is visibly old. The response cache is off here (its
behaviour under lag: tests/test_cluster_cache.py).
"""

from __future__ import annotations

import time

from deploy.cluster import DELAYED, LocalCluster
from deploy.processes import Server
from tests.cluster import APPLY_DELAY_SECONDS, IN_POSTGRES_SUITE, body, rename
from tests.live import fetch

TOKEN = "X-Consistency-Token"

pytestmark = IN_POSTGRES_SUITE


def delayed_api(cluster: LocalCluster, name: str, max_lag_seconds: float) -> Server:
    return cluster.start_api(
        name,
        DATABASE_REPLICA_URLS=cluster.standbys[DELAYED].url(),
        DATABASE_REPLICA_MAX_LAG_SECONDS=str(max_lag_seconds),
        API_CACHE="0",
    )


def title_of(api: Server, movie_id: int, headers: dict[str, str] | None = None) -> str:
    reply = fetch(api.port, f"/api/movies/{movie_id}", headers=headers)
    assert reply.status == 200, reply.body
    return str(body(reply.body)["title"])


def test_a_read_with_the_token_is_never_older_than_the_write(local_cluster: LocalCluster) -> None:
    # A lag bound no replica exceeds: only the token keeps reads recent.
    api = delayed_api(local_cluster, "token-api", max_lag_seconds=3600)
    movie_id = 3
    old = title_of(api, movie_id)
    new = f"Read your writes {time.monotonic_ns()}"
    written = rename(local_cluster, api.port, movie_id, new)
    token = written.headers[TOKEN]
    [[primary_lsn]] = local_cluster.primary.psql("SELECT pg_current_wal_lsn()")
    assert token.count("/") == 1 and len(token) <= len(primary_lsn)
    # Without the token the delayed standby answers, with the old title.
    assert title_of(api, movie_id) == old
    # With it: the new title every time, before and after the standby replays it.
    seen = []
    deadline = time.monotonic() + APPLY_DELAY_SECONDS + 1
    while time.monotonic() < deadline:
        seen.append(title_of(api, movie_id, {TOKEN: token}))
        time.sleep(0.1)
    assert set(seen) == {new}, seen
    # The standby has caught up: reads without a token see it too.
    assert title_of(api, movie_id) == new


def test_a_replica_lagging_past_the_bound_is_skipped(local_cluster: LocalCluster) -> None:
    max_lag = 1.0
    api = delayed_api(local_cluster, "bounded-api", max_lag_seconds=max_lag)
    movie_id = 4
    new = f"Lag bound {time.monotonic_ns()}"
    local_cluster.primary.psql(f"UPDATE movies_movie SET title = '{new}' WHERE id = {movie_id}")
    written = time.monotonic()
    # Once the write is older than the bound (plus the monitor's cache and a margin),
    # no read may miss it, though the standby replays it only at APPLY_DELAY_SECONDS.
    stale_after_bound = []
    while (elapsed := time.monotonic() - written) < APPLY_DELAY_SECONDS + 0.5:
        title = title_of(api, movie_id)
        if elapsed > max_lag + 0.6 and title != new:
            stale_after_bound.append(round(elapsed, 2))
        time.sleep(0.05)
    assert stale_after_bound == []


def test_a_token_that_is_no_position_reads_from_the_primary(local_cluster: LocalCluster) -> None:
    api = delayed_api(local_cluster, "garbled-api", max_lag_seconds=3600)
    movie_id = 5
    new = f"Garbled token {time.monotonic_ns()}"
    local_cluster.primary.psql(f"UPDATE movies_movie SET title = '{new}' WHERE id = {movie_id}")
    assert title_of(api, movie_id, {TOKEN: "not a position"}) == new
    assert title_of(api, movie_id) != new
