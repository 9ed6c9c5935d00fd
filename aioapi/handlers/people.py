"""``/api/people``: people by name, and one person with their filmography."""

from __future__ import annotations

from aiohttp import web

from aioapi.keys import BRIDGE
from aioapi.reads import cacheable
from movies import selectors
from movies.problems import not_found
from movies.rendering import dumps
from movies.schemas import PeopleListQuery


async def list_people(request: web.Request, query: PeopleListQuery) -> web.Response:
    """``GET /api/people?q=``: a page of people, optionally matching a name."""
    page = await request.app[BRIDGE].run(selectors.list_people, query)
    return cacheable(request, page.body(query))


async def get_person(request: web.Request, person_id: int) -> web.Response:
    """``GET /api/people/{id}``: a person with their filmography, newest first."""
    person = await request.app[BRIDGE].run(selectors.get_person, person_id)
    if person is None:
        raise not_found("Person")
    return cacheable(request, dumps(person))
