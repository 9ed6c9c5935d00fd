"""How far a request travels through the project: the functions of ``aioapi``,
``movies`` and ``mymoviedb`` it calls, on the loop and on the ORM thread.

Counted with ``sys.setprofile`` (the loop) and ``threading.setprofile`` (the
bridge's threads, created after it is set) over one in-process request, so a
layer added on the way fails here, not in review. The budgets are issue 27's:
``GET /api/movies?limit=10`` (cache off) through at most 20 of the project's
functions in at most 10 files; a ``PATCH`` through one ORM hop (the token is
verified in the write's own, aioapi.auth.run_as) and one render of the film.
Run with ``-s`` to see each path, function by function.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import orjson

from movies.models import Movie
from tests.api_fixtures import ApiClient, Catalogue, bearer, orm

# Issue 27's budget, reached: middlewares (metrics, problems), the read route (parse,
# answer), the query model (parse, its one validator, the whole-number check), the
# handler, the bridge, the unit of work (the retry wrapper, the statement tracker),
# the selector, the prepared statement (run, its cache, its parameters), the page
# (its neighbours, its body, the cursor's encoding), the ETag and If-None-Match.
LIST_FUNCTIONS = 20
LIST_FILES = 10
# PostgreSQL's path has two more, named here so that nothing else slips in with
# them: the cursor that binds on the server, so that statements are PREPAREd, and,
# because the tests' connections come from Django's pool (DB_POOL=1; an API process
# keeps one connection per thread), the connection_created receiver of each checkout.
POSTGRESQL_ONLY = frozenset(
    {"movies/prepared.py:statement_cursor", "mymoviedb/reconnect.py:_install"}
)
ROOT = Path(__file__).resolve().parent.parent
INLINE = frozenset({"<listcomp>", "<dictcomp>", "<setcomp>", "<genexpr>", "<module>"})
PACKAGES = tuple(str(ROOT / name) + "/" for name in ("aioapi", "movies", "mymoviedb"))


class Path_:
    """The project's functions entered, in order, by the traced threads."""

    def __init__(self) -> None:
        self.recording = False
        self.calls: list[str] = []
        self._seen: dict[int, FrameType] = {}

    def profile(self, frame: FrameType, event: str, _arg: Any) -> None:
        if not self.recording or event != "call":
            return
        # A coroutine's frame is "called" again at every resumption: count it once.
        if id(frame) in self._seen:
            return
        self._seen[id(frame)] = frame  # held, so its id is not reused meanwhile
        code = frame.f_code
        # Comprehensions and generator expressions are parts of their function; a
        # module run by a first import is not on the path of every request.
        if code.co_filename.startswith(PACKAGES) and code.co_name not in INLINE:
            where = code.co_filename.removeprefix(str(ROOT) + "/")
            self.calls.append(f"{where}:{code.co_qualname}")

    @property
    def functions(self) -> list[str]:
        return list(dict.fromkeys(self.calls))

    @property
    def files(self) -> set[str]:
        return {call.partition(":")[0] for call in self.calls}


@contextmanager
def traced() -> Iterator[Path_]:
    path = Path_()
    sys.setprofile(path.profile)
    threading.setprofile(path.profile)
    try:
        yield path
    finally:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]


def _report(path: Path_) -> str:
    return f"{len(path.functions)} functions in {len(path.files)} files:\n" + "\n".join(
        path.functions
    )


def _more_films() -> None:
    # Past one page of 10, so the page has a next link to build.
    for n in range(4):
        Movie.objects.create(title=f"Zardoz {n}", year=1974)


async def test_a_list_page_passes_few_functions(api: ApiClient, catalogue: Catalogue) -> None:
    await orm(_more_films)
    with traced() as path:
        # The first request starts the bridge's thread, so it is traced too.
        assert (await api.get("/api/movies?limit=10")).status == 200
        path.recording = True
        response = await api.get("/api/movies?limit=10")
        body = await response.read()
        path.recording = False
    assert response.status == 200
    assert orjson.loads(body)["next"] is not None
    print(_report(path))
    shared = [function for function in path.functions if function not in POSTGRESQL_ONLY]
    assert len(shared) <= LIST_FUNCTIONS, _report(path)
    assert len(path.files) <= LIST_FILES, _report(path)


async def test_a_patch_renders_once_in_one_hop(
    api: ApiClient, catalogue: Catalogue, writer: tuple[Any, str]
) -> None:
    url = f"/api/movies/{catalogue.movies['Alien'].pk}"
    with traced() as path:
        # Every thread the bridge starts from here on is traced.
        read = await api.get(url)
        headers = {**bearer(writer[1]), "If-Match": read.headers["ETag"]}
        path.recording = True
        response = await api.patch(url, json={"rating": 7.5}, headers=headers)
        body = await response.read()
        path.recording = False
    assert response.status == 200, body
    assert orjson.loads(body)["rating"] == 7.5
    print(_report(path))
    hops = [call for call in path.calls if call.endswith(":OrmBridge.run")]
    services = [call for call in path.calls if call.startswith("movies/services.py:")]
    # One hop: the token is verified in the write's own (aioapi.auth.run_as).
    assert len(hops) == 1, _report(path)
    assert services.count("movies/services.py:update_movie") == 1
    assert path.calls.count("movies/selectors/films.py:get_movie") == 1, "the film read twice"
    assert path.calls.count("movies/rendering.py:movie_detail_body") == 1, "rendered twice"
    assert path.calls.count("movies/conditional.py:etag") == 1, "hashed twice"


async def test_a_write_is_refused_without_a_hop_when_it_names_no_caller(
    api: ApiClient, catalogue: Catalogue
) -> None:
    url = f"/api/movies/{catalogue.movies['Alien'].pk}"
    with traced() as path:
        path.recording = True
        response = await api.patch(url, json={"rating": 7.5})
        path.recording = False
    assert response.status == 401
    # No Authorization header: refused on the loop, before the body and any query.
    assert not [call for call in path.calls if call.endswith(":OrmBridge.run")], _report(path)
    assert "aioapi/responses.py:json_body" not in path.calls
