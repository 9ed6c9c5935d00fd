"""The API as clients meet it: through the local cluster's nginx (deploy/nginx.conf).

Every request goes over HTTPS to nginx, which balances the cluster's two API
processes, asking for gzip as browsers and HTTP libraries do. Reads, conditional
requests, a read-modify-write with the ETag nginx handed out (weakened by its
gzip filter), server-sent events and the export; then restarts of a standby,
PgBouncer, one API process and the primary under a bounded load of readers,
every answer counted. The figures are printed (``pytest -s``) for the notes.
"""

from __future__ import annotations

import gzip
import http.client
import itertools
import json
import os
import signal
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from deploy.cluster import STANDBY, LocalCluster
from deploy.processes import BIN
from tests.cluster import IN_POSTGRES_SUITE, sql_value, wait_for

pytestmark = IN_POSTGRES_SUITE
GZIP = {"Accept-Encoding": "gzip"}
READERS = 4
DOWN_SECONDS = 1.0  # how long a restarted part stays down
LOAD_AFTER_SECONDS = 1.5  # reads once it answers again


@dataclass
class Client:
    """HTTPS to the cluster's nginx on one keep-alive connection, decoding gzip."""

    cluster: LocalCluster
    timeout: float = 10
    connection: http.client.HTTPSConnection | None = None

    def connect(self) -> http.client.HTTPSConnection:
        if self.connection is None:
            tls = ssl.create_default_context(cafile=str(self.cluster.root / "cert.pem"))
            port = self.cluster.ports["nginx-https"]
            self.connection = http.client.HTTPSConnection(
                "localhost", port, context=tls, timeout=self.timeout
            )
        return self.connection

    def send(
        self, method: str, path: str, body: object = None, **headers: str
    ) -> tuple[http.client.HTTPResponse, bytes]:
        headers = {**GZIP, **headers}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if method != "GET":
            headers["Authorization"] = f"Bearer {self.cluster.curator.token}"
        data = None if body is None else json.dumps(body).encode()
        connection = self.connect()
        try:
            connection.request(method, path, data, headers)
            response = connection.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException):
            self.close()  # a client opens a new connection after a broken one
            raise
        coding = response.getheader("Content-Encoding")
        return response, gzip.decompress(raw) if coding == "gzip" else raw

    def read_json(self, path: str) -> dict[str, object]:
        response, body = self.send("GET", path)
        assert response.status == 200, body
        loaded = json.loads(body)
        assert isinstance(loaded, dict)
        return loaded

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


@pytest.fixture
def client(local_cluster: LocalCluster) -> Iterator[Client]:
    client = Client(local_cluster)
    yield client
    client.close()


def last_film(cluster: LocalCluster) -> int:
    """The film these tests edit (and restore): one the cluster's other tests leave alone."""
    return int(sql_value(cluster.primary, "SELECT max(id) FROM movies_movie"))


def test_gzip_over_one_keep_alive_connection(local_cluster: LocalCluster, client: Client) -> None:
    film = last_film(local_cluster)
    sockets, codings = set(), {}
    for path in ("/api/movies", f"/api/movies/{film}", "/api/people?limit=50"):
        response, body = client.send("GET", path)
        assert response.status == 200, body
        assert not response.will_close, path
        assert client.connection is not None and client.connection.sock is not None
        sockets.add(client.connection.sock.getsockname())
        codings[path] = response.getheader("Content-Encoding")
        if codings[path] == "gzip":
            assert response.getheader("Vary") == "Accept-Encoding"
        payload = json.loads(body)
        if path == f"/api/movies/{film}":
            assert payload["id"] == film
        else:
            assert payload["items"], path
    # The lists are over gzip_min_length (1 KB); all three came on one connection.
    assert codings["/api/movies"] == codings["/api/people?limit=50"] == "gzip", codings
    assert len(sockets) == 1, sockets


def test_conditional_get_and_an_if_match_round_trip_with_nginx_s_etag(
    local_cluster: LocalCluster, client: Client
) -> None:
    film = last_film(local_cluster)
    path = f"/api/movies/{film}"
    original = client.read_json(path)
    # Long enough (over gzip_min_length) for nginx to compress the detail too.
    long = "A synopsis long enough to be compressed by nginx. " * 40
    try:
        written, body = client.send("PATCH", path, {"synopsis": long})
        assert written.status == 200, body
        read, body = client.send("GET", path)
        assert read.status == 200 and read.getheader("Content-Encoding") == "gzip"
        tag = read.getheader("ETag") or ""
        print(f"\nETag through nginx with gzip: {tag}")
        again, rest = client.send("GET", path, **{"If-None-Match": tag})
        assert (again.status, rest) == (304, b"")

        title = f"{original['title']} (through nginx)"
        patched, body = client.send("PATCH", path, {"title": title}, **{"If-Match": tag})
        assert patched.status == 200, body
        assert json.loads(body)["title"] == title
        stale, problem = client.send("PATCH", path, {"title": "Lost"}, **{"If-Match": tag})
        assert stale.status == 412, problem
        assert stale.getheader("Content-Type") == "application/problem+json"
        assert json.loads(problem)["status"] == 412
        changed, body = client.send("GET", path, **{"If-None-Match": tag})
        assert changed.status == 200
        assert json.loads(body)["title"] == title
    finally:
        restored, body = client.send(
            "PATCH", path, {"title": original["title"], "synopsis": original["synopsis"]}
        )
        assert restored.status == 200, body


def test_a_change_arrives_as_an_event_through_nginx(
    local_cluster: LocalCluster, client: Client
) -> None:
    film = last_film(local_cluster)
    title = str(client.read_json(f"/api/movies/{film}")["title"])
    events = Client(local_cluster, timeout=5).connect()
    try:
        events.request("GET", "/api/events", headers={**GZIP, "Accept": "text/event-stream"})
        stream = events.getresponse()
        assert stream.status == 200
        assert stream.getheader("Content-Type") == "text/event-stream"
        # Subscribed before the headers were sent: no change after this is missed.
        sent = time.monotonic()
        patched, body = client.send("PATCH", f"/api/movies/{film}", {"title": f"{title} (event)"})
        assert patched.status == 200, body
        while True:  # a socket timeout (5 s) fails the test
            line = stream.readline()
            assert line, "the stream ended"
            if line.startswith(b"data: ") and film in json.loads(line[6:]).get("movies", []):
                break
        seconds = time.monotonic() - sent
    finally:
        events.close()
        restored, body = client.send("PATCH", f"/api/movies/{film}", {"title": title})
        assert restored.status == 200, body
    print(f"\nSSE through nginx: the change arrived {seconds * 1000:.0f} ms after the PATCH")
    assert seconds < 3


def test_the_export_streams_whole_through_nginx(
    local_cluster: LocalCluster, client: Client
) -> None:
    response, body = client.send("GET", "/api/movies/export?format=ndjson")
    assert response.status == 200
    count = int(sql_value(local_cluster.primary, "SELECT count(*) FROM movies_movie"))
    *films, trailer = body.splitlines()
    assert len(films) == count
    assert len({json.loads(film)["id"] for film in films}) == count
    assert trailer == b'{"_trailer":{"complete":true,"rows":%d}}' % count


# --- restarts under a bounded load ---------------------------------------------------


@dataclass(frozen=True)
class Read:
    at: float  # time.monotonic() when it was sent
    status: int  # 0: no HTTP answer at all
    title: str = ""  # a write's: the title it gave the film
    seconds: float = 0.0  # a write's: how long its answer took


def read_load(
    cluster: LocalCluster, stop: threading.Event, numbers: Iterator[int], films: list[int]
) -> list[Read]:
    """One client reading until ``stop``, on a keep-alive connection (a new one after
    a failure): pages of films and people never asked before, so the response cache
    answers none of them, and film details."""
    client, reads = Client(cluster), []
    while not stop.is_set():
        n = next(numbers)
        path = [f"/api/movies?limit=1&offset={n % 10_000}",
                f"/api/people?limit=1&offset={n % 10_000}",
                f"/api/movies/{films[n % len(films)]}"][n % 3]  # fmt: skip
        started = time.monotonic()
        try:
            status = client.send("GET", path)[0].status
        except (OSError, http.client.HTTPException):
            status = 0
        reads.append(Read(started, status))
    client.close()
    return reads


def write_load(cluster: LocalCluster, stop: threading.Event, film: int) -> list[Read]:
    """One client renaming ``film`` through nginx until ``stop``, one write at a time,
    waiting for each answer longer than PgBouncer's server_login_retry (15 s)."""
    client, writes = Client(cluster, timeout=30), []
    while not stop.is_set():
        title = f"Written through nginx {next(NUMBERS)}"
        started = time.monotonic()
        try:
            status = client.send("PATCH", f"/api/movies/{film}", {"title": title})[0].status
        except (OSError, http.client.HTTPException):
            status = 0
        writes.append(Read(started, status, title, time.monotonic() - started))
        time.sleep(0.02)
    client.close()
    return writes


NUMBERS = itertools.count()  # shared by every load: no path is read twice


def under_load(
    cluster: LocalCluster, event: str, fault: Callable[[], None], refusals: frozenset[int]
) -> tuple[list[Read], list[Read]]:
    """``fault()`` (it returns once the restarted part answers again) amid READERS
    readers and a writer through nginx; (reads sent before it returned, reads sent
    after). Writes may fail only with ``refusals``; none acknowledged may be lost."""
    films = [int(row[0]) for row in cluster.primary.psql("SELECT id FROM movies_movie LIMIT 40")]
    written = last_film(cluster)
    stop = threading.Event()
    with ThreadPoolExecutor(READERS + 1) as pool:
        loads = [pool.submit(read_load, cluster, stop, NUMBERS, films) for _ in range(READERS)]
        writer = pool.submit(write_load, cluster, stop, written)
        try:
            time.sleep(0.5)  # every reader's connections in use first
            began = time.monotonic()
            fault()
            answering = time.monotonic()
            time.sleep(LOAD_AFTER_SECONDS)
        finally:
            stop.set()
        reads = [read for load in loads for read in load.result()]
        writes = writer.result()
    during = [read for read in reads if began <= read.at < answering]
    after = [read for read in reads if read.at >= answering]
    failed = [read for read in reads if read.status != 200]
    print(
        f"\n{event}: {len(reads)} reads through nginx, statuses "
        f"{dict(Counter(read.status for read in reads))}; while restarting "
        f"({answering - began:.1f} s) {sum(r.status != 200 for r in during)} of {len(during)} "
        f"failed; once it answered {sum(r.status != 200 for r in after)} of {len(after)} failed; "
        f"{len(failed)} failed in all; writes {dict(Counter(write.status for write in writes))}, "
        f"{sum(w.status != 200 for w in writes if w.at >= answering)} failed once it answered, "
        f"slowest {max(w.seconds for w in writes):.1f} s"
    )
    assert len(after) >= READERS * 5, "too few reads after the restart to mean anything"
    # No acknowledged write lost: the film has the last acknowledged title, or that of a
    # later write whose answer was lost (it may have committed).
    acknowledged = max(i for i, write in enumerate(writes) if write.status == 200)
    stored = sql_value(cluster.primary, f"SELECT title FROM movies_movie WHERE id = {written}")
    assert stored in {write.title for write in writes[acknowledged:]}, stored
    assert {write.status for write in writes} <= {200} | refusals, event
    return [read for read in reads if read.at < answering], after


def restart_api(cluster: LocalCluster, name: str) -> None:
    """Kill an API process (SIGKILL to Gunicorn's group: no goodbye) and start it again
    on its port, the one nginx's upstream names."""
    server, port = cluster.servers[name], cluster.ports[name]
    os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=10)
    time.sleep(DOWN_SECONDS)
    command = [str(BIN / "gunicorn"), "--config", "deploy/gunicorn_api.conf.py"]
    env = {"GUNICORN_API_BIND": f"127.0.0.1:{port}", "GUNICORN_API_WORKERS": "1"}
    cluster.start_server(name, command, port, env=env)  # returns once it answers /healthz


def test_restarts_under_load_fail_no_read_once_the_part_answers(
    local_cluster: LocalCluster, client: Client
) -> None:
    cluster = local_cluster
    film = last_film(cluster)
    title = client.read_json(f"/api/movies/{film}")["title"]
    # An API process first: nginx marks it failed for fail_timeout (10 s), and the
    # other restarts take longer than that, so later tests find both in use again.
    # A write in flight on the killed process is not sent again (nginx does not pass a
    # PATCH on once sent): it may get nginx's 502, and may have committed.
    before, after = under_load(
        cluster, "API process killed", lambda: restart_api(cluster, "api-1"), frozenset({502})
    )
    # nginx passes an idempotent request that failed on it to the other process
    # (proxy_next_upstream's default, "error timeout"): no read fails at all.
    assert [read for read in before + after if read.status != 200] == []

    standby = cluster.standbys[STANDBY]

    def restart_standby() -> None:
        standby.stop("fast")
        time.sleep(DOWN_SECONDS)
        standby.start()  # returns once it accepts connections

    def restart_pgbouncer() -> None:
        cluster.servers["pgbouncer"].stop()
        time.sleep(DOWN_SECONDS)
        cluster.start_pgbouncer()  # on its port again; returns once it listens

    def restart_primary() -> None:
        cluster.primary.stop("fast")
        time.sleep(DOWN_SECONDS)
        cluster.primary.start()  # returns once it accepts connections (pg_isready)

    for event, fault in (
        ("standby restarted", restart_standby),
        ("PgBouncer restarted", restart_pgbouncer),
        ("primary restarted", restart_primary),
    ):
        # A write is answered, or refused with the API's 503: never a 500 or a broken
        # connection.
        before, after = under_load(cluster, event, fault, frozenset({503}))
        assert [read for read in after if read.status != 200] == [], event
        # While it was down: answers or the API's 503, never a broken connection or a 500.
        assert {read.status for read in before} <= {200, 503}, event
    # Both standbys stream from the restarted primary again before the next test.
    streaming = "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
    wait_for(lambda: sql_value(cluster.primary, streaming) == "2", timeout=20, step=0.2)
    restored, body = client.send("PATCH", f"/api/movies/{film}", {"title": title})
    assert restored.status == 200, body
