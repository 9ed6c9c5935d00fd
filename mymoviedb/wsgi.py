"""WSGI entry point: Gunicorn serves the admin and the comparison views from here."""

import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

from mymoviedb.body_deadline import BodyDeadline
from mymoviedb.startup import freeze_startup_objects

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mymoviedb.settings")

# A body sent slowly is a 408 at the deadline, not a Gunicorn thread held.
application = BodyDeadline(get_wsgi_application(), seconds=settings.REQUEST_BODY_TIMEOUT_SECONDS)
freeze_startup_objects()
