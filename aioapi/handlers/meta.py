"""``/api/openapi.json`` and ``/api/docs``: the API describing itself.

Both bodies are built once at start-up (the document by aioapi.openapi, from the
route table) (they cannot change while the process
runs) and served with an ETag like every other GET. The docs page and its
assets come from the swagger-ui-py package: nothing is fetched from a CDN.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from html.parser import HTMLParser
from pathlib import Path

from aiohttp import web
from swagger_ui.core import ApplicationDocument

from aioapi.keys import DOCS_HTML, OPENAPI_BODY
from aioapi.reads import cacheable

OPENAPI_PATH = "/api/openapi.json"
DOCS_PATH = "/api/docs"


async def openapi(request: web.Request) -> web.Response:
    """``GET /api/openapi.json``: the OpenAPI 3.1 document."""
    return cacheable(request, request.app[OPENAPI_BODY])


async def docs(request: web.Request) -> web.Response:
    """``GET /api/docs``: Swagger UI over the document, locked down to its own assets."""
    html = request.app[DOCS_HTML]
    # docs_headers replace the JSON answers' Content-Security-Policy with the page's.
    response = cacheable(request, html, content_type="text/html")
    if response.status == 200:
        response.charset = "utf-8"
    response.headers.update(docs_headers(html))
    return response


@functools.lru_cache(maxsize=1)
def docs_headers(html: bytes) -> dict[str, str]:
    """The page's security headers, derived from the page once (it never changes).

    The CSP allows scripts, styles, images and fonts from this server only, plus
    the page's own inline start-up script by its hash (swagger-ui-py's template has
    one; a hash keeps the page working without ``'unsafe-inline'``). ``data:`` images
    are the icons inlined in swagger-ui.css; ``connect-src 'self'`` lets "Try it out"
    and the document's fetch reach the API. No site may frame the page.
    """
    hashes = " ".join(f"'sha256-{digest}'" for digest in inline_script_hashes(html.decode()))
    policy = (
        "default-src 'none'",
        f"script-src 'self' {hashes}".rstrip(),
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
    return {
        "Content-Security-Policy": "; ".join(policy),
        "X-Frame-Options": "DENY",  # frame-ancestors for browsers without CSP 2
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


def inline_script_hashes(html: str) -> list[str]:
    """Base64 SHA-256 of each inline ``<script>``'s text, as CSP hash sources name it."""
    parser = _InlineScripts()
    parser.feed(html)
    parser.close()
    return [
        base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() for text in parser.scripts
    ]


class _InlineScripts(HTMLParser):
    """Collects the text of every ``<script>`` without a ``src``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)  # a script's text is hashed as written
        self.scripts: list[str] = []
        self._current: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script" and not any(name == "src" for name, _ in attrs):
            self._current = []

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._current.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._current is not None:
            self.scripts.append("".join(self._current))
            self._current = None


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
