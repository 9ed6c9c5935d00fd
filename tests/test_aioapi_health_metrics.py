"""/healthz, /readyz and /metrics."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from aioapi.app import create_app
from aioapi.db import OrmBridge
from aioapi.settings import ApiSettings
from tests.api_fixtures import ApiClient, Catalogue, json_of

AppClient = Callable[..., Awaitable[ApiClient]]


async def block_bridge(bridge: OrmBridge, release: threading.Event) -> asyncio.Future[bool]:
    """Occupy the bridge's only thread until ``release`` is set."""
    blocker = asyncio.ensure_future(bridge.run(release.wait, 10))
    await asyncio.sleep(0)
    assert bridge.pending == 1
    return blocker


async def test_healthz_answers_without_the_database(
    aiohttp_client: AppClient, api_settings: ApiSettings
) -> None:
    bridge = OrmBridge(threads=1, max_pending=1)
    api = await aiohttp_client(create_app(api_settings, bridge=bridge))
    release = threading.Event()
    blocker = await block_bridge(bridge, release)
    try:
        response = await api.get("/healthz")
        assert response.status == 200
        assert response.headers["Cache-Control"] == "no-store"
        assert await json_of(response) == {"status": "ok"}
    finally:
        release.set()
        await blocker


@pytest.mark.django_db(transaction=True)
async def test_readyz_checks_the_database(api: ApiClient) -> None:
    response = await api.get("/readyz")
    assert response.status == 200
    assert await json_of(response) == {"status": "ready"}


@pytest.mark.django_db(transaction=True)
async def test_readyz_is_503_when_the_database_does_not_answer_in_time(
    aiohttp_client: AppClient, api_settings: ApiSettings
) -> None:
    settings = api_settings.model_copy(update={"ready_timeout_seconds": 0.2})
    bridge = OrmBridge(threads=1, max_pending=2)
    api = await aiohttp_client(create_app(settings, bridge=bridge))
    release = threading.Event()
    blocker = await block_bridge(bridge, release)
    try:
        response = await api.get("/readyz")
        assert response.status == 503
        assert response.headers["Retry-After"] == "5"
        assert await json_of(response) == {
            "type": "about:blank",
            "title": "Service Unavailable",
            "status": 503,
            "detail": "The database did not answer within 0.2 s.",
        }
    finally:
        release.set()
        await blocker
    assert (await api.get("/readyz")).status == 200


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


@pytest.mark.django_db(transaction=True)
async def test_metrics_count_requests_by_route_template_and_status(
    api: ApiClient, catalogue: Catalogue
) -> None:
    for movie in list(catalogue.movies.values())[:3]:
        assert (await api.get(f"/api/movies/{movie.pk}")).status == 200
    assert (await api.get("/api/movies/0")).status == 404
    assert (await api.get("/no/such/path")).status == 404
    assert (await api.get("/api/movies?limit=0")).status == 400

    response = await api.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST
    found = samples(await response.text())

    def count(route: str, status: str) -> float:
        labels = (("method", "GET"), ("route", route), ("status", status))
        assert (
            found[("api_http_request_duration_seconds_count", labels)]
            == found[("api_http_requests_total", labels)]
        )
        return found[("api_http_requests_total", labels)]

    assert count("/api/movies/{id}", "200") == 3
    assert count("/api/movies/{id}", "404") == 1
    assert count("unmatched", "404") == 1
    assert count("/api/movies", "400") == 1
    assert found[("api_db_bridge_threads", ())] == 4
    assert found[("api_db_bridge_max_pending", ())] == 64
    assert found[("api_db_bridge_pending", ())] == 0


@pytest.mark.postgres(reason="Django's psycopg connection pool")
@pytest.mark.django_db(transaction=True)
async def test_metrics_report_the_connection_pool(api: ApiClient, catalogue: Catalogue) -> None:
    assert (await api.get("/api/genres")).status == 200
    found = samples(await (await api.get("/metrics")).text())
    assert found[("api_db_pool_pool_max", ())] >= 1
    assert found[("api_db_pool_requests_num", ())] >= 1
    assert found[("api_db_pool_pool_size", ())] >= found[("api_db_pool_pool_available", ())]


async def test_metrics_report_the_prepared_statements(api: ApiClient, catalogue: Catalogue) -> None:
    from movies import prepared

    prepared.STATEMENTS.clear()
    before = samples(await (await api.get("/metrics")).text())
    assert before[("api_prepared_statements", ())] == 0
    for year in (1979, 1982, 1986):  # one shape, three values
        assert (await api.get(f"/api/movies?year={year}")).status == 200
    found = samples(await (await api.get("/metrics")).text())

    def grew(name: str) -> float:
        return found[(name, ())] - before[(name, ())]

    assert grew("api_prepared_statements_compiles_total") == 1
    assert grew("api_prepared_statements_misses_total") == 1
    assert grew("api_prepared_statements_hits_total") == 2
    assert found[("api_prepared_statements", ())] == 1
    assert found[("api_prepared_statements_max", ())] == prepared.STATEMENTS.max_size
