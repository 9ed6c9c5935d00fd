"""mymoviedb/startup.py: both servers' entry points exempt start-up objects from the
garbage collector's scans."""

from __future__ import annotations

import gc
import importlib
import warnings
from collections.abc import Iterator

import pytest


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    yield
    gc.unfreeze()


def test_freeze_moves_the_living_objects_out_of_the_collectors_reach(unfrozen: None) -> None:
    from mymoviedb.startup import freeze_startup_objects

    tracked = len(gc.get_objects())
    freeze_startup_objects()

    assert gc.get_freeze_count() >= tracked // 2
    assert len(gc.get_objects()) < tracked // 2


def test_the_wsgi_entry_point_freezes_after_loading_django(unfrozen: None) -> None:
    with warnings.catch_warnings():
        # WhiteNoise notes a missing STATIC_ROOT (no collectstatic here): irrelevant.
        warnings.filterwarnings("ignore", "No directory at", UserWarning)
        import mymoviedb.wsgi

        importlib.reload(mymoviedb.wsgi)

    assert gc.get_freeze_count() > 0


async def test_the_api_workers_app_factory_freezes_after_building_the_app(
    unfrozen: None,
) -> None:
    from aioapi.gunicorn import app

    built = await app()

    assert gc.get_freeze_count() > 0
    await built.cleanup()
