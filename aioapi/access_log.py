"""A JSON access log (``API_ACCESS_LOG=json``): one object per request, one per line."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from movies.rendering import dumps


class JsonAccessLogger(AbstractAccessLogger):
    """Log method, path, status, size, duration, client and user agent as JSON."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        record = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "remote": request.remote,
            "method": request.method,
            "path": request.path,
            "query": request.query_string,
            "status": response.status,
            "bytes_sent": response.body_length,  # headers included, like %b
            "duration_ms": round(time * 1000, 3),
            "user_agent": request.headers.get("User-Agent"),
        }
        self.logger.info(dumps(record).decode())
