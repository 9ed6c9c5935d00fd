"""A database outage against real processes: quick 503s, then recovery on their own.

aioapi and the Django side run under Gunicorn with the deploy/ configs on a
throw-away PostgreSQL cluster (tests/live.py), which the test stops with
``pg_ctl -m immediate`` (a crash: clients get no goodbye) and starts again. The
cluster is the test's own, so this runs in both passes of the suite, SQLite and
PostgreSQL; it is skipped only where the PostgreSQL server binaries are missing.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import orjson
import pytest

from tests.live import AdminSession, Reply, Server, Stack, fetch, manage

API_WORKERS = 2
ADMIN_THREADS = 2
# DB_POOL_TIMEOUT_SECONDS (2 s) bounds a request's wait for a connection; the margin
# is for a loaded CI machine. Never a hang.
MAX_SECONDS_TO_503 = 5.0
# Recovery needs one successful reconnection of each pool: psycopg's backoff is
# bounded by DB_POOL_RECONNECT_TIMEOUT_SECONDS (5 s).
MAX_SECONDS_TO_RECOVER = 15.0
UNAVAILABLE = {
    "type": "about:blank",
    "title": "Service Unavailable",
    "status": 503,
    "detail": "The database is unavailable; try again shortly.",
}
POOL_MAX_SIZE = 20  # DB_POOL_MAX_SIZE's default: the admin's pool, per process
API_THREADS = 8  # API_DB_THREADS's default: one connection each at most, per worker
API_LIST = "/api/movies?limit=5"
VIEW_LIST = "/movies/?limit=5"
ADMIN_LIST = "/admin/movies/movie/"


@dataclass
class Servers:
    api: Server
    admin: Server
    curator: AdminSession


@pytest.fixture(scope="module")
def servers(live_stack: Stack) -> Iterator[Servers]:
    api = live_stack.api("faults-api", workers=API_WORKERS)
    admin = live_stack.admin("faults-admin", threads=ADMIN_THREADS)
    curator = AdminSession(admin.port)
    curator.login(live_stack.curator, live_stack.password)
    yield Servers(api, admin, curator)
    api.stop()
    admin.stop()


def wait_for(probe: Callable[[], Reply], done: Callable[[Reply], bool], limit: float) -> float:
    """Seconds until ``probe()`` answers ``done``; fails past ``limit``."""
    started = time.monotonic()
    while True:
        reply = probe()
        elapsed = time.monotonic() - started
        if done(reply):
            return elapsed
        assert elapsed < limit, f"still {reply.status} after {elapsed:.1f} s: {reply.body[:300]!r}"
        time.sleep(0.05)


def backends(live_stack: Stack, *names: str) -> list[tuple[str, str]]:
    """(application_name, state) of the servers' connections."""
    listed = ", ".join(f"'{name}'" for name in names)
    rows = live_stack.cluster.psql(
        "SELECT application_name, state FROM pg_stat_activity "
        f"WHERE application_name IN ({listed}) ORDER BY 1, 2"
    )
    return [(row[0], row[1]) for row in rows]


def api_db_gauges(exposition: bytes) -> dict[str, float]:
    """aioapi's ``api_db_*`` gauges from a /metrics answer, without the prefix."""
    found = re.findall(rb"^api_db_(\w+) (\S+)$", exposition, re.M)
    return {name.decode(): float(value) for name, value in found}


def assert_unavailable_problem(reply: Reply) -> None:
    assert reply.status == 503, reply.body[:300]
    assert reply.headers["Content-Type"] == "application/problem+json"
    assert reply.headers["Retry-After"] == "5"
    assert orjson.loads(reply.body) == UNAVAILABLE


def test_outage_is_a_quick_503_and_both_sides_recover_on_their_own(
    live_stack: Stack, servers: Servers
) -> None:
    api, admin, curator = servers.api.port, servers.admin.port, servers.curator
    for reply in (fetch(api, API_LIST), fetch(admin, VIEW_LIST), curator.get(ADMIN_LIST)):
        assert reply.status == 200, reply.body[:300]

    live_stack.cluster.stop("immediate")
    try:
        # aioapi: every database route a problem with Retry-After, in bounded time.
        to_503 = wait_for(lambda: fetch(api, API_LIST), lambda r: r.status != 200, 30)
        outage = [fetch(api, API_LIST), fetch(api, "/api/genres")]
        for reply in outage:
            assert_unavailable_problem(reply)
            assert reply.seconds < MAX_SECONDS_TO_503
        ready = fetch(api, "/readyz")
        assert ready.status == 503 and ready.headers["Retry-After"] == "5"
        assert ready.headers["Content-Type"] == "application/problem+json"
        assert ready.seconds < MAX_SECONDS_TO_503
        # Liveness never touches the database: no restart of healthy workers.
        health = fetch(api, "/healthz")
        assert (health.status, orjson.loads(health.body)) == (200, {"status": "ok"})
        assert health.seconds < 1
        # Django: the comparison view in the API's shape, the admin a short page.
        view = fetch(admin, VIEW_LIST)
        assert_unavailable_problem(view)
        assert view.seconds < MAX_SECONDS_TO_503
        down = curator.get(ADMIN_LIST)
        assert down.status == 503, down.body[:300]
        assert down.headers["Content-Type"] == "text/html; charset=utf-8"
        assert down.headers["Retry-After"] == "5"
        assert down.headers["Cache-Control"] == "no-store"
        assert b"The database is unavailable" in down.body and b"Traceback" not in down.body
        assert down.seconds < MAX_SECONDS_TO_503
    finally:
        live_stack.cluster.start()
    restarted = time.monotonic()

    # No restart of either server: their pools reconnect by themselves.
    ok: Callable[[Reply], bool] = lambda reply: reply.status == 200  # noqa: E731

    def ten_in_a_row() -> Reply:
        # Two Gunicorn workers share these requests, each with its own pool: the
        # API has recovered when both have, not when the first one answers.
        for _ in range(10):
            reply = fetch(api, API_LIST)
            if reply.status != 200:
                break
        return reply

    recovered = {
        "api": wait_for(ten_in_a_row, ok, MAX_SECONDS_TO_RECOVER),
        "readyz": wait_for(lambda: fetch(api, "/readyz"), ok, MAX_SECONDS_TO_RECOVER),
        "view": wait_for(lambda: fetch(admin, VIEW_LIST), ok, MAX_SECONDS_TO_RECOVER),
        "admin": wait_for(lambda: curator.get(ADMIN_LIST), ok, MAX_SECONDS_TO_RECOVER),
    }
    all_recovered = time.monotonic() - restarted
    # No stuck connection: every worker and thread gets a working one; afterwards
    # no backend is left active or idle in a transaction, the pools are within
    # their bound, and aioapi's pools hold nothing checked out and no one waiting.
    for _ in range(20):
        assert fetch(api, API_LIST).status == 200
        assert fetch(admin, VIEW_LIST).status == 200
    connections = backends(live_stack, "faults-api", "faults-admin")
    assert {state for _, state in connections} == {"idle"}, connections
    per_server = Counter(name for name, _ in connections)
    assert 1 <= per_server["faults-api"] <= API_WORKERS * API_THREADS
    assert 1 <= per_server["faults-admin"] <= POOL_MAX_SIZE
    # aioapi keeps a connection per ORM thread (aioapi/db.py), no pool: nothing is
    # left waiting or running on the bridge of either worker.
    for _ in range(2 * API_WORKERS):
        gauges = api_db_gauges(fetch(api, "/metrics").body)
        assert gauges["bridge_pending"] == 0 and gauges["bridge_threads"] == API_THREADS, gauges
        assert not any(name.startswith("pool_") for name in gauges), gauges
    page = curator.get(ADMIN_LIST)
    assert page.status == 200 and b"Select movie to change" in page.body
    print(
        f"\noutage: first 503 after {to_503:.2f} s (a request {outage[0].seconds:.2f} s, "
        f"/readyz {ready.seconds:.2f} s, /movies/ {view.seconds:.2f} s, admin "
        f"{down.seconds:.2f} s); after the restart, first 200 of "
        + ", ".join(f"{name} in {seconds:.2f} s" for name, seconds in recovered.items())
        + f"; all recovered {all_recovered:.2f} s; backends after: {dict(per_server)}"
    )


def test_a_token_revoked_in_the_admin_is_refused_by_the_api_at_once(
    live_stack: Stack, servers: Servers
) -> None:
    printed = manage(live_stack.env, "create_demo_curator", "--username", "revoker")
    match = re.search(r"password: (\S+)\nAPI token: (\S+)", printed)
    assert match is not None, printed
    password, token = match[1], match[2]
    revoker = AdminSession(servers.admin.port)
    revoker.login("revoker", password)
    movie = orjson.loads(fetch(servers.api.port, "/api/movies?limit=1").body)["items"][0]["id"]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def patch(title: str) -> Reply:
        body = orjson.dumps({"title": title})
        return fetch(servers.api.port, f"/api/movies/{movie}", "PATCH", body, headers)

    assert patch("Before the revocation").status == 200
    [[token_id]] = live_stack.cluster.psql(
        f"SELECT id FROM movies_apitoken WHERE prefix = '{token.split('.')[0]}'"
    )
    revoked = revoker.post(
        "/admin/movies/apitoken/", {"action": "revoke", "_selected_action": token_id}
    )
    assert revoked.status == 302
    # The very next request, in another process: no cache of tokens anywhere.
    refused = patch("After the revocation")
    assert refused.status == 401
    assert orjson.loads(refused.body)["detail"] == "The token is invalid or revoked."
    title = orjson.loads(fetch(servers.api.port, f"/api/movies/{movie}").body)["title"]
    assert title == "Before the revocation"


def test_an_api_write_shows_in_the_films_admin_history_under_its_token_owner(
    live_stack: Stack, servers: Servers
) -> None:
    api = servers.api.port
    movie = orjson.loads(fetch(api, "/api/movies?limit=1&sort=-id").body)["items"][0]["id"]
    detail = fetch(api, f"/api/movies/{movie}")
    headers = {
        "Authorization": f"Bearer {live_stack.token}",
        "Content-Type": "application/json",
        "If-Match": detail.headers["ETag"],
    }
    body = orjson.dumps({"title": "Renamed through the API", "rating": 6.5})
    assert fetch(api, f"/api/movies/{movie}", "PATCH", body, headers).status == 200
    history = servers.curator.get(f"/admin/movies/movie/{movie}/history/")
    assert history.status == 200
    table = re.search(rb'<div id="change-history".*?<tbody>(.*?)</tbody>', history.body, re.S)
    assert table is not None, history.body[:3000]
    # Each row: date (th), user, action; oldest first.
    rows = re.findall(rb"<td>(.*?)</td>\s*<td>(.*?)</td>", table[1], re.S)
    assert rows[-1] == (live_stack.curator.encode(), b"Changed Title and Rating.")


# A bounded load: each client sends one request at a time, back to back.
READERS = 6
RESTART_DOWN_SECONDS = 1.0
LOAD_AFTER_RESTART_SECONDS = 4.0


@dataclass(frozen=True)
class Sent:
    """One request of the load: what, when it was sent, and its answer."""

    target: str
    started: float
    reply: Reply


def read_load(servers: Servers, stop: threading.Event) -> list[Sent]:
    """Reads from one client until ``stop``: the API's list and detail, the
    comparison view, the admin's change list, in turn."""
    api, admin = servers.api.port, servers.admin.port
    targets: list[tuple[str, Callable[[], Reply]]] = [
        ("api list", lambda: fetch(api, API_LIST)),
        ("api detail", lambda: fetch(api, "/api/movies/1")),
        ("view", lambda: fetch(admin, VIEW_LIST)),
        ("admin", lambda: servers.curator.get(ADMIN_LIST)),
    ]
    sent: list[Sent] = []
    while not stop.is_set():
        for target, send in targets:
            started = time.monotonic()
            sent.append(Sent(target, started, send()))
    return sent


def write_load(
    live_stack: Stack, port: int, stop: threading.Event
) -> list[tuple[int, float, Reply]]:
    """New films, one at a time until ``stop``: (number, when sent, answer) of each."""
    headers = {"Authorization": f"Bearer {live_stack.token}", "Content-Type": "application/json"}
    sent: list[tuple[int, float, Reply]] = []
    number = 0
    while not stop.is_set():
        number += 1
        body = orjson.dumps({"title": f"Written across a restart {number}", "year": 2001})
        started = time.monotonic()
        sent.append((number, started, fetch(port, "/api/movies", "POST", body, headers)))
    return sent


def test_a_restart_under_load_fails_no_read_once_the_database_answers(
    live_stack: Stack, servers: Servers
) -> None:
    # Each API thread, and each pooled connection of the admin, holds a connection
    # the crash kills: found dead by a request after the restart, the request runs
    # again on a fresh one instead of failing (mymoviedb/reconnect.py).
    stop = threading.Event()
    with ThreadPoolExecutor(READERS + 1) as clients:
        readers = [clients.submit(read_load, servers, stop) for _ in range(READERS)]
        writer = clients.submit(write_load, live_stack, servers.api.port, stop)
        time.sleep(1.0)  # every thread and pooled connection in use before the crash
        crashed = time.monotonic()
        live_stack.cluster.stop("immediate")
        try:
            time.sleep(RESTART_DOWN_SECONDS)
        finally:
            live_stack.cluster.start()  # returns once the server accepts connections
        answering = time.monotonic()
        live_stack.cluster.run("pg_isready", "-h", "127.0.0.1", "-p", str(live_stack.cluster.port))
        time.sleep(LOAD_AFTER_RESTART_SECONDS)
        stop.set()
        reads = [sent for reader in readers for sent in reader.result()]
        writes = writer.result()

    after = [sent for sent in reads if sent.started >= answering]
    failed_after = Counter(sent.target for sent in after if sent.reply.status != 200)
    during = [sent for sent in reads if crashed <= sent.started < answering]
    refused = [sent for sent in during if sent.reply.status != 200]
    slowest = max((sent.reply.seconds for sent in refused), default=0.0)
    writes_after = [reply.status for _, started, reply in writes if started >= answering]
    print(
        f"\nrestart under load: {len(reads)} reads; while down {len(refused)} of "
        f"{len(during)} refused, slowest {slowest:.2f} s; "
        f"after pg_isready {sum(failed_after.values())} of {len(after)} failed "
        f"{dict(failed_after)}; writes: {len(writes)} sent, "
        f"{sum(reply.status == 201 for _, _, reply in writes)} acknowledged, "
        f"{sum(status != 201 for status in writes_after)} of {len(writes_after)} "
        "failed after pg_isready"
    )
    # From the moment the database answers, no read fails, counting every one.
    assert not failed_after, [
        (s.target, s.reply.status, s.reply.body[:200]) for s in after if s.reply.status != 200
    ]
    assert len(after) >= READERS * 4, "too few reads after the restart to mean anything"
    # While it was down: 503s in the API's shape (the admin's page), in bounded time.
    for sent in refused:
        assert sent.reply.status == 503, (sent.target, sent.reply.body[:300])
        assert sent.reply.seconds < MAX_SECONDS_TO_503, (sent.target, sent.reply.seconds)
        if sent.target != "admin":
            assert_unavailable_problem(sent.reply)
    # Every write the API acknowledged is there; every other one is a 503, not a 500.
    acknowledged = [number for number, _, reply in writes if reply.status == 201]
    assert acknowledged and all(reply.status in (201, 503) for _, _, reply in writes), [
        (reply.status, reply.body[:200]) for _, _, reply in writes if reply.status not in (201, 503)
    ]
    titles = {
        row[0]
        for row in live_stack.cluster.psql(
            "SELECT title FROM movies_movie WHERE title LIKE 'Written across a restart %'"
        )
    }
    lost = [n for n in acknowledged if f"Written across a restart {n}" not in titles]
    assert not lost, lost
    # Nothing leaked: every backend of the servers idle, within their bounds.
    connections = backends(live_stack, "faults-api", "faults-admin")
    assert {state for _, state in connections} == {"idle"}, connections
    per_server = Counter(name for name, _ in connections)
    assert per_server["faults-api"] <= API_WORKERS * API_THREADS
    assert per_server["faults-admin"] <= POOL_MAX_SIZE
