"""The settings every bench server runs with: the product's, plus the contenders' app
(bench/contenders/: the async views, the DRF API, the simulated latency) and DRF's
configuration. Nothing here changes how the product itself answers."""

from mymoviedb.settings import *  # noqa: F403
from mymoviedb.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "rest_framework", "bench.contenders"]
ROOT_URLCONF = "bench.contenders.urls"
# The DRF contender as a typical project configures it: JSON only (no browsable API),
# anonymous and read-only, LimitOffsetPagination with its defaults (no max_limit: a
# client may ask for every film) and the API's page size (tests/test_drf.py checks it).
REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 20,
}
