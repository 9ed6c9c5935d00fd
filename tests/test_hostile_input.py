"""Input that still got through: numbers that are not the schema's, text
that looks like nothing, posters from anywhere. One rule per kind, the same for
API writes, the importer and the admin's model validation.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from django.core.exceptions import ValidationError

from movies.importing import RecordError, import_movies, parse_record
from movies.models import Genre, Movie, Person
from tests.api_fixtures import ApiClient, Catalogue, bearer, json_of

pytestmark = pytest.mark.django_db(transaction=True)


def invalid(*errors: tuple[str, str]) -> dict[str, Any]:
    """The 400 problem of a write body naming ``errors`` (name, reason)."""
    names = ", ".join(dict.fromkeys(name for name, _ in errors))
    return {
        "type": "about:blank",
        "title": "Bad Request",
        "status": 400,
        "detail": f"Invalid body field(s): {names}.",
        "errors": [{"name": name, "reason": reason} for name, reason in errors],
    }


async def send(api: ApiClient, method: str, path: str, token: str, raw: bytes) -> Any:
    """A write with ``raw`` as its JSON body, byte for byte: (status, payload)."""
    headers = {**bearer(token), "Content-Type": "application/json"}
    response = await api.request(method, path, data=raw, headers=headers)
    return response.status, await json_of(response)


# --- 1. numbers are the numbers the schema says ------------------------------------

NOT_AN_INTEGER = "Input should be a valid integer"


async def test_integers_are_integer_literals(
    api: ApiClient, catalogue: Catalogue, writer: Any
) -> None:
    _, token = writer
    heat = catalogue.movies["Heat"].pk
    pacino = catalogue.people["Al Pacino"].pk
    before = await json_of(await api.get(f"/api/movies/{heat}"))
    for raw, name in [
        (b'{"title": "T", "year": 2000.0}', "year"),
        (b'{"title": "T", "year": 2e3}', "year"),
        (b'{"title": "T", "year": 2E+3}', "year"),
        (b'{"title": "T", "year": "2000"}', "year"),
        (b'{"title": "T", "year": 2000, "runtime_minutes": 90.0}', "runtime_minutes"),
    ]:
        assert await send(api, "POST", "/api/movies", token, raw) == (
            400,
            invalid((name, NOT_AN_INTEGER)),
        ), raw
    for fields, name in [
        ({"credits": [{"person_id": float(pacino)}]}, "credits.0.person_id"),
        ({"credits": [{"person_id": pacino, "billing_order": 1.0}]}, "credits.0.billing_order"),
    ]:
        raw = orjson.dumps(fields)
        assert await send(api, "PATCH", f"/api/movies/{heat}", token, raw) == (
            400,
            invalid((name, NOT_AN_INTEGER)),
        ), raw
    assert await json_of(await api.get(f"/api/movies/{heat}")) == before


async def test_numbers_that_lose_their_value_and_repeated_keys_are_refused(
    api: ApiClient, catalogue: Catalogue, writer: Any
) -> None:
    _, token = writer
    heat = catalogue.movies["Heat"].pk
    pacino = catalogue.people["Al Pacino"].pk
    path = f"/api/movies/{heat}"
    before = await json_of(await api.get(path))
    tiny = "is too small a number: it would be stored as 0"
    cases = [
        (b'{"rating": 1e-400}', [("rating", tiny)]),
        (b'{"rating": 0.00000e-999, "synopsis": "x", "rating": -1.5e-999}',
         [("rating", "given more than once"), ("rating", tiny)]),
        (b'{"title": "A", "title": "B"}', [("title", "given more than once")]),
        (f'{{"credits": [{{"person_id": {pacino}, "role": "cast", "role": "director"}}]}}'.encode(),
         [("credits.0.role", "given more than once")]),
        (b'{"genres": ["drama", "crime", "drama"]}', [("genres", "genre 'drama' is given twice")]),
        (f'{{"credits": [{{"person_id": {pacino}}}, {{"person_id": {pacino}}}]}}'.encode(),
         [("credits", f"person {pacino} is credited twice as cast")]),
    ]  # fmt: skip
    for raw, errors in cases:
        assert await send(api, "PATCH", path, token, raw) == (400, invalid(*errors)), raw
    # Not finite: refused by the field (pydantic) before the JSON check sees it.
    for raw in (b'{"rating": NaN}', b'{"rating": Infinity}', b'{"rating": 1e400}'):
        status, problem = await send(api, "PATCH", path, token, raw)
        assert (status, [error["name"] for error in problem["errors"]]) == (400, ["rating"])
    assert await json_of(await api.get(path)) == before
    # What stays fine: zero written any way, small but representable numbers.
    for raw, rating in [(b'{"rating": 0}', 0.0), (b'{"rating": 0.0e-400}', 0.0),
                        (b'{"rating": 1e-300}', 1e-300), (b'{"rating": 7.5}', 7.5)]:  # fmt: skip
        status, movie = await send(api, "PATCH", path, token, raw)
        assert (status, movie["rating"]) == (200, rating), raw


# --- 2. text that looks like nothing -----------------------------------------------

SHOWS_NOTHING = "must show some text: not only spaces or invisible characters"


def refused_character(code: int) -> str:
    return (
        f"must not contain U+{code:04X} (controls, invisible and format characters, "
        "line separators, private-use characters and non-characters are refused)"
    )


BLANK_TITLES = [
    "\u3164", "\u3164\u3164", "\u2800", "\u115f\u1160", "\uffa0", " \u3164 ", "\u200e",
    "\ufe0f", "\u2800\u200d",
]  # fmt: skip
HIDDEN_CHARACTERS = [
    ("a\u2028b", 0x2028), ("a\u2029b", 0x2029), ("soft\u00adhyphen", 0x00AD),
    ("flag\U000e0067\U000e0062", 0xE0067), ("\U000e0001x", 0xE0001), ("a\ue000b", 0xE000),
    ("a\u180eb", 0x180E), ("a\u2064b", 0x2064), ("a\ufff9b", 0xFFF9), ("\u0600x", 0x0600),
    ("a\u200bb", 0x200B),
]  # fmt: skip


async def test_text_that_shows_nothing_or_hides_characters_is_refused(
    api: ApiClient, catalogue: Catalogue, writer: Any
) -> None:
    _, token = writer
    heat = catalogue.movies["Heat"].pk
    pacino = catalogue.people["Al Pacino"].pk
    cases = [(title, SHOWS_NOTHING) for title in BLANK_TITLES] + [
        (title, refused_character(code)) for title, code in HIDDEN_CHARACTERS
    ]
    for title, reason in cases:
        created = await send(
            api, "POST", "/api/movies", token, orjson.dumps({"title": title, "year": 2000})
        )
        changed = await send(
            api, "PATCH", f"/api/movies/{heat}", token, orjson.dumps({"title": title})
        )
        assert created == changed == (400, invalid(("title", reason))), ascii(title)
    for fields, name, reason in [
        ({"synopsis": "One.\u2029Two."}, "synopsis", refused_character(0x2029)),
        ({"synopsis": "\u3164\n\u3164"}, "synopsis", SHOWS_NOTHING),
        ({"wikipedia_slug": "Heat\u00ad"}, "wikipedia_slug", refused_character(0xAD)),
        ({"credits": [{"person_id": pacino, "character_name": "\u2800"}]},
         "credits.0.character_name", SHOWS_NOTHING),
    ]:  # fmt: skip
        raw = orjson.dumps(fields)
        assert await send(api, "PATCH", f"/api/movies/{heat}", token, raw) == (
            400,
            invalid((name, reason)),
        ), ascii(fields)
    # Kept: the marks and joiners real text needs, Hangul itself, a filler among letters.
    for title in ("\u05d7\u05d5\u05dd\u200e 2", "기생충", "👩\u200d👧", "Hangul\u3164Filler"):
        status, movie = await send(
            api, "PATCH", f"/api/movies/{heat}", token, orjson.dumps({"title": title})
        )
        assert (status, movie["title"]) == (200, title), ascii(title)


def test_the_admin_validates_text_by_the_same_rule(transactional_db: None) -> None:
    for title, reason in [("\u3164", SHOWS_NOTHING), ("a\u2028b", refused_character(0x2028))]:
        movie = Movie(title=title, year=2000, synopsis="\u00ad", poster_url="")
        with pytest.raises(ValidationError) as refused:
            movie.full_clean()
        assert refused.value.message_dict == {
            "title": [f"The text {reason}."],
            "synopsis": [f"The text {refused_character(0xAD)}."],
        }
    for model, field in [(Person(name="\u2800", key="x"), "name"),
                         (Genre(name="\uffa0", slug="x"), "name")]:  # fmt: skip
        with pytest.raises(ValidationError) as refused:
            model.full_clean()
        assert refused.value.message_dict == {field: [f"The text {SHOWS_NOTHING}."]}
    Movie(title="기생충", year=2019, synopsis="Line one.\nLine two.").full_clean()


def test_the_importer_drops_invisible_characters_and_refuses_blank_text(
    transactional_db: None,
) -> None:
    with pytest.raises(RecordError, match=f"^title {SHOWS_NOTHING}$"):
        parse_record({"title": "\u3164\u2800", "year": 2000})
    with pytest.raises(RecordError, match="^title must not contain U\\+E000 "):
        parse_record({"title": "a\ue000", "year": 2000})
    record = parse_record(
        {
            "title": "Heat\u00ad\u2028 (film)",
            "year": 1995,
            "extract": "A word\u2060joiner.",
            "cast": ["Al Pacino\u200b", "\u3164", "Robert De Niro"],
            "genres": ["Crime\u200b", "\u2800"],
        }
    )
    assert (record.title, record.synopsis, record.cast, record.genres, record.cast_dropped) == (
        "Heat (film)",
        "A wordjoiner.",
        (("al pacino", "Al Pacino"), ("robert de niro", "Robert De Niro")),
        (("crime", "Crime"),),
        1,
    )


# --- 3. pictures from anywhere -------------------------------------------------------

PRIVATE = "must be on a public host, not a private, local or reserved address"
LOCAL_NAME = "must be on a public host, not a local network name"
REFUSED_POSTERS = [
    ("http://127.0.0.1:5432/", PRIVATE), ("http://127.1/", PRIVATE),
    ("http://2130706433/p.png", PRIVATE), ("http://0x7f.0.0.1/", PRIVATE),
    ("http://0177.0.0.1/", PRIVATE), ("http://[::1]/", PRIVATE),
    ("http://[::ffff:10.0.0.1]/", PRIVATE), ("http://[fe80::1]/", PRIVATE),
    ("http://169.254.169.254/latest/meta-data", PRIVATE), ("http://192.168.1.1/", PRIVATE),
    ("http://0.0.0.0/", PRIVATE), ("http://224.0.0.1/", PRIVATE), ("http://240.0.0.1/", PRIVATE),
    ("http://localhost/", LOCAL_NAME), ("http://LocalHost./p.png", LOCAL_NAME),
    ("http://api.localhost/", LOCAL_NAME), ("http://printer.local/", LOCAL_NAME),
    ("http://metadata.google.internal/", LOCAL_NAME), ("http://nas/", LOCAL_NAME),
    ("http://user:secret@example.com/p.png", "must not hold a user name or password"),
    ("http://127.0.0.%31/", "must name its host in plain ASCII (an international name as xn--...)"),
]  # fmt: skip
PUBLIC_POSTERS = [
    "https://upload.wikimedia.org/wikipedia/en/a/a1/Heat.jpg", "http://93.184.215.14/p.png",
    "https://[2606:4700::6810:85e5]/p.png", "https://xn--bcher-kva.example/p.png", "",
]  # fmt: skip


async def test_posters_on_hosts_that_are_not_public_are_refused(
    api: ApiClient, catalogue: Catalogue, writer: Any
) -> None:
    _, token = writer
    heat = catalogue.movies["Heat"].pk
    for url, reason in REFUSED_POSTERS:
        created = await send(
            api,
            "POST",
            "/api/movies",
            token,
            orjson.dumps({"title": "T", "year": 2000, "poster_url": url}),
        )
        changed = await send(
            api, "PATCH", f"/api/movies/{heat}", token, orjson.dumps({"poster_url": url})
        )
        assert created == changed == (400, invalid(("poster_url", reason))), url
    for url in PUBLIC_POSTERS:
        status, movie = await send(
            api, "PATCH", f"/api/movies/{heat}", token, orjson.dumps({"poster_url": url})
        )
        assert (status, movie["poster_url"]) == (200, url)


def test_the_admin_and_the_importer_refuse_the_same_posters(transactional_db: None) -> None:
    for url, reason in REFUSED_POSTERS:
        with pytest.raises(ValidationError) as refused:
            Movie(title="T", year=2000, poster_url=url).full_clean()
        assert f"The URL {reason}." in refused.value.message_dict["poster_url"], url
    for url in PUBLIC_POSTERS:
        Movie(title="T", year=2000, poster_url=url).full_clean()
    # The importer keeps the film and leaves the poster out, counting it.
    records = [
        {"title": f"Film {index}", "year": 2000, "href": f"Film_{index}", "thumbnail": url}
        for index, (url, _) in enumerate(REFUSED_POSTERS[:3])
    ] + [{"title": "Kept", "year": 2001, "thumbnail": PUBLIC_POSTERS[0]}]
    report = import_movies(records)
    assert (report.created, report.rejected, report.posters_refused) == (4, 0, 3)
    posters = dict(Movie.objects.values_list("title", "poster_url"))
    assert posters == {"Film 0": "", "Film 1": "", "Film 2": "", "Kept": PUBLIC_POSTERS[0]}
