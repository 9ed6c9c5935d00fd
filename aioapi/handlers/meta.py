"""``/api/openapi.json`` and ``/api/docs``: the API describing itself.

Both bodies are built once at start-up (they cannot change while the process
runs) and served with an ETag like every other GET. The docs page and its
assets come from the swagger-ui-py package: nothing is fetched from a CDN.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from swagger_ui.core import ApplicationDocument

from aioapi.keys import DOCS_HTML, OPENAPI_BODY
from aioapi.openapi import build_openapi
from aioapi.responses import cacheable
from movies.rendering import dumps

OPENAPI_PATH = "/api/openapi.json"
DOCS_PATH = "/api/docs"


async def openapi(request: web.Request) -> web.Response:
    """``GET /api/openapi.json``: the OpenAPI 3.1 document."""
    return cacheable(request, request.app[OPENAPI_BODY])


async def docs(request: web.Request) -> web.Response:
    """``GET /api/docs``: Swagger UI over the document."""
    return cacheable(request, request.app[DOCS_HTML], content_type="text/html")


def openapi_body() -> bytes:
    return dumps(build_openapi())


def docs_page() -> tuple[bytes, Path]:
    """The Swagger UI page and the directory of its bundled assets."""
    # Only the package's page template and static files are used: its own
    # route registration would bypass routes.py.
    document = ApplicationDocument(
        app=None, app_type="aiohttp", config_rel_url=OPENAPI_PATH, url_prefix=DOCS_PATH,
        title="mymoviedb API",
    )  # fmt: skip
    document.parameters["url"] = f'"{OPENAPI_PATH}"'
    return document.doc_html.encode(), Path(document.static_dir)
