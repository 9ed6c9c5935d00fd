"""What every handler shares: conditional GET responses and JSON request bodies."""

from __future__ import annotations

from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel

from aioapi.keys import SETTINGS
from movies.problems import Problem
from movies.rendering import JSON_CONTENT_TYPE, etag, etag_matches
from movies.schemas import parse_body

BodyModel = TypeVar("BodyModel", bound=BaseModel)

NO_STORE = "no-store"


def cacheable(
    request: web.Request, body: bytes, content_type: str = JSON_CONTENT_TYPE
) -> web.Response:
    """A GET answer with a strong ETag: 304 when ``If-None-Match`` already has it."""
    tag = etag(body)
    headers = {"ETag": tag, "Cache-Control": request.app[SETTINGS].cache_control}
    if etag_matches(request.headers.get("If-None-Match"), tag):
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, content_type=content_type, headers=headers)


def uncached(body: bytes, *, content_type: str = JSON_CONTENT_TYPE) -> web.Response:
    """An answer no cache may keep (probes, metrics)."""
    # Set as a header, not content_type=, so parameters such as Prometheus's
    # "version=0.0.4" pass through unchanged.
    headers = {"Content-Type": content_type, "Cache-Control": NO_STORE}
    return web.Response(body=body, headers=headers)


async def json_body(request: web.Request, model: type[BodyModel]) -> BodyModel:
    """The validated JSON body: 415 for another media type, 413 past the size limit
    (raised by aiohttp while reading), 400 for malformed JSON or invalid fields."""
    if request.content_type != JSON_CONTENT_TYPE or request.charset not in (None, "utf-8"):
        raise Problem(415, "The request body must be application/json (UTF-8).")
    return parse_body(model, await request.read())
