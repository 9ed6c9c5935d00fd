"""Schemathesis against /api/openapi.json: every phase, every check, zero failures.

The API runs on a real port, in a thread of this process (aiohttp is not ASGI),
on the test database; Schemathesis loads the document over HTTP and sends its
requests with a valid Bearer token, so the writes are exercised too. The number
of examples is bounded so the suite stays fast; ``SCHEMATHESIS_MAX_EXAMPLES``
raises it for a deeper run.

``positive_data_acceptance`` expects any request the schema allows to succeed.
A few allowed requests are rightly refused for reasons JSON Schema cannot say;
their statuses are accepted for that check only, and only for the operations
concerned:

* 400 (the lists, a person's films, export, writes), and then only naming the
  parameters or fields of those reasons (``refused_only_for_what_the_schema_cannot_say``): an opaque
  ``cursor`` the API did not write (the document says so: its pattern describes
  the alphabet, not which strings are cursors); the cross-field rules
  ``year_min`` <= ``year_max`` and ``cursor`` or ``offset`` but not both; no
  person credited twice in one role; a ``poster_url`` whose host is not public
  (``http://a/``: movies.posters);
* 400 (writes) naming a body field that JSON Schema's ``integer`` allows as
  ``1978.0``: the API takes only integer literals in JSON bodies, a
  rule the document cannot state (``integer_literals_only``);
* 412 (PATCH, DELETE): an ``If-Match`` that is not the film's current ETag;
* 422 (POST, PATCH): a ``person_id`` or genre slug that names nothing.

Any other 400 to a schema-valid request fails the run: an integer, a search
text, a genre name or a title the document allows must be served.
"""

from __future__ import annotations

import asyncio
import copy
import os
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.request import urlopen

import hypothesis
import orjson
import pytest
import schemathesis
from aiohttp import web
from schemathesis import Case
from schemathesis.config import SchemathesisConfig

from aioapi.app import create_app
from aioapi.openapi import openapi_body
from aioapi.routes import ROUTES
from aioapi.settings import ApiSettings
from movies.posters import poster_problem
from tests.api_fixtures import bearer, build_catalogue, make_token
from tests.ports import free_port

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25"))
# Schemathesis' default for positive_data_acceptance.
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]


def also_accepted(operation_id: str, *statuses: str) -> dict[str, Any]:
    """Statuses a schema-valid request of one operation may rightly get (see the top)."""
    check = {"expected-statuses": [*ACCEPTED, *statuses]}
    return {"include-operation-id": operation_id, "checks": {"positive_data_acceptance": check}}


# What a schema-valid request of each operation may still be refused for (see the top).
REFUSABLE: dict[str, frozenset[str]] = {
    "GET /api/movies": frozenset({"cursor", "offset", "year_min", "year_max"}),
    "GET /api/movies/export": frozenset({"year_min", "year_max"}),
    "GET /api/people": frozenset({"cursor", "offset"}),
    "GET /api/people/{id}/films": frozenset({"cursor"}),
    "POST /api/movies": frozenset({"credits", "poster_url"}),
    "PATCH /api/movies/{id}": frozenset({"credits", "poster_url"}),
}


@schemathesis.check
def refused_only_for_what_the_schema_cannot_say(ctx: Any, response: Any, case: Case) -> bool | None:
    """A 400 to a schema-valid request names only parameters of REFUSABLE."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return None
    if response.status_code != 400:
        return None
    named = {error["name"] for error in response.json().get("errors", [])}
    allowed = REFUSABLE.get(case.operation.label, frozenset()) | integer_literals_only(case.body)
    if not named or not named <= allowed:
        raise AssertionError(
            f"a schema-valid request was refused for {sorted(named) or 'no parameter'}; "
            f"only {sorted(allowed)} may be refused by {case.operation.label}"
        )
    return None


def as_a_client_sends(body: Any) -> Any:
    """``body`` without what JSON Schema allows and the API refuses by rules the
    document cannot state: whole-number floats (``1978.0``) as integers, and a
    ``poster_url`` on a host that is not public (movies.posters) left out."""
    if isinstance(body, float) and body.is_integer():
        return int(body)
    if isinstance(body, list):
        return [as_a_client_sends(item) for item in body]
    if isinstance(body, dict):
        poster = body.get("poster_url")
        refused = isinstance(poster, str) and poster and poster_problem(poster) is not None
        return {
            key: as_a_client_sends(value)
            for key, value in body.items()
            if not (key == "poster_url" and refused)
        }
    return body


def integer_literals_only(body: Any, path: str = "") -> frozenset[str]:
    """The fields of ``body`` sent as whole-number floats (``1978.0``): JSON Schema's
    ``integer`` allows them, the API's strict integers refuse them."""
    if isinstance(body, float) and body.is_integer():
        return frozenset({path})
    items = (
        body.items()
        if isinstance(body, dict)
        else enumerate(body)
        if isinstance(body, list)
        else ()
    )
    return frozenset().union(
        *(
            integer_literals_only(value, f"{path}.{key}" if path else str(key))
            for key, value in items
        )
    )


CONFIG = {
    "seed": 20261121,  # the same examples every run: a failure can be replayed
    "phases": {
        "examples": {"enabled": True},
        "coverage": {"enabled": True},
        "fuzzing": {"enabled": True},
        "stateful": {"enabled": True},
    },
    "generation": {"max-examples": MAX_EXAMPLES},
    "checks": {"enabled": True},
    "operations": [
        also_accepted("listMovies", "400"),
        also_accepted("exportMovies", "400"),
        also_accepted("listPeople", "400"),
        also_accepted("listPersonFilms", "400"),
        also_accepted("createMovie", "400", "422"),
        also_accepted("updateMovie", "400", "412", "422"),
        also_accepted("deleteMovie", "412"),
    ],
}


class ThreadedServer:
    """An aiohttp app on 127.0.0.1, its loop in a thread of its own."""

    def __init__(self, app: web.Application) -> None:
        self.port = free_port()
        self._runner = web.AppRunner(app, access_log=None)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="schemathesis-api")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()
        self._call(self._runner.setup())
        self._call(web.TCPSite(self._runner, "127.0.0.1", self.port).start())

    def stop(self) -> None:
        self._call(self._runner.cleanup())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def _call(self, coroutine: Any) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=60)


@pytest.fixture
def token(transactional_db: None) -> str:
    """A curator's token allowed to add, change and delete films, over the test catalogue."""
    build_catalogue()
    _, raw = make_token("add_movie", "change_movie", "delete_movie")
    return raw


@pytest.fixture
def server(token: str, api_settings: ApiSettings) -> Iterator[ThreadedServer]:
    # The failed-authentication limit would turn Schemathesis' own invalid-token
    # probes into 429s for every later write; it has tests of its own.
    settings = api_settings.model_copy(update={"auth_failures_per_minute": 1000000})
    server = ThreadedServer(create_app(settings))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def examples() -> Iterator[Counter[str]]:
    """Examples run per operation, printed at the end (``pytest -s`` shows them)."""
    counts: Counter[str] = Counter()
    yield counts
    print(f"\nschemathesis: {sum(counts.values())} examples, per operation: {dict(counts)}")


# The document the server serves at /api/openapi.json (test_the_served_document_is_the_one
# tested checks it), loaded at import: Schemathesis' lazy ``from_fixture`` loader does not
# run on pytest 9.2, which no longer has the ``Node._nodeid`` it rewrites. The change
# feed is an endless stream: one request would never finish.
DOCUMENT = orjson.loads(openapi_body(ROUTES))
schema = schemathesis.openapi.from_dict(
    DOCUMENT, config=SchemathesisConfig.from_dict(CONFIG)
).exclude(path="/api/events")


def test_the_served_document_is_the_one_tested(server: ThreadedServer) -> None:
    with urlopen(f"{server.url}/api/openapi.json", timeout=30) as response:
        assert orjson.loads(response.read()) == DOCUMENT


@schema.parametrize()
# One server and one catalogue per operation, shared by its examples on purpose: the
# writes of one example are what the next ones find. No example database in the tree.
@hypothesis.settings(
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture],
    deadline=None,
    database=None,
)
def test_every_operation_conforms(
    case: Case, server: ThreadedServer, token: str, examples: Counter[str]
) -> None:
    examples[case.operation.label] += 1
    case.call_and_validate(base_url=server.url, headers=bearer(token), timeout=30)


def films_with_links(document: dict[str, Any]) -> dict[str, Any]:
    """The films' part of the document, with links from a film's answers to its detail,
    PATCH and DELETE; the ETag of each answer becomes the next If-Match.

    The CLI learns such links from the Location header of a 201; the Python API does
    not, so they are spelled out here. Only the films: Schemathesis starts sequences
    from the operations it deems reliable, and with the people list among them it
    never starts from the POST (whose credits name people no operation creates).
    """
    linked = copy.deepcopy(document)
    linked["paths"] = {path: linked["paths"][path] for path in ("/api/movies", "/api/movies/{id}")}
    detail = linked["paths"]["/api/movies/{id}"]

    def links(id_from: str, *targets: str) -> dict[str, Any]:
        etag = {"header.If-Match": "$response.header.ETag"}
        return {
            target: {
                "operationId": target,
                "parameters": {"path.id": id_from, **(etag if target != "getMovie" else {})},
            }
            for target in targets
        }

    everything = ("getMovie", "updateMovie", "deleteMovie")
    linked["paths"]["/api/movies"]["post"]["responses"]["201"]["links"] = links(
        "$response.body#/id", *everything
    )
    detail["get"]["responses"]["200"]["links"] = links("$request.path.id", *everything[1:])
    detail["patch"]["responses"]["200"]["links"] = links("$request.path.id", *everything)
    return linked


def test_stateful_sequences_conform(
    server: ThreadedServer, token: str, examples: Counter[str]
) -> None:
    """Sequences along the links: create a film, read it, change it with its ETag, delete it."""
    config = SchemathesisConfig.from_dict(CONFIG)
    films = schemathesis.openapi.from_dict(films_with_links(DOCUMENT), config=config)

    class Workflow(films.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Case) -> dict[str, Any]:
            return {"base_url": server.url, "headers": bearer(token), "timeout": 30}

        def before_call(self, case: Case) -> None:
            # The sequences are about links and ETags: each write sends what a client
            # reading the document would (the refusals have tests of their own above).
            case.body = as_a_client_sends(case.body)

        def after_call(self, response: Any, case: Case) -> None:
            examples[f"stateful {case.operation.label} {response.status_code}"] += 1

    Workflow.run(
        settings=hypothesis.settings(
            max_examples=MAX_EXAMPLES,
            stateful_step_count=6,
            deadline=None,
            suppress_health_check=list(hypothesis.HealthCheck),
            database=None,
            derandomize=True,
        )
    )
    # The sequences did create films and then change or delete one with its ETag.
    assert examples["stateful POST /api/movies 201"] > 0
    changed = ("stateful PATCH /api/movies/{id} 200", "stateful DELETE /api/movies/{id} 204")
    assert sum(examples[label] for label in changed) > 0
