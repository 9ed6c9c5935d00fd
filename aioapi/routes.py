"""The route table of the API: the one declaration of every operation.

Each :class:`Route` says how aiohttp routes it (method, path, handler, name), what
a read route parses from its request (aioapi.reads), how the OpenAPI document
describes it (its query or body schema, its responses) and, for a cached route,
which tags its answers carry (aioapi.response_cache). The router, the document
(aioapi.openapi) and the cache all read :data:`ROUTES`; :func:`check_routes`
refuses at start-up a table that the cache or the document could not serve.

GET routes answer HEAD too (aiohttp's ``allow_head``). A method a path does not
serve is a 405 problem with ``Allow``, produced by the error middleware.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import hdrs, web
from openapi_pydantic import Operation, Parameter

from aioapi import openapi_models as bodies
from aioapi.handlers import events, export, genres, health, meta, movies, people
from aioapi.openapi import events_operation, export_operation
from aioapi.openapi_builders import (
    WRITE_ERRORS,
    if_match,
    path_id,
    path_slug,
    probe,
    query_parameters,
    read,
    write,
)
from aioapi.reads import Inputs, endpoint
from aioapi.response_cache import (
    GENRE_LIST,
    MOVIE_LISTS,
    PEOPLE_LISTS,
    TagRule,
    always,
    movie_detail_tags,
    person_detail_tags,
)
from aioapi.responses import continue_when_read
from movies import shapes
from movies.bodies import MovieCreate, MovieFields
from movies.parsing import parse_slug
from movies.schemas import FilmographyQuery, MovieListQuery, PeopleListQuery

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# "export" is a sibling resource that only GETs: PATCH or DELETE of it is a 405
# with Allow, not a write to a film whose id is "export" (found by Schemathesis).
MOVIE_DETAIL = r"/api/movies/{id:(?!export$)[^{}/]+}"
# A variable of a path as OpenAPI writes it.
PATH_VARIABLE = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Route:
    """One operation: ``method`` and ``path`` (aiohttp's syntax) served by ``handler``.

    ``doc`` is its OpenAPI operation. ``inputs``, on a read route: what it parses
    from the request before its handler, which then takes the result
    (aioapi.reads). ``cache_tags``, on a read route whose answers the cache keeps,
    gives each answer's tags; such a route needs a ``name``, which keys its
    entries. ``takes_body``: the handler reads a JSON body, so ``100 Continue``
    waits for it (aioapi.responses).
    """

    method: str
    path: str
    handler: Callable[..., Awaitable[web.StreamResponse]]
    doc: Operation
    name: str | None = None
    inputs: Inputs | None = None
    cache_tags: TagRule | None = None
    takes_body: bool = False

    @property
    def doc_path(self) -> str:
        """The path as OpenAPI writes it: ``{id}`` without aiohttp's expression."""
        if "{" not in self.path:
            return self.path
        return web.DynamicResource(self.path).canonical

    def definition(self, *, cache: bool = False) -> web.RouteDef:
        """What aiohttp registers; ``cache``: the app keeps a response cache."""
        handler: Handler = self.handler
        if self.inputs is not None:
            cache_as = self.name if cache and self.cache_tags is not None else None
            handler = endpoint(self.inputs, self.handler, cache_as)
        if self.method == hdrs.METH_GET:
            return web.get(self.path, handler, name=self.name)
        expect = continue_when_read if self.takes_body else None
        return web.route(self.method, self.path, handler, name=self.name, expect_handler=expect)


def _routes() -> tuple[Route, ...]:
    movie_id = path_id("Film id.")
    person_id = path_id("Person id.")
    return (
        Route("GET", "/api/movies", movies.list_movies, name="movie-list",
              inputs=Inputs(MovieListQuery), cache_tags=always(MOVIE_LISTS),
              doc=read("listMovies", "Films, filtered, sorted and paginated", bodies.MovieList,
                       parameters=query_parameters(MovieListQuery),
                       description="`year_min` may not exceed `year_max`; `cursor` (from a "
                       "`next`/`previous` link) and `offset` exclude each other.")),
        Route("POST", "/api/movies", movies.create_movie, takes_body=True,
              doc=write("createMovie", "Add a film (permission movies.add_movie)",
                        body=MovieCreate, ok=(201, bodies.MovieDetail), errors=WRITE_ERRORS)),
        Route("GET", "/api/movies/export", export.export_movies, name="movie-export",
              doc=export_operation()),
        Route("GET", MOVIE_DETAIL, movies.get_movie, name=movies.DETAIL_ROUTE,
              inputs=Inputs(path="id", missing="Movie"), cache_tags=movie_detail_tags,
              doc=read("getMovie", "A film with genres, directors and cast", bodies.MovieDetail,
                       parameters=[movie_id], errors=(400, 404, 503))),
        Route("PATCH", MOVIE_DETAIL, movies.update_movie, takes_body=True,
              doc=write("updateMovie", "Change a film (permission movies.change_movie)",
                        parameters=[movie_id, if_match()], body=MovieFields,
                        ok=(200, bodies.MovieDetail), errors=(*WRITE_ERRORS, 404, 412))),
        Route("DELETE", MOVIE_DETAIL, movies.delete_movie,
              doc=write("deleteMovie", "Delete a film (permission movies.delete_movie)",
                        parameters=[movie_id, if_match()], ok=(204, None),
                        errors=(401, 403, 404, 412, 429, 503))),
        Route("GET", "/api/genres", genres.list_genres, name="genre-list",
              inputs=Inputs(), cache_tags=always(GENRE_LIST),
              doc=read("listGenres", "Every genre with its number of films", bodies.GenreList,
                       errors=(400, 503))),
        Route("GET", "/api/genres/{slug}", genres.get_genre, name="genre-detail",
              inputs=Inputs(path="slug", convert=parse_slug, missing="Genre"),
              cache_tags=always(GENRE_LIST),
              doc=read("getGenre", "A genre with its number of films", shapes.GenreCount,
                       parameters=[path_slug("Genre slug, as /api/genres lists it.")],
                       errors=(400, 404, 503))),
        Route("GET", "/api/people", people.list_people, name="person-list",
              inputs=Inputs(PeopleListQuery), cache_tags=always(PEOPLE_LISTS),
              doc=read("listPeople", "People by name", bodies.PeopleList,
                       parameters=query_parameters(PeopleListQuery))),
        Route("GET", "/api/people/{id}", people.get_person, name="person-detail",
              inputs=Inputs(path="id", missing="Person"), cache_tags=person_detail_tags,
              doc=read("getPerson", "A person with the first page of their filmography",
                       bodies.PersonDetail, parameters=[person_id], errors=(400, 404, 503))),
        # A page of films, whichever changed: any film or credit written may move it.
        Route("GET", "/api/people/{id}/films", people.list_films, name="person-films",
              inputs=Inputs(FilmographyQuery, path="id", missing="Person"),
              cache_tags=always(MOVIE_LISTS),
              doc=read("listPersonFilms", "A person's filmography, a page at a time",
                       bodies.Filmography,
                       parameters=[person_id, *query_parameters(FilmographyQuery)],
                       errors=(400, 404, 503),
                       description="Newest first, then by title, film and role. The first "
                       "page is the one the person's detail embeds; its `filmography_next` "
                       "links here.")),
        Route("GET", "/api/events", events.stream_events, name="events",
              doc=events_operation()),
        Route("GET", meta.OPENAPI_PATH, meta.openapi, name="openapi",
              doc=read("getOpenApi", "This document", None, errors=(), tag="meta")),
        Route("GET", meta.DOCS_PATH, meta.docs, name="docs",
              doc=read("getDocs", "Interactive documentation (HTML)", None, errors=(),
                       tag="meta", media_type="text/html")),
        Route("GET", "/healthz", health.healthz, name="healthz",
              doc=probe("healthz", "Liveness: the process answers")),
        Route("GET", "/readyz", health.readyz, name="readyz",
              doc=probe("readyz", "Readiness: the database answers", (503,))),
        Route("GET", "/metrics", health.metrics, name="metrics",
              doc=probe("metrics", "Prometheus metrics", media_type="text/plain")),
    )  # fmt: skip


ROUTES = _routes()


def check_routes(routes: Iterable[Route]) -> None:
    """Refuse a table the cache or the document could not serve (a ``ValueError``)."""
    routes = tuple(routes)
    faults: list[str] = []
    for route in routes:
        where = f"{route.method} {route.path}"
        inputs = route.inputs
        if route.cache_tags is not None and inputs is None:
            faults.append(f"{where}: only a read route (with inputs) caches its answers")
        if route.cache_tags is not None and (route.name is None or route.method != "GET"):
            faults.append(f"{where}: a cached route is a GET with a name (its entries' key)")
        path = None if inputs is None else inputs.path
        if path is not None and path not in PATH_VARIABLE.findall(route.doc_path):
            faults.append(f"{where}: its inputs' path variable is not in its path")
        if documented(route, "path") != set(PATH_VARIABLE.findall(route.doc_path)):
            faults.append(f"{where}: its path variables and documented path parameters differ")
        taken = set() if inputs is None else set(inputs.query.model_fields)
        if inputs is not None and documented(route, "query") != taken:
            faults.append(f"{where}: its query's fields and documented query parameters differ")
    faults += _repeated("operation", (f"{r.method} {r.doc_path}" for r in routes))
    faults += _repeated("operationId", (route.doc.operationId or "" for route in routes))
    faults += _repeated("route name", (route.name for route in routes if route.name))
    if faults:
        raise ValueError("The route table is inconsistent: " + "; ".join(faults))


def documented(route: Route, where: str) -> set[str]:
    """The names of ``route``'s documented parameters ``where`` (path, query)."""
    parameters = route.doc.parameters or ()
    return {p.name for p in parameters if isinstance(p, Parameter) and p.param_in == where}


def _repeated(what: str, values: Iterable[str]) -> list[str]:
    return [f"{what} {value} declared twice" for value, n in Counter(values).items() if n > 1]


def cache_tags(routes: Iterable[Route]) -> dict[str, TagRule]:
    """The tag rule of each cached route, by route name (aioapi.reads reads it)."""
    return {r.name: r.cache_tags for r in routes if r.name and r.cache_tags is not None}


def route_definitions(
    routes: Iterable[Route], docs_static: Path, *, cache: bool = False
) -> list[web.AbstractRouteDef]:
    """What aiohttp registers; ``docs_static`` is swagger-ui-py's bundled asset directory;
    ``cache``: the app keeps a response cache (its read routes go through it)."""
    definitions: list[web.AbstractRouteDef] = [route.definition(cache=cache) for route in routes]
    definitions.append(web.static(f"{meta.DOCS_PATH}/static", docs_static, name="docs-static"))
    return definitions
