"""bench/contenders/async_views.py: the async comparison views answer as the sync ones do.

Django's AsyncClient against ``/async/movies/``, its Client against ``/movies/``:
the same status, the same bytes and the same ETag for every request, errors,
pagination links and conditional GETs included, so bench's ``django-asgi`` row
measures the server and nothing else.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import AsyncClient, Client

from tests.api_fixtures import Catalogue, orm
from tests.test_parity import DETAIL_IDS, LIST_QUERIES, ids

pytestmark = [
    # The views reach the ORM through sync_to_async, on another thread.
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
    pytest.mark.usefixtures("bench_settings"),
]


async def both(path: str, method: str = "GET", headers: dict[str, str] | None = None) -> Any:
    """(status, body, ETag) of ``/movies/{path}`` (sync) and ``/async/movies/{path}``."""
    sync = await orm(lambda: Client().generic(method, f"/movies/{path}", headers=headers))
    run = await AsyncClient().generic(method, f"/async/movies/{path}", headers=headers)
    return (
        (sync.status_code, sync.content, sync.headers.get("ETag")),
        (run.status_code, run.content, run.headers.get("ETag")),
    )


async def test_lists_are_byte_identical(catalogue: Catalogue) -> None:
    statuses = set()
    for raw in LIST_QUERIES:
        query = raw.format(**ids(catalogue))
        sync, run = await both(f"?{query}")
        assert sync == run, query
        statuses.add(run[0])
    assert statuses == {200, 400}


async def test_details_are_byte_identical(catalogue: Catalogue) -> None:
    statuses = set()
    for raw in DETAIL_IDS:
        movie_id = raw.format(**ids(catalogue))
        sync, run = await both(f"{movie_id}/")
        assert sync == run, movie_id
        statuses.add(run[0])
    assert statuses == {200, 404}


async def test_conditional_get_and_wrong_method_are_the_same(catalogue: Catalogue) -> None:
    _, first = await both("?limit=3")
    etag = first[2]
    sync, run = await both("?limit=3", headers={"If-None-Match": etag})
    assert sync == run == (304, b"", etag)
    heat = catalogue.movies["Heat"].pk
    sync, run = await both(f"{heat}/", method="DELETE")
    assert sync == run
    assert run[0] == 405 and run[1].startswith(b'{"type"')


def test_the_async_views_are_coroutines() -> None:
    from asgiref.sync import iscoroutinefunction

    from bench.contenders import async_views

    assert iscoroutinefunction(async_views.movie_list)
    assert iscoroutinefunction(async_views.movie_detail)
    assert getattr(async_views.movie_list, "csrf_exempt", False) is True
