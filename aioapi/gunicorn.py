"""Gunicorn entry point: ``gunicorn aioapi.gunicorn:app --worker-class
aiohttp.GunicornUVLoopWebWorker`` (see deploy/ for the full configuration).

Each worker awaits :func:`app`, so Django is set up in the worker process, after
the fork, and each worker owns its bridge threads and its connection pool.
"""

from __future__ import annotations

import os

import django
from aiohttp import web


async def app() -> web.Application:
    """The API application of one Gunicorn worker."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mymoviedb.settings")
    django.setup()
    from aioapi.app import create_app

    return create_app()
