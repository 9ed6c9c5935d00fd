"""ASGI entry point, for running the Django side under an ASGI server if wanted.

The public API is not served from here: it is the aiohttp process in ``aioapi``.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mymoviedb.settings")

application = get_asgi_application()
