"""ASGI entry point of the Django side, laid out as ``startproject`` does. Nothing
deploys it (the admin runs on ``mymoviedb.wsgi``, the API is ``aioapi``); bench/'s
``django-asgi`` contender serves it with bench/settings.py."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mymoviedb.settings")

application = get_asgi_application()
