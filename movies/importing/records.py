"""Validation of one source record into a :class:`FilmRecord`, or a reason why not.

The source format is the one of ``wikipedia-movies.json.gz``: an object with
``title``, ``year``, ``cast``, ``genres``, ``href``, ``extract`` and
``thumbnail`` (other keys are ignored). Optional fields may be absent or null.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.db.models import CharField

from movies.importing.normalise import clean_cast, collapse, fold, normalise_genre, person_key
from movies.models import MAX_YEAR, MIN_YEAR, Genre, Movie, Person
from movies.posters import poster_problem
from movies.text import LINE, PROSE, TextRule, strip_invisible

_INTEGER = re.compile(r"[+-]?\d+")


def _max_length(model: type[Movie] | type[Person] | type[Genre], name: str) -> int:
    field = model._meta.get_field(name)
    assert isinstance(field, CharField) and field.max_length is not None
    return field.max_length


TITLE_MAX = _max_length(Movie, "title")
SLUG_MAX = _max_length(Movie, "wikipedia_slug")
POSTER_MAX = _max_length(Movie, "poster_url")
SOURCE_KEY_MAX = _max_length(Movie, "source_key")
PERSON_MAX = _max_length(Person, "name")
GENRE_MAX = _max_length(Genre, "name")


class RecordError(ValueError):
    """A record that cannot be imported; the message says why."""


@dataclass(frozen=True, slots=True)
class FilmRecord:
    """One film as it will be stored, with genres and cast already normalised."""

    source_key: str
    title: str
    year: int
    synopsis: str
    wikipedia_slug: str
    poster_url: str
    genres: tuple[tuple[str, str], ...]  # (slug, name), unique by slug
    cast: tuple[tuple[str, str], ...]  # (person key, name) in billing order, unique by key
    cast_dropped: int = 0
    # The source's thumbnail was refused (movies.posters): the film has no poster.
    poster_refused: bool = False


def source_key(title: str, year: int, href: str) -> str:
    """Identity of a source film, so a re-import updates it instead of copying it.

    ``href`` alone is not an identity in the reference data: 155 articles are
    linked from films of different years ("The Train Wreckers", 1905 and 1925),
    and keying on it would silently merge 158 distinct films. With the year the
    key merges only true repeats (one article listed twice in one year), and
    without an article the folded title stands in for it. Keys of films with an
    article survive later title corrections in Wikipedia.
    """
    if href:
        return f"wiki:{year}:{href}"
    return f"title:{year}:{fold(title)}"


def _optional_text(raw: dict[str, Any], field: str, rule: TextRule = LINE) -> str:
    value = raw.get(field)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RecordError(f"{field} is not a string")
    return _checked(field, strip_invisible(value).strip(), rule)


def _checked(field: str, text: str, rule: TextRule) -> str:
    # The rule of API writes and the admin (movies.text), after the source's invisible
    # format characters are dropped as its runs of whitespace are collapsed.
    reason = rule.problem(text)
    if reason is not None:
        raise RecordError(f"{field} {reason}")
    return text


def _text_list(raw: dict[str, Any], field: str) -> list[str]:
    value = raw.get(field)
    if value is None:
        return []
    if not isinstance(value, list):
        raise RecordError(f"{field} is not a list")
    for position, item in enumerate(value):
        if not isinstance(item, str):
            raise RecordError(f"{field}[{position}] is not a string")
    return value


def _year(raw: dict[str, Any]) -> int:
    value = raw.get("year")
    if value is None:
        raise RecordError("missing year")
    if isinstance(value, int) and not isinstance(value, bool):
        year = value
    elif isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        year = int(value)
    else:
        raise RecordError(f"year {value!r} is not an integer")
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise RecordError(f"year {year} is out of range {MIN_YEAR}..{MAX_YEAR}")
    return year


def _title(raw: dict[str, Any]) -> str:
    value = raw.get("title")
    if value is None:
        raise RecordError("missing title")
    if not isinstance(value, str):
        raise RecordError("title is not a string")
    title = collapse(strip_invisible(value))
    if not title:
        raise RecordError("title is empty")
    _checked("title", title, LINE)
    if len(title) > TITLE_MAX:
        raise RecordError(f"title is longer than {TITLE_MAX} characters")
    return title


def _genres(raw: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    genres: dict[str, str] = {}
    for text in _text_list(raw, "genres"):
        text = strip_invisible(text)
        if LINE.shows_nothing(text):
            continue
        slug, name = normalise_genre(_checked("genre", text, LINE))
        if not slug:
            raise RecordError(f"genre {text!r} has no letters or digits")
        if len(name) > GENRE_MAX or len(slug) > GENRE_MAX:
            raise RecordError(f"genre {text[:40]!r}… is longer than {GENRE_MAX} characters")
        genres.setdefault(slug, name)
    return tuple(genres.items())


def _cast(raw: dict[str, Any]) -> tuple[tuple[tuple[str, str], ...], int]:
    names, dropped = clean_cast([strip_invisible(name) for name in _text_list(raw, "cast")])
    cast: dict[str, str] = {}
    for name in names:
        if LINE.problem(name) is not None:  # blank-looking or a refused character
            dropped += 1
            continue
        if len(name) > PERSON_MAX:
            raise RecordError(f"cast name {name[:40]!r}… is longer than {PERSON_MAX} characters")
        # A person listed twice keeps the first (higher) billing.
        cast.setdefault(person_key(name), name)
    return tuple(cast.items()), dropped


def parse_record(raw: object) -> FilmRecord:
    """Validate and normalise one source record; raise :class:`RecordError` if unusable."""
    if not isinstance(raw, dict):
        raise RecordError(f"expected a JSON object, got {type(raw).__name__}")
    title = _title(raw)
    year = _year(raw)
    href = _optional_text(raw, "href")
    poster = _optional_text(raw, "thumbnail")
    if len(href) > SLUG_MAX:
        raise RecordError(f"href is longer than {SLUG_MAX} characters")
    if poster and not poster.startswith(("https://", "http://")):
        raise RecordError("thumbnail is not an http(s) URL")
    if len(poster) > POSTER_MAX:
        raise RecordError(f"thumbnail is longer than {POSTER_MAX} characters")
    # A poster on a host that is not public is left out; the film is imported.
    poster_refused = poster_problem(poster) is not None
    key = source_key(title, year, href)
    if len(key) > SOURCE_KEY_MAX:
        raise RecordError(f"source key is longer than {SOURCE_KEY_MAX} characters")
    cast, dropped = _cast(raw)
    return FilmRecord(
        source_key=key,
        title=title,
        year=year,
        synopsis=_optional_text(raw, "extract", PROSE),
        wikipedia_slug=href,
        poster_url="" if poster_refused else poster,
        genres=_genres(raw),
        cast=cast,
        cast_dropped=dropped,
        poster_refused=poster_refused,
    )
