"""``/api/people``: people by name, one person with the first page of their
filmography, and the pages of it."""

from __future__ import annotations

from aiohttp import web

from aioapi.keys import BRIDGE
from aioapi.reads import cacheable
from movies import selectors
from movies.problems import not_found
from movies.rendering import person_detail_body
from movies.schemas import FilmographyQuery, PeopleListQuery


async def list_people(request: web.Request, query: PeopleListQuery) -> web.Response:
    """``GET /api/people?q=``: a page of people, optionally matching a name."""
    page = await request.app[BRIDGE].run(selectors.list_people, query)
    return cacheable(request, page.body(query))


async def get_person(request: web.Request, person_id: int) -> web.Response:
    """``GET /api/people/{id}``: a person with the first page of their filmography."""
    found = await request.app[BRIDGE].run(selectors.get_person, person_id)
    if found is None:
        raise not_found("Person")
    return cacheable(request, person_detail_body(found))


async def list_films(request: web.Request, parsed: tuple[int, FilmographyQuery]) -> web.Response:
    """``GET /api/people/{id}/films``: a page of a person's filmography."""
    person_id, query = parsed
    found = await request.app[BRIDGE].run(selectors.get_filmography, person_id, query)
    if found is None:
        raise not_found("Person")
    return cacheable(request, found.page.body(query))
