"""Gunicorn entry point: ``gunicorn aioapi.gunicorn:app`` with one of aioapi.worker's
worker classes (deploy/gunicorn_api.conf.py names the one deployed).

Each worker awaits :func:`app`, so Django is set up in the worker process, after
the fork, and each worker owns its bridge threads and their connections.
"""

from __future__ import annotations

import os

import django
from aiohttp import web


async def app() -> web.Application:
    """The API application of one Gunicorn worker."""
    from aioapi.db import use_api_connection_policy

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mymoviedb.settings")
    use_api_connection_policy()
    django.setup()
    from aioapi.app import create_app
    from mymoviedb.startup import freeze_startup_objects

    app = create_app()
    freeze_startup_objects()
    return app
