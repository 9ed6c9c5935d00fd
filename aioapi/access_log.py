"""The API's access logs: every field escaped, the client and the peer told apart.

``API_ACCESS_LOG=text`` writes aiohttp's format syntax (Gunicorn's
``access_log_format`` in deploy/gunicorn_api.conf.py) with two more atoms, and
``json`` one object per line. In both the client is the peer unless the peer is
a trusted proxy (aioapi.forwarded), the peer is always the connection's, and
``X-Forwarded-For`` is logged as sent, as a field of its own.

A header is the client's to write: logged raw, a quote, a backslash or a control
character in it (``X-Forwarded-For: 1.2.3.4" "GET /admin HTTP/1.1" 200``) would
forge fields or whole lines. Every value of a text line is escaped as nginx
escapes its logs: ``"``, ``\\``, controls and line separators as ``\\xHH``.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_log import AccessLogger
from multidict import CIMultiDictProxy

from aioapi.forwarded import Networks, client_of
from movies.rendering import dumps

# The default text line: client, peer, the forwarded chain as sent, then aiohttp's fields.
TEXT_FORMAT = '%a %{peer}a "%{X-Forwarded-For}i" %t "%r" %s %b "%{Referer}i" "%{User-Agent}i"'
_ESCAPED = {
    code: f"\\x{code:02X}"
    for code in (*range(0x20), 0x22, 0x5C, *range(0x7F, 0xA0))
} | {0x2028: "\\u2028", 0x2029: "\\u2029"}  # fmt: skip
# An atom's key in the record's extra, and its value of (logger, request, response, time).
Field = tuple[Any, Callable[..., Any]]
# aiohttp's atoms, and %{client}a (as %a) and %{peer}a.
_ATOM = re.compile(r"%(\{([A-Za-z0-9\-_]+)\}([ioea])|[atPrsbOD]|Tf?)")


def escape(value: str) -> str:
    """``value`` safe inside a quoted field of one log line."""
    return value.translate(_ESCAPED)


def _forwarded_for(request: web.BaseRequest) -> list[str]:
    headers = request.headers
    # A request the parser refused has a plain dict for headers, and none parsed.
    return headers.getall("X-Forwarded-For", []) if isinstance(headers, CIMultiDictProxy) else []


class TextAccessLogger(AccessLogger):
    """aiohttp's access log with every value escaped; ``%a`` is the client."""

    trusted: ClassVar[Networks] = ()

    def __init__(self, logger: logging.Logger, log_format: str = TEXT_FORMAT) -> None:
        AbstractAccessLogger.__init__(self, logger, log_format)
        if log_format == AccessLogger.LOG_FORMAT:  # aiohttp's default: say more
            log_format = TEXT_FORMAT
        self._log_format, self._fields = _compile(type(self), log_format)

    def _client(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> str:
        return client_of(request.remote, _forwarded_for(request), self.trusted)

    @staticmethod
    def _peer(request: web.BaseRequest, response: web.StreamResponse, time: float) -> str:
        return request.remote or "-"

    def _format_line(
        self, request: web.BaseRequest, response: web.StreamResponse, time: float
    ) -> list[tuple[Any, Any]]:
        line = []
        for key, method in self._fields:
            value = method(self, request, response, time)
            line.append((key, escape(value) if isinstance(value, str) else value))
        return line


@functools.lru_cache(maxsize=16)  # a logger is made per connection: compile each format once
def _compile(logger: type[TextAccessLogger], log_format: str) -> tuple[str, list[Field]]:
    """The %-format of ``log_format`` and each atom's (key, value of logger and request)."""
    fields: list[Field] = []
    for atom, name, kind in _ATOM.findall(log_format):
        method: Callable[..., Any]
        if atom == "a" or (kind == "a" and name == "client"):
            key: Any = "remote_address"
            method = logger._client
        elif kind == "a":
            if name != "peer":
                raise ValueError(f"unknown access log atom %{{{name}}}a (client or peer)")
            key, method = "peer_address", _unbound(logger._peer)
        elif kind:
            key = (AccessLogger.LOG_FORMAT_MAP[kind], name)
            method = _unbound(functools.partial(getattr(AccessLogger, f"_format_{kind}"), name))
        else:
            key = AccessLogger.LOG_FORMAT_MAP[atom]
            method = _unbound(getattr(AccessLogger, f"_format_{atom}"))
        fields.append((key, method))
    text = _ATOM.sub("%s", log_format)
    return AccessLogger.CLEANUP_RE.sub(r"%\1", text), fields


def _unbound(method: Callable[..., Any]) -> Callable[..., Any]:
    # Every method is called with the logger first (the client needs its class).
    return lambda _logger, request, response, time: method(request, response, time)


class JsonAccessLogger(AbstractAccessLogger):
    """One JSON object per request: client, peer, forwarded chain, request, status,
    size, duration and user agent (JSON escapes every value)."""

    trusted: ClassVar[Networks] = ()

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        forwarded = _forwarded_for(request)
        record = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "client": client_of(request.remote, forwarded, self.trusted),
            "peer": request.remote,
            "forwarded_for": ", ".join(forwarded) if forwarded else None,
            "method": request.method,
            "path": request.path,
            "query": request.query_string,
            "status": response.status,
            "bytes_sent": response.body_length,  # headers included, like %b
            "duration_ms": round(time * 1000, 3),
            "user_agent": request.headers.get("User-Agent"),
        }
        self.logger.info(dumps(record).decode())


def logger_class(kind: str, trusted: Networks) -> type[AbstractAccessLogger]:
    """The access logger class of ``API_ACCESS_LOG`` (text or json), trusting ``trusted``."""
    base: type[TextAccessLogger] | type[JsonAccessLogger]
    base = JsonAccessLogger if kind == "json" else TextAccessLogger
    return type(base.__name__, (base,), {"trusted": trusted})
