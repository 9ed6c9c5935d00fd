"""Headers every answer of the API carries, on both servers.

Bodies hold stored user text (titles, synopses), so no browser may sniff one into
HTML, nor run, load or frame anything should it render one. Built once: each
response copies the constant, no per-request work. The docs page sends its own,
looser policy (aioapi.handlers.meta.docs_headers).
"""

from __future__ import annotations

from typing import Final

SECURITY_HEADERS: Final[dict[str, str]] = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}
