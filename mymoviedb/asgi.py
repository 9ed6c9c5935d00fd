"""ASGI entry point of the Django side; nothing in this repository serves it.

Kept as Django's ``startproject`` lays a project out (and STYLE.md lists it), so an
ASGI server can run the admin without new code. The admin is deployed under
Gunicorn through ``mymoviedb.wsgi``; the public API is the aiohttp process in
``aioapi``.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mymoviedb.settings")

application = get_asgi_application()
