"""/metrics under Gunicorn counts the requests of every worker, not the scraped one's.

A real Gunicorn with deploy/gunicorn_api.conf.py and two workers on the
throw-away cluster (tests/live.py): N requests spread over both, then every
scrape, whichever worker answers it, reads N.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from prometheus_client.parser import text_string_to_metric_families

from tests.live import Stack, fetch

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
