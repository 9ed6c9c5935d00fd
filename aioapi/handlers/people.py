"""``/api/people``: people by name, and one person with their filmography."""

from __future__ import annotations

from aiohttp import web

from aioapi.cached import cached, cached_query
from aioapi.keys import BRIDGE
from aioapi.responses import cacheable
from movies import selectors
from movies.parsing import parse_id
from movies.problems import not_found
from movies.rendering import dumps, people_list_body
from movies.schemas import PeopleListQuery


@cached_query(PeopleListQuery)
async def list_people(request: web.Request, query: PeopleListQuery) -> web.Response:
    """``GET /api/people?q=``: a page of people, optionally matching a name."""
    page = await request.app[BRIDGE].run(selectors.list_people, query)
    return cacheable(request, people_list_body(page, query))


@cached()
async def get_person(request: web.Request) -> web.Response:
    """``GET /api/people/{id}``: a person with their filmography, newest first."""
    person_id = parse_id(request.match_info["id"])
    person = await request.app[BRIDGE].run(selectors.get_person, person_id) if person_id else None
    if person is None:
        raise not_found("Person")
    return cacheable(request, dumps(person))
