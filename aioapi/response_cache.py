"""The response cache of one API worker: rendered GET answers, bounded by bytes.

An entry is the body, ETag and content type of a 200 answer, under a key made
of the route and its validated query (aioapi.reads), so ``?limit=10&sort=title``
and ``?sort=title&limit=10`` share one entry. Past ``API_CACHE_MAX_BYTES`` the
least recently used entries go. A hit runs no SQL and takes no thread hop.

Freshness: every committed write is announced by PostgreSQL NOTIFY
(movies.changes); aioapi.listener receives it on its own connection and calls
:meth:`ResponseCache.apply`, which drops exactly the entries tagged with what
changed. While the listener is not connected the cache answers nothing and
stores nothing (``online`` is false); on every (re)connect it is emptied, since
notifications may have been missed. An answer computed while an invalidation
arrived is not stored (the ``generation`` check): it may predate the change.

Tags of an entry: each cached route of aioapi.routes names its :data:`TagRule`
(:func:`always` for a list, a person's films page included, :func:`movie_detail_tags`,
:func:`person_detail_tags`).

Tags a change drops (:func:`change_tags`):

* a film (saved, deleted, genres linked, imported): ``movie:{id}`` (its detail
  and the filmographies listing it), ``movie-lists``, ``genre-list`` (counts),
  and ``person:{p}`` for the people an import credits in it;
* a credit: ``movie:{film}``, ``person:{person}``, ``movie-lists`` (the
  ``person`` filter);
* a person: ``person:{id}``, ``cast:{id}`` (the film details naming them),
  ``people-lists``, and ``movie-lists`` when deleted;
* a genre: ``genre-list``; renamed or deleted also ``movie-lists`` and
  ``genre-names`` (every film detail: they show genre names, not ids);
* ``all``: everything.

SQLite has no NOTIFY, and another process (the admin) writes to the same file,
so there the cache is off: ``API_CACHE`` defaults to off and setting it on is
refused at start-up.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass

import orjson
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from movies.changes import Change

# The route name and what identifies an answer of it (aioapi.reads).
Key = tuple[str, Hashable]
MOVIE_LISTS = "movie-lists"
GENRE_LIST = "genre-list"
PEOPLE_LISTS = "people-lists"
GENRE_NAMES = "genre-names"
# The tags of an answer, from its body (aioapi.routes declares one per cached route).
TagRule = Callable[[bytes], frozenset[str]]
# What an entry costs besides its bytes (objects, the key, index slots): an
# estimate, so that many small entries cannot exceed the bound unnoticed.
ENTRY_OVERHEAD_BYTES = 512
TAG_OVERHEAD_BYTES = 100


def movie_tag(movie_id: int) -> str:
    return f"movie:{movie_id}"


def person_tag(person_id: int) -> str:
    return f"person:{person_id}"


def cast_tag(person_id: int) -> str:
    return f"cast:{person_id}"


@dataclass(frozen=True, slots=True)
class Entry:
    """One cached answer."""

    body: bytes
    etag: str
    content_type: str
    tags: frozenset[str]

    @property
    def size(self) -> int:
        """Bytes counted against the bound."""
        return (
            len(self.body)
            + len(self.etag)
            + ENTRY_OVERHEAD_BYTES
            + len(self.tags) * TAG_OVERHEAD_BYTES
        )


class ResponseCache:
    """An LRU map of answers, bounded by bytes, with an index from tag to keys.

    Runs on the event loop only: no locks.
    """

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes must be positive")
        self.max_bytes = max_bytes
        self.bytes = 0
        # Moves on with every invalidation: an answer computed across one is not stored.
        self.generation = 0
        # With read replicas: the primary's WAL position when the last invalidation
        # was heard. An answer read from an older replica would put the invalidated
        # bytes back, so a miss reads nothing older (aioapi.reads).
        self.floor_lsn = 0
        self.online = False
        self.hits = self.misses = self.stores = 0
        self.evictions = self.invalidations = self.flushes = 0
        self._entries: OrderedDict[Key, Entry] = OrderedDict()
        self._tagged: dict[str, set[Key]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Key) -> Entry | None:
        """The entry under ``key``, now the most recently used; counts a hit or a miss."""
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry

    def put(self, key: Key, entry: Entry, generation: int) -> bool:
        """Store ``entry`` unless the cache is offline, an invalidation came after
        ``generation`` was read, or the entry alone exceeds the bound."""
        if not self.online or generation != self.generation or entry.size > self.max_bytes:
            return False
        self._remove(key)
        self._entries[key] = entry
        self.bytes += entry.size
        for tag in entry.tags:
            self._tagged.setdefault(tag, set()).add(key)
        self.stores += 1
        while self.bytes > self.max_bytes:
            oldest = next(iter(self._entries))
            self._remove(oldest)
            self.evictions += 1
        return True

    def invalidate(self, tags: Iterable[str]) -> int:
        """Drop every entry carrying one of ``tags``; returns how many went."""
        self.generation += 1
        dropped = 0
        for tag in tags:
            for key in list(self._tagged.get(tag, ())):
                self._remove(key)
                dropped += 1
        self.invalidations += dropped
        return dropped

    def raise_floor(self, lsn: int) -> None:
        """Every invalidation so far was committed at or before ``lsn`` (the primary's
        position, read after it was heard): later misses read nothing older. Answers
        being computed from before, possibly on a lagging replica, are not stored."""
        if lsn > self.floor_lsn:
            self.floor_lsn = lsn
            self.generation += 1

    def clear(self) -> None:
        """Drop everything (a reconnect, or an ``all`` change)."""
        self.generation += 1
        self.invalidations += len(self._entries)
        self.flushes += 1
        self._entries.clear()
        self._tagged.clear()
        self.bytes = 0

    def apply(self, change: Change) -> int:
        """Drop what ``change`` makes stale; returns how many entries went."""
        tags = change_tags(change)
        if tags is None:
            dropped = len(self._entries)
            self.clear()
            return dropped
        return self.invalidate(tags)

    def _remove(self, key: Key) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        self.bytes -= entry.size
        for tag in entry.tags:
            keys = self._tagged.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._tagged[tag]


def always(*tags: str) -> TagRule:
    """The same tags for every answer (a list: any change of its kind may alter it)."""
    fixed = frozenset(tags)
    return lambda body: fixed


def movie_detail_tags(body: bytes) -> frozenset[str]:
    """A film: ``movie:{id}``, ``cast:{p}`` for each person credited, ``genre-names``."""
    data = orjson.loads(body)
    credited = {person["id"] for person in (*data["directors"], *data["cast"])}
    return frozenset(
        {movie_tag(data["id"]), GENRE_NAMES, *(cast_tag(person) for person in credited)}
    )


def person_detail_tags(body: bytes) -> frozenset[str]:
    """A person: ``person:{id}``, ``movie:{m}`` for each film of the filmography's
    first page and, when there are more pages, ``movie-lists``: a film not on the
    page may move onto it (a new year or title)."""
    data = orjson.loads(body)
    films = {credit["movie"]["id"] for credit in data["filmography"]}
    more = {MOVIE_LISTS} if data["filmography_next"] is not None else set()
    return frozenset({person_tag(data["id"]), *(movie_tag(film) for film in films), *more})


def change_tags(change: Change) -> set[str] | None:
    """The tags ``change`` makes stale; ``None`` means everything."""
    if change.kind == "all":
        return None
    tags = {movie_tag(movie) for movie in change.movies}
    tags |= {person_tag(person) for person in change.people}
    if change.movies:
        tags.add(MOVIE_LISTS)
    if change.kind == "movie":
        tags.add(GENRE_LIST)
    elif change.kind == "person":
        tags |= {cast_tag(person) for person in change.people}
        tags.add(PEOPLE_LISTS)
        if change.op == "delete":
            tags.add(MOVIE_LISTS)
    elif change.kind == "genre":
        tags.add(GENRE_LIST)
        if change.op != "create":
            tags |= {MOVIE_LISTS, GENRE_NAMES}
    return tags


class CacheCollector(Collector):
    """Prometheus view of a cache, read when scraped."""

    def __init__(self, cache: ResponseCache) -> None:
        self.cache = cache

    def collect(self) -> Iterator[Metric]:
        cache = self.cache
        counters = {
            "hits": ("Answers served from the cache.", cache.hits),
            "misses": ("Cacheable requests not found in the cache.", cache.misses),
            "stores": ("Answers stored in the cache.", cache.stores),
            "evictions": ("Entries dropped to stay under the byte bound.", cache.evictions),
            "invalidations": (
                "Entries dropped because a change made them stale.",
                cache.invalidations,
            ),
            "flushes": ("Times the whole cache was emptied.", cache.flushes),
        }
        for name, (documentation, value) in counters.items():
            yield CounterMetricFamily(f"api_cache_{name}", documentation, value=value)
        gauges = {
            "bytes": ("Bytes the entries count against the bound.", cache.bytes),
            "max_bytes": ("The bound (API_CACHE_MAX_BYTES).", cache.max_bytes),
            "entries": ("Entries in the cache.", len(cache)),
            "online": ("1 while change notifications keep the cache fresh.", int(cache.online)),
        }
        for name, (documentation, value) in gauges.items():
            yield GaugeMetricFamily(f"api_cache_{name}", documentation, value=value)
