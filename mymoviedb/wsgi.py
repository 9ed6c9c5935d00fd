"""WSGI entry point: Gunicorn serves the admin and the comparison views from here."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mymoviedb.settings")

application = get_wsgi_application()
