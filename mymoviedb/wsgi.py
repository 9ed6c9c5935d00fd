"""WSGI entry point: Gunicorn serves the admin and the comparison views from here."""

import os

from django.core.wsgi import get_wsgi_application

from mymoviedb.startup import freeze_startup_objects

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mymoviedb.settings")

application = get_wsgi_application()
freeze_startup_objects()
