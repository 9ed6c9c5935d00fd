"""Django's error handlers: problem+json under the comparison views' prefixes,
Django's pages elsewhere.

``mymoviedb/urls.py`` installs them as ``handler400/403/404/500``. Django calls
them only for errors (and, for 404 and 500, only with ``DEBUG=0``: with it the
technical pages help a developer), so a successful request pays nothing. The
comparison views answer their own errors; these catch what reaches Django's
defaults: an unhandled exception (Django has already logged it, traceback and
all), a rejected request, a 404 raised anywhere under the prefix. The admin keeps
its HTML pages.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views import defaults

from movies.problems import Problem, internal_error, no_resource
from movies.views import problem_response

PREFIXES = ("/movies/", "/async/movies/")


def _on_api_path(request: HttpRequest) -> bool:
    return request.path_info.startswith(PREFIXES)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _on_api_path(request):
        return problem_response(Problem(400, "The request is malformed."))
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _on_api_path(request):
        return problem_response(Problem(403, "This request is not allowed."))
    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _on_api_path(request):
        return problem_response(no_resource())
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _on_api_path(request):
        return problem_response(internal_error())
    return defaults.server_error(request)
