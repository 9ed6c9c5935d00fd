"""Django middleware: a database outage is a clear 503 with Retry-After, never a 500.

The comparison views (the ``movies`` app, sync or async) answer in the API's problem shape,
like aioapi's middleware does; the admin gets a short HTML page. Either way a
client or a load balancer knows the failure is temporary and when to retry.
"""

from __future__ import annotations

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin

from movies.problems import database_unavailable
from movies.rendering import NO_STORE
from movies.views import problem_response

HTML_CONTENT_TYPE = "text/html; charset=utf-8"
UNAVAILABLE_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>503 Service Unavailable</title></head>
<body><h1>Service unavailable</h1>
<p>The database is unavailable; try again in a few seconds.</p></body></html>
"""


class DatabaseUnavailableMiddleware(MiddlewareMixin):
    """Answer an ``OperationalError`` or ``InterfaceError`` of a view with 503.

    Sync and async (the mixin): under ASGI a sync-only middleware would put every
    request through a thread and back (Django's "Asynchronous support").
    """

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """Only for view errors: Django runs this hook, not ``__call__``, around them.

        The session and the user load lazily, inside the view, so a down database
        surfaces here for the admin too.
        """
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        problem = database_unavailable(exception)  # logs it
        match = request.resolver_match
        if match is not None and match.app_name == "movies":
            return problem_response(problem)
        response = HttpResponse(UNAVAILABLE_PAGE, status=503, content_type=HTML_CONTENT_TYPE)
        for name, value in problem.headers.items():
            response[name] = value
        # A cache must not keep the outage page after the database is back.
        response["Cache-Control"] = NO_STORE
        return response
