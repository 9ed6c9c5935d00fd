"""aioapi.response_cache: the byte bound, LRU eviction, tags, and what each change drops."""

from __future__ import annotations

import orjson
import pytest
from prometheus_client import CollectorRegistry

from aioapi.reads import key_part
from aioapi.response_cache import (
    ENTRY_OVERHEAD_BYTES,
    CacheCollector,
    Entry,
    Key,
    ResponseCache,
    change_tags,
)
from aioapi.routes import ROUTES, cache_tags
from movies.changes import Change
from movies.cursors import Cursor
from movies.schemas import MovieListQuery


def entry(body: bytes, *tags: str) -> Entry:
    return Entry(body, '"tag"', "application/json", frozenset(tags))


def online(max_bytes: int) -> ResponseCache:
    cache = ResponseCache(max_bytes)
    cache.online = True
    return cache


def test_an_entry_counts_its_body_and_an_overhead() -> None:
    small = entry(b"x" * 100, "a")
    assert small.size == 100 + len('"tag"') + ENTRY_OVERHEAD_BYTES + 100
    assert entry(b"x" * 1000, "a").size - small.size == 900


def test_the_cache_never_holds_more_bytes_than_its_bound() -> None:
    one = entry(b"x" * 1000)
    cache = online(max_bytes=one.size * 3)
    for number in range(10):
        assert cache.put(("r", number), one, cache.generation)
        assert cache.bytes <= cache.max_bytes
    assert len(cache) == 3
    assert cache.bytes == 3 * one.size
    assert cache.evictions == 7
    # The oldest went first: only the last three are left.
    assert [number for number in range(10) if cache.get(("r", number))] == [7, 8, 9]


def test_an_entry_larger_than_the_bound_is_not_stored() -> None:
    cache = online(max_bytes=2000)
    assert cache.put(("r", 1), entry(b"small"), cache.generation)
    assert not cache.put(("r", 2), entry(b"x" * 2000), cache.generation)
    assert cache.get(("r", 1)) is not None
    assert cache.get(("r", 2)) is None


def test_reading_an_entry_makes_it_the_last_to_be_evicted() -> None:
    one = entry(b"x" * 100)
    cache = online(max_bytes=one.size * 2)
    cache.put(("r", "old"), one, cache.generation)
    cache.put(("r", "new"), one, cache.generation)
    assert cache.get(("r", "old")) is one  # now the most recently used
    cache.put(("r", "third"), one, cache.generation)
    assert cache.get(("r", "new")) is None
    assert cache.get(("r", "old")) is one
    assert (cache.hits, cache.misses, cache.evictions) == (2, 1, 1)


def test_replacing_an_entry_keeps_the_byte_count_exact() -> None:
    cache = online(max_bytes=10_000)
    cache.put(("r", 1), entry(b"x" * 100, "a"), cache.generation)
    cache.put(("r", 1), entry(b"y" * 300, "b"), cache.generation)
    assert len(cache) == 1
    assert cache.bytes == entry(b"y" * 300, "b").size
    assert cache.invalidate(["a"]) == 0  # the old tags went with the old entry
    assert cache.invalidate(["b"]) == 1
    assert cache.bytes == 0


def test_invalidation_drops_exactly_the_tagged_entries() -> None:
    cache = online(max_bytes=100_000)
    cache.put(("r", 1), entry(b"1", "movie:1", "lists"), cache.generation)
    cache.put(("r", 2), entry(b"2", "movie:2", "lists"), cache.generation)
    cache.put(("r", 3), entry(b"3", "movie:1"), cache.generation)
    cache.put(("r", 4), entry(b"4", "other"), cache.generation)
    assert cache.invalidate(["movie:1"]) == 2
    assert [n for n in range(1, 5) if cache.get(("r", n))] == [2, 4]
    assert cache.invalidate(["lists", "movie:1"]) == 1
    assert [n for n in range(1, 5) if cache.get(("r", n))] == [4]
    assert cache.invalidations == 3
    assert cache.bytes == entry(b"4", "other").size


def test_an_answer_computed_across_an_invalidation_is_not_stored() -> None:
    cache = online(max_bytes=10_000)
    started = cache.generation  # a miss reads the generation, then queries...
    cache.invalidate(["movie:1"])  # ...while a change arrives
    assert not cache.put(("r", 1), entry(b"maybe stale", "movie:1"), started)
    assert cache.get(("r", 1)) is None
    assert cache.put(("r", 1), entry(b"fresh", "movie:1"), cache.generation)


def test_an_offline_cache_stores_nothing_and_clear_empties_it() -> None:
    cache = ResponseCache(10_000)
    assert not cache.put(("r", 1), entry(b"x"), cache.generation)
    cache.online = True
    assert cache.put(("r", 1), entry(b"x"), cache.generation)
    generation = cache.generation
    cache.clear()
    assert (len(cache), cache.bytes, cache.flushes) == (0, 0, 1)
    assert cache.generation > generation


def test_a_bound_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        ResponseCache(0)


# --- tags --------------------------------------------------------------------------

MOVIE_7 = orjson.dumps(
    {
        "id": 7,
        "title": "Heat",
        "genres": [{"slug": "crime", "name": "Crime"}],
        "directors": [{"id": 30, "name": "Michael Mann"}],
        "cast": [{"id": 31, "name": "Al Pacino", "character": ""}],
    }
)
PERSON_31 = orjson.dumps(
    {
        "id": 31,
        "name": "Al Pacino",
        "filmography": [
            {"movie": {"id": 7, "title": "Heat", "year": 1995}, "role": "cast", "character": ""},
            {"movie": {"id": 8, "title": "Serpico", "year": 1973}, "role": "cast", "character": ""},
        ],
        "filmography_next": None,
    }
)
# A filmography longer than its first page: a film not on the page may move onto it.
PERSON_32 = orjson.dumps(
    {
        "id": 32,
        "name": "Busy Body",
        "filmography": [
            {"movie": {"id": 7, "title": "Heat", "year": 1995}, "role": "cast", "character": ""},
        ],
        "filmography_next": "32/films?limit=1&cursor=x",
    }
)


TAGS = cache_tags(ROUTES)


def entry_tags(route: str, body: bytes) -> frozenset[str]:
    """The tags the route table gives an answer of ``route``."""
    return TAGS[route](body)


def test_entry_tags_name_what_an_answer_shows() -> None:
    assert entry_tags("movie-list", b"{}") == {"movie-lists"}
    assert entry_tags("genre-list", b"{}") == {"genre-list"}
    # One genre shows its count: dropped with the list's (a film's genres, a rename).
    assert entry_tags("genre-detail", b"{}") == {"genre-list"}
    assert entry_tags("person-list", b"{}") == {"people-lists"}
    assert entry_tags("movie-detail", MOVIE_7) == {"movie:7", "cast:30", "cast:31", "genre-names"}
    assert entry_tags("person-detail", PERSON_31) == {"person:31", "movie:7", "movie:8"}
    assert entry_tags("person-detail", PERSON_32) == {"person:32", "movie:7", "movie-lists"}
    # A page of a person's films is a list of films.
    assert entry_tags("person-films", b"{}") == {"movie-lists"}
    # The rest are not cached: the export, the event stream, the writes, the probes.
    assert set(TAGS) == {
        "movie-list", "genre-list", "genre-detail", "person-list", "movie-detail", "person-detail",
        "person-films",
    }  # fmt: skip


# One entry of each kind of answer, with the tags the route table gives them.
ANSWERS: dict[str, frozenset[str]] = {
    "movie list": entry_tags("movie-list", b"{}"),
    "genre list": entry_tags("genre-list", b"{}"),
    "people list": entry_tags("person-list", b"{}"),
    "film 7": entry_tags("movie-detail", MOVIE_7),
    "film 9": frozenset({"movie:9", "genre-names", "cast:40"}),
    "person 31": entry_tags("person-detail", PERSON_31),
    "person 40": frozenset({"person:40", "movie:9"}),
    "person 32": entry_tags("person-detail", PERSON_32),
    "films of 31": entry_tags("person-films", b"{}"),
}
# What goes whenever the film lists go: a truncated filmography and a films page.
WITH_FILM_LISTS = {"person 32", "films of 31"}


MOVIE_LIST, GENRE_LIST, PEOPLE_LIST = "movie list", "genre list", "people list"


@pytest.mark.parametrize(
    ("change", "dropped"),
    [
        (Change("movie", "update", movies=(7,)), {MOVIE_LIST, GENRE_LIST, "film 7", "person 31"}),
        (Change("movie", "create", movies=(99,)), {MOVIE_LIST, GENRE_LIST}),
        (Change("movie", "delete", movies=(9,)), {MOVIE_LIST, GENRE_LIST, "film 9", "person 40"}),
        (
            Change("movie", "import", movies=(9,), people=(31,)),
            {MOVIE_LIST, GENRE_LIST, "film 9", "person 40", "person 31"},
        ),
        (
            Change("credit", "create", movies=(9,), people=(31,)),
            {MOVIE_LIST, "film 9", "person 40", "person 31"},
        ),
        (Change("person", "update", people=(31,)), {PEOPLE_LIST, "person 31", "film 7"}),
        (Change("person", "create", people=(50,)), {PEOPLE_LIST}),
        (
            Change("person", "delete", people=(40,)),
            {PEOPLE_LIST, "person 40", "film 9", MOVIE_LIST},
        ),
        (Change("genre", "create", genres=(3,)), {GENRE_LIST}),
        (Change("genre", "update", genres=(3,)), {GENRE_LIST, MOVIE_LIST, "film 7", "film 9"}),
        (Change("all", "import"), set(ANSWERS)),
    ],
)
def test_a_change_drops_exactly_what_it_touches(change: Change, dropped: set[str]) -> None:
    cache = online(max_bytes=1_000_000)
    for name, tags in ANSWERS.items():
        cache.put(("r", name), Entry(b"{}", '"e"', "application/json", tags), cache.generation)
    if MOVIE_LIST in dropped:
        dropped = dropped | WITH_FILM_LISTS
    assert cache.apply(change) == len(dropped)
    left = {name for name in ANSWERS if cache.get(("r", name)) is not None}
    assert left == set(ANSWERS) - dropped


def test_only_all_means_everything() -> None:
    assert change_tags(Change("all", "update")) is None
    assert change_tags(Change("genre", "create")) == {"genre-list"}


def test_the_collector_exports_the_counters_and_gauges() -> None:
    cache = online(max_bytes=5000)
    key: Key = ("r", 1)
    cache.put(key, entry(b"abc", "t"), cache.generation)
    cache.get(key)
    cache.get(("r", 2))
    cache.invalidate(["t"])
    registry = CollectorRegistry()
    registry.register(CacheCollector(cache))
    values = {
        name: registry.get_sample_value(name)
        for name in (
            "api_cache_hits_total", "api_cache_misses_total", "api_cache_stores_total",
            "api_cache_evictions_total", "api_cache_invalidations_total",
            "api_cache_flushes_total", "api_cache_bytes", "api_cache_max_bytes",
            "api_cache_entries", "api_cache_online",
        )
    }  # fmt: skip
    assert values == {
        "api_cache_hits_total": 1,
        "api_cache_misses_total": 1,
        "api_cache_stores_total": 1,
        "api_cache_evictions_total": 0,
        "api_cache_invalidations_total": 1,
        "api_cache_flushes_total": 0,
        "api_cache_bytes": 0,
        "api_cache_max_bytes": 5000,
        "api_cache_entries": 0,
        "api_cache_online": 1,
    }


def test_a_cursor_page_is_keyed_by_its_query_as_text() -> None:
    # The query holds its cursor decoded (movies.cursors.Cursor); the key holds the
    # text again, so it stays hashable and equivalent URLs share one entry.
    cursor = Cursor("-year", 1999, 7, False)
    query = MovieListQuery.model_validate({"sort": "-year", "cursor": cursor.encode()})
    assert query.cursor == cursor
    key = key_part(query)
    assert isinstance(key, tuple)
    assert hash(key) is not None
    assert dict(key)["cursor"] == cursor.encode()
    reordered = MovieListQuery.model_validate({"cursor": cursor.encode(), "sort": "-year"})
    assert key_part(reordered) == key
