"""ASGI entry point of the Django side: what bench/'s ``django-asgi`` contender serves.

Laid out as Django's ``startproject`` does. bench/ runs it under Gunicorn with
uvicorn's worker (``uvicorn_worker.UvicornWorker``, as Django's "How to use Django
with Uvicorn" deploys it) to measure the async comparison views under
``/async/movies/`` (movies/async_views.py) against the same views under WSGI. The
admin is deployed under Gunicorn through ``mymoviedb.wsgi``; the public API is the
aiohttp process in ``aioapi``.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mymoviedb.settings")

application = get_asgi_application()
