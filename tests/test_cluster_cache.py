"""The response cache and the change feed under real replica lag (local cluster).

The API processes of the cluster talk to PostgreSQL through PgBouncer, read
from the standbys and LISTEN on the primary directly (DATABASE_DIRECT_URL).
"""

from __future__ import annotations

import http.client
import time

from deploy.cluster import LocalCluster
from tests.cluster import (
    APPLY_DELAY_SECONDS,
    IN_POSTGRES_SUITE,
    body,
    rename,
    start_api_on_delayed_standby,
)
from tests.live import fetch

pytestmark = IN_POSTGRES_SUITE


def test_no_cached_answer_is_older_than_the_invalidation_it_followed(
    local_cluster: LocalCluster,
) -> None:
    # Cache on, and the delayed standby as its only replica.
    api = start_api_on_delayed_standby(local_cluster, "cached-delayed")
    path = "/api/movies/6"
    old = body(fetch(api.port, path).body)["title"]
    assert body(fetch(api.port, path).body)["title"] == old  # now cached
    new = f"Cached under lag {time.monotonic_ns()}"
    # Written through another process: this one learns of it by NOTIFY only.
    writer = local_cluster.ports["api-0"]
    rename(local_cluster, writer, 6, new)
    written = time.monotonic()
    # The NOTIFY reaches the listener within milliseconds; from then on no read may
    # answer (or store) the old title, though the replica shows it until it replays.
    stale = []
    while (elapsed := time.monotonic() - written) < APPLY_DELAY_SECONDS + 1.5:
        title = body(fetch(api.port, path).body)["title"]
        if elapsed > 0.5 and title != new:
            stale.append(round(elapsed, 2))
        time.sleep(0.05)
    assert stale == []


def test_events_reach_a_stream_through_pgbouncer_and_replicas(
    local_cluster: LocalCluster,
) -> None:
    port = local_cluster.ports["api-1"]
    stream = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        stream.request("GET", "/api/events", headers={"Host": "localhost"})
        response = stream.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Type", "").startswith("text/event-stream")
        rename(local_cluster, local_cluster.ports["api-0"], 7, f"Announced {time.monotonic_ns()}")
        received = b""
        deadline = time.monotonic() + 5
        while b'"movies":[7]' not in received and time.monotonic() < deadline:
            try:
                received += response.read1(65536)
            except TimeoutError:
                break
        assert b"event: change" in received, received
        assert b'"movies":[7]' in received, received
    finally:
        stream.close()
