"""Keyset pagination: the cursor, one type from the query string to the SQL and back
to the ``next`` link, and the page a list selector returns.

A :class:`Cursor` is the sort key and the (value, id) of a boundary row. A query
model's ``cursor`` parameter is one (movies.schemas): decoded once, when the
query string is parsed; the selectors bind its value and id; the :class:`Page`
they return carries its neighbours' cursors; :meth:`Page.body` encodes them
into the links it writes, the only place a cursor is encoded.

A cursor is base64url JSON, not signed: forging one only moves the reader to
another position of a list it may read anyway. Decoding checks every type and
every value against what the sort field's column can hold, so a damaged or
forged cursor is a 400, never a database error.
"""

from __future__ import annotations

import base64
import binascii
import math
import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar, cast
from urllib.parse import urlencode

import orjson
from pydantic import BaseModel, GetCoreSchemaHandler
from pydantic_core import CoreSchema, core_schema

from movies.models import MAX_ID, MAX_YEAR, MIN_YEAR, Credit, Movie, Person
from movies.shapes import FilmographyEntry, MovieSummary, PersonRef

# base64url without padding: what Cursor.encode writes. A cursor of other characters
# is refused before it is decoded (and OpenAPI documents the same pattern).
CURSOR_PATTERN = r"^[A-Za-z0-9_-]{1,512}$"
CURSOR_MAX_LENGTH = 512
_CURSOR_ALPHABET = frozenset(string.ascii_letters + string.digits + "-_")
_TITLE_MAX_LENGTH = Movie._meta.get_field("title").max_length or 300
_NAME_MAX_LENGTH = Person._meta.get_field("name").max_length or 200
_ROLES = frozenset(Credit.Role.values)


class BadValue(ValueError):
    """A cursor value its sort field's column could not hold."""


def _title(value: object) -> str:
    # PostgreSQL refuses NUL in text (an error, not a mismatch); no stored title
    # is longer than the column.
    if not isinstance(value, str) or "\x00" in value or len(value) > _TITLE_MAX_LENGTH:
        raise BadValue
    return value


def _name(value: object) -> str:
    # A person's name, checked as a title is.
    if not isinstance(value, str) or "\x00" in value or len(value) > _NAME_MAX_LENGTH:
        raise BadValue
    return value


def _year(value: object) -> int:
    if type(value) is not int or not MIN_YEAR <= value <= MAX_YEAR:
        raise BadValue
    return value


def _rating(value: object) -> float | None:
    # NULL is a rating too (unrated films); the column's check keeps the rest in 0-10.
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadValue
    rating = float(value)
    if not math.isfinite(rating) or not 0 <= rating <= 10:
        raise BadValue
    return rating


def _timestamp(value: object) -> datetime:
    # As isoformat() writes it (fromisoformat alone lets trailing junk through), aware
    # (a naive value is ambiguous), and still a datetime once in UTC (one near year 1
    # or 9999 overflows when the database adapter converts it).
    if not isinstance(value, str):
        raise BadValue
    try:
        moment = datetime.fromisoformat(value)
        if moment.utcoffset() is None or moment.isoformat() != value:
            raise BadValue
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise BadValue from None


def _score(value: object) -> float:
    # A relevance score (movies.search.ranked): any finite number.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadValue
    return float(value)


def _credit_key(value: object) -> list[Any]:
    # A filmography's place before the film's id: [year, title, role] of a credit.
    if not isinstance(value, list) or len(value) != 3:
        raise BadValue
    year, title, role = value
    if not isinstance(role, str) or role not in _ROLES:
        raise BadValue
    return [_year(year), _title(title), role]


def _row_id(value: object) -> int:
    if type(value) is not int or not 1 <= value <= MAX_ID:
        raise BadValue
    return value


# Sort field -> the check (and conversion) of its cursor value.
CURSOR_VALUES: dict[str, Callable[[object], Any]] = {
    "title": _title,
    "year": _year,
    "rating": _rating,
    "updated_at": _timestamp,
    "created_at": _timestamp,
    "id": _row_id,
    # The people list's one order (by name, then id).
    "name": _name,
    # A person's filmography (newest first, then title, film and role).
    "filmography": _credit_key,
    "relevance": _score,
}


@dataclass(frozen=True)
class Cursor:
    """Where a page starts: after (or, ``backwards``, before) the row (``value``, ``id``)
    of the list sorted by ``sort``.

    A pydantic field type whose schema is the query string's text (at most
    ``CURSOR_MAX_LENGTH`` characters; OpenAPI shows :data:`CURSOR_PATTERN`). The
    query model decodes it (:meth:`decode`) once it knows the list's sort, after
    the rules between its parameters, and holds the Cursor from then on.
    """

    sort: str  # e.g. "-year"; "name" for people, "filmography" for a person's credits
    value: Any  # the boundary row's sort field value
    id: int  # the boundary row's id
    backwards: bool  # True: the page before the boundary row

    def encode(self) -> str:
        value = self.value.isoformat() if isinstance(self.value, datetime) else self.value
        raw = orjson.dumps({"s": self.sort, "v": value, "i": self.id, "b": self.backwards})
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    @classmethod
    def decode(cls, token: str, sort: str) -> Cursor:
        """The cursor ``token`` encodes for a list sorted by ``sort``; a ``ValueError``
        saying why it is not one."""
        if not token or len(token) > CURSOR_MAX_LENGTH or not _CURSOR_ALPHABET.issuperset(token):
            raise ValueError(NOT_A_CURSOR)
        try:
            data = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        except (binascii.Error, ValueError):
            raise ValueError(NOT_A_CURSOR) from None
        if not isinstance(data, dict) or set(data) != {"s", "v", "i", "b"}:
            raise ValueError(NOT_A_CURSOR)
        if data["s"] != sort:
            raise ValueError(OTHER_SORT)
        try:
            value, row_id = CURSOR_VALUES[sort.lstrip("-")](data["v"]), _row_id(data["i"])
        except BadValue:
            raise ValueError(NOT_A_CURSOR) from None
        if not isinstance(data["b"], bool):
            raise ValueError(NOT_A_CURSOR)
        return cls(sort=sort, value=value, id=row_id, backwards=data["b"])

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        # The text, until the query model decodes it; dumped as its text again (what
        # the response cache keys on, aioapi.reads.key_part).
        return core_schema.str_schema(
            max_length=CURSOR_MAX_LENGTH,
            serialization=core_schema.plain_serializer_function_ser_schema(cls.encode),
        )


NOT_A_CURSOR = "is not a valid cursor"
OTHER_SORT = "was made for another sort order; drop it or keep the sort parameter"


def decoded(model: BaseModel, sort: str) -> None:
    """Replace the text of ``model``'s ``cursor`` (a query model, frozen, validated)
    with the Cursor it encodes for a list sorted by ``sort``; a ``ValueError`` if it
    is not one. Called once, by the model's own validator."""
    text: Any = model.__dict__["cursor"]  # the field's text until now
    # Frozen: the model sets its own field, as a frozen dataclass's __post_init__ does.
    object.__setattr__(model, "cursor", Cursor.decode(text, sort))


Item = TypeVar("Item", MovieSummary, PersonRef, FilmographyEntry)


@dataclass(frozen=True)
class Page(Generic[Item]):
    """One page of a list (what a list selector returns), its size, and where its
    neighbours start: a cursor, or for ``previous`` while the reader is on offsets,
    an offset (0: the first page)."""

    items: list[Item]
    limit: int
    next_cursor: Cursor | None = None
    previous_cursor: Cursor | None = None
    previous_offset: int | None = None

    @classmethod
    def keyset(
        cls,
        items: list[Item],
        *,
        sort: str,
        edges: tuple[Any, Any],
        resumed: bool,
        backwards: bool,
        has_more: bool,
        offset: int,
        limit: int,
        ids: tuple[int, int] | None = None,
    ) -> Page[Item]:
        """The page of ``items`` (in list order) with its neighbours' cursors.

        ``edges``: the ``sort`` field's values of the first and the last item (any,
        when there is none); ``resumed``: the page was read from a cursor,
        ``backwards`` by one going back, ``has_more``: the read found an item past
        the page. Every ``next`` is a cursor; ``previous`` is an offset while the
        reader is on offsets. ``ids``: the first and the last item's row ids, when
        an item holds none as its ``id`` (a filmography's credits: their film's).
        """
        if not items:
            return cls(items=[], limit=limit)
        # An item's row id is its "id" (a film's, a person's) unless ``ids`` says.
        first, last = cast("tuple[dict[str, Any], dict[str, Any]]", (items[0], items[-1]))
        first_id, last_id = ids or (first["id"], last["id"])
        after_last = Cursor(sort, edges[1], last_id, False)
        before_first = Cursor(sort, edges[0], first_id, True)
        if backwards:
            # Going back: the page after this one is where the reader came from.
            return cls(
                items=items,
                limit=limit,
                next_cursor=after_last,
                previous_cursor=before_first if has_more else None,
            )
        return cls(
            items=items,
            limit=limit,
            next_cursor=after_last if has_more else None,
            previous_cursor=before_first if resumed else None,
            previous_offset=max(0, offset - limit) if offset else None,
        )

    def body(self, query: BaseModel, *, person: PersonRef | None = None) -> bytes:
        """The page as both servers answer it: its items, its size and the links to
        its neighbours, byte for byte; or, for the ``person`` whose filmography's
        first page it is, their detail, linking to the rest.

        A link is a relative reference made of the query string alone
        (``?limit=10&cursor=...``, RFC 3986 section 4.2): ``query``'s parameters
        with the neighbour's cursor or offset, so it resolves against whichever path
        served the page and ``/api/movies`` and ``/movies/`` return the same bytes.
        A person's link to the rest of their films is relative to the person's URL
        (``42/films?...`` from ``.../people/42``), for the same reason.
        """
        links: list[str | None] = []
        kept: dict[str, Any] | None = None
        neighbours = ((self.next_cursor, None), (self.previous_cursor, self.previous_offset))
        for cursor, offset in neighbours:
            if cursor is None and offset is None:
                links.append(None)
                continue
            if kept is None:
                kept = query.model_dump(exclude={"cursor", "offset"}, exclude_none=True)
            params = dict(kept)
            if cursor is not None:
                params["cursor"] = cursor.encode()
            elif offset:  # 0: the first page, no parameter
                params["offset"] = offset
            links.append("?" + urlencode(params))
        next_link, previous_link = links
        if person is not None:
            rest = None if next_link is None else f"{person['id']}/films{next_link}"
            return orjson.dumps({**person, "filmography": self.items, "filmography_next": rest})
        return orjson.dumps(
            {"items": self.items, "limit": self.limit, "next": next_link, "previous": previous_link}
        )
