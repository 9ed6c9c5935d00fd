"""Django middleware: a database outage is a clear 503 with Retry-After, never a 500.

A view whose connection turned out dead (the database or PgBouncer restarted,
and a pooled or kept connection with it) first runs once more on a fresh one
when nothing it did can have been committed (:mod:`mymoviedb.reconnect`): a
restart costs no request.

The comparison views (the ``movies`` app, sync or async) answer in the API's problem shape,
like aioapi's middleware does; the admin gets a short HTML page. Either way a
client or a load balancer knows the failure is temporary and when to retry.
"""

from __future__ import annotations

from asgiref.sync import iscoroutinefunction
from django.core.signals import request_started
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin

from movies.conditional import NO_STORE
from movies.problems import database_unavailable
from movies.views import problem_response
from mymoviedb import reconnect

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
        try:
            retried = _run_again(request, exception)
        except (OperationalError, InterfaceError) as again:
            exception, retried = again, None
        if retried is not None:
            return retried
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


def _run_again(request: HttpRequest, error: Exception) -> HttpResponse | None:
    """The view's answer on a fresh connection, if the request may run again (once).

    Django's handler has no retry of its own: the view is called again here, with
    the arguments it was resolved with, and a template response rendered here
    because an error in rendering comes back to this hook after Django's render.
    An async view (the bench's /async/ contenders) is not run again.
    """
    match = request.resolver_match
    alias = reconnect.lost_alias(error)
    if match is None or alias is None or iscoroutinefunction(match.func):
        return None
    if getattr(request, "_mymoviedb_retried", False):
        return None
    request._mymoviedb_retried = True  # type: ignore[attr-defined]
    reconnect.discard_dead_connection(alias)
    reconnect.begin_unit()
    response: HttpResponse = match.func(request, *match.args, **match.kwargs)
    render = getattr(response, "render", None)
    if callable(render):
        render()
    return response


def _begin_unit(**_kwargs: object) -> None:
    reconnect.begin_unit()


# Every request is one unit of work: a gthread worker reuses its threads, and so
# their context, for the next request.
request_started.connect(_begin_unit, dispatch_uid="mymoviedb.middleware.unit")
