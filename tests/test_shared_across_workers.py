"""What the API's Gunicorn workers share: /metrics totals, the failed-authentication limit.

A real Gunicorn with deploy/gunicorn_api.conf.py and two workers on the
throw-away cluster (tests/live.py), sent concurrent requests on new connections
so that both workers take some: every scrape, whichever worker answers it,
reads the total; a client's failures count against it in every worker.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from prometheus_client.parser import text_string_to_metric_families

from tests.live import Reply, Stack, fetch

WORKERS = 2
REQUESTS = 200
ROUTE = "/api/genres"


def requests_counted(port: int) -> dict[str, float]:
    """``api_http_requests_total`` by (route, status) from one scrape."""
    exposition = fetch(port, "/metrics").body.decode()
    counted: dict[str, float] = {}
    for family in text_string_to_metric_families(exposition):
        if family.name != "api_http_requests":
            continue
        for sample in family.samples:
            if sample.name == "api_http_requests_total":
                key = (
                    f"{sample.labels['method']} {sample.labels['route']} {sample.labels['status']}"
                )
                counted[key] = counted.get(key, 0.0) + sample.value
    return counted


def test_metrics_total_every_workers_requests(live_stack: Stack) -> None:
    server = live_stack.api("metrics-api", workers=WORKERS)
    try:
        # Concurrent clients on new connections: both workers accept some.
        with ThreadPoolExecutor(8) as clients:
            statuses = list(
                clients.map(lambda _: fetch(server.port, ROUTE).status, range(REQUESTS))
            )
        assert statuses == [200] * REQUESTS
        # Scrapes on new connections reach either worker; each reads the total.
        totals = [requests_counted(server.port)[f"GET {ROUTE} 200"] for _ in range(4 * WORKERS)]
        assert totals == [REQUESTS] * len(totals)
    finally:
        server.stop()
    log = server.output()
    assert "Traceback" not in log, log[-3000:]


def test_failed_authentications_are_limited_across_workers(live_stack: Stack) -> None:
    # Which worker of a Gunicorn accepts a connection is the kernel's choice (one may
    # take nearly all): a second server, one more worker, takes every other guess.
    first = live_stack.api("auth-limit-api", workers=WORKERS, API_TRUSTED_PROXIES="127.0.0.1")
    second = live_stack.api("auth-limit-api-2", workers=1, API_TRUSTED_PROXIES="127.0.0.1")
    limit = 10  # API_AUTH_FAILURES_PER_MINUTE's default
    guesser = {
        "X-Forwarded-For": "192.0.2.77",
        "Authorization": "Bearer guess.secret",
        "Content-Type": "application/json",
    }

    def guess(port: int, headers: dict[str, str] = guesser) -> Reply:
        return fetch(port, "/api/movies", "POST", b"{}", headers)

    try:
        replies = [guess(server.port) for _ in range(3 * limit) for server in (first, second)]
        statuses = [reply.status for reply in replies]
        # Per worker, the first ten each would be 401s: twenty or more.
        assert statuses == [401] * limit + [429] * (5 * limit), statuses
        for reply in replies[limit:]:
            assert 1 <= int(reply.headers["Retry-After"]) <= 60
        # Another address is not limited by this one's failures.
        other = guess(first.port, {**guesser, "X-Forwarded-For": "192.0.2.78"})
        assert other.status == 401
    finally:
        first.stop()
        second.stop()
