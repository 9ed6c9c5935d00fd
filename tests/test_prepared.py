"""movies.prepared and the selectors built on it, checked against the plain ORM.

Every prepared selector must return exactly what its previous implementation
(plain lazy querysets with literal values, copied here as references) returned:
same rows, same key order, same value types, same cursors and offsets. Then the
cache itself: one compile per shape, and a bounded least-recently-used map.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any, cast, get_args

import orjson
import pytest
from django.db import connection
from django.db.models import Count, F, Q, QuerySet

from movies import prepared, selectors
from movies.cursors import Cursor, Page
from movies.models import Credit, Genre, Movie, Person
from movies.prepared import Param, StatementCache
from movies.schemas import FilmographyQuery, MovieListQuery, MovieSort, PeopleListQuery
from movies.selectors import films as film_selectors
from movies.selectors.filters import LIST_FIELDS
from tests.api_fixtures import Catalogue, build_catalogue

pytestmark = pytest.mark.django_db

SORTS: tuple[str, ...] = get_args(MovieSort)
MISSING_ID = 10**9
GENRES = {"comedie": "Comédie", "film-noir": 'Film "Noir"', "kids": "Kids' Stuff",
          "odd": "Odd \\ 100%_Genre"}  # fmt: skip
# title, year, rating, genre slugs, directors, cast: unicode, quotes, LIKE
# wildcards, NULL ratings, many or no genres, same title in two years, twins.
EXTRA_FILMS: list[tuple[str, int, float | None, list[str], list[str], list[str]]] = [
    ("Amélie", 2001, 8.3, ["comedie", "drama", "film-noir"], ["J.-P. Jeunet"], ["A. Tautou"]),
    ("Ça", 2017, None, ["horror", "odd"], [], ["Zoë Twin"]),
    ("O'Brien's Way", 1999, 6.0, ["crime", "kids"], ["Conan O'Brien"], ["Conan O'Brien"]),
    ('"Quoted"', 1990, None, [], [], []),
    ("100% Pure", 2005, 5.5, ["action", "comedie", "crime", "drama"], [], ["100% Human"]),
    ("snake_case", 2010, 7.0, ["science-fiction", "odd"], [], ["snake_case_man"]),
    ("Solaris", 1972, 8.1, ["drama", "science-fiction"], ["Andrei Tarkovsky"], []),
    ("Solaris", 2002, None, ["drama", "science-fiction"], ["Steven Soderbergh"], []),
    ("Twin", 1990, 7.0, ["comedie"], [], ["Zoë Twin"]),
    ("Twin", 1990, 7.0, ["comedie"], [], ["Zoë Twin"]),
]  # fmt: skip
NOBODY = "Nobody Credited"


@pytest.fixture
def films(db: None) -> Catalogue:
    catalogue = build_catalogue()
    catalogue.movies["Heat (1986)"] = Movie.objects.create(title="Heat", year=1986, rating=8.4)
    for slug, name in GENRES.items():
        catalogue.genres[slug] = Genre.objects.create(slug=slug, name=name)
    for number, (title, year, rating, slugs, directors, actors) in enumerate(EXTRA_FILMS):
        movie = Movie.objects.create(title=title, year=year, rating=rating, synopsis=title)
        movie.genres.set([catalogue.genres[slug] for slug in slugs])
        for order, name in enumerate(actors):
            Credit.objects.create(
                movie=movie, person=person(catalogue, name), billing_order=order,
                character_name=f'{name}\'s "part"',
            )  # fmt: skip
        for name in directors:
            Credit.objects.create(movie=movie, person=person(catalogue, name), role="director")
        catalogue.movies[f"{title} ({year}) #{number}"] = movie
    person(catalogue, NOBODY)
    # Ties on the timestamp sorts too (auto_now gives every row its own instant).
    instant = dt.datetime(2020, 1, 1, 12, 0, 0, 123456, tzinfo=dt.UTC)
    Movie.objects.filter(title__in=["Twin", "Solaris", "Heat"]).update(
        created_at=instant, updated_at=instant
    )
    return catalogue


def person(catalogue: Catalogue, name: str) -> Person:
    if name not in catalogue.people:
        catalogue.people[name] = Person.objects.create(name=name, key=name.lower())
    return catalogue.people[name]


# --- the references: the selectors as they were before movies.prepared --------

# The list's order and keyset as they were spelt out before the sort keys and row
# comparisons of issue 28 (NULL ratings last in both directions).
NULLABLE_SORT_FIELDS = frozenset({"rating"})


def plain_ordering(field: str, descending: bool, nulls_first: bool) -> tuple[Any, Any]:
    if field not in NULLABLE_SORT_FIELDS:
        nulls = {}
    else:
        nulls = {"nulls_first": True} if nulls_first else {"nulls_last": True}
    if descending:
        return F(field).desc(**nulls), F("id").desc()
    return F(field).asc(**nulls), F("id").asc()


def plain_after(field: str, value: Any, row_id: int, descending: bool, nulls_first: bool) -> Q:
    op = "lt" if descending else "gt"
    tie = Q(**{f"id__{op}": row_id})
    if value is None:
        null_tail = Q(**{f"{field}__isnull": True}) & tie
        return Q(**{f"{field}__isnull": False}) | null_tail if nulls_first else null_tail
    after = Q(**{f"{field}__{op}": value}) | (Q(**{field: value}) & tie)
    if field in NULLABLE_SORT_FIELDS and not nulls_first:
        after |= Q(**{f"{field}__isnull": True})
    return after


def plain_list_movies(query: MovieListQuery) -> Page:
    cursor = query.cursor
    field = query.sort.lstrip("-")
    descending = query.sort.startswith("-")
    backwards = cursor is not None and cursor.backwards
    scan_descending = descending != backwards
    nulls_first = backwards and field in NULLABLE_SORT_FIELDS
    movies = selectors.filtered_movies(query)
    if cursor is not None:
        movies = movies.filter(
            plain_after(field, cursor.value, cursor.id, scan_descending, nulls_first)
        )
    movies = movies.order_by(*plain_ordering(field, scan_descending, nulls_first))
    start = query.offset if cursor is None else 0
    hidden = [field] if field not in LIST_FIELDS else []
    fields = (*LIST_FIELDS, *hidden)
    rows = list(movies.values(*fields)[start : start + query.limit + 1])
    has_more = len(rows) > query.limit
    rows = rows[: query.limit]
    if backwards:
        rows.reverse()
    sort_values = {row["id"]: row[field] for row in rows}
    for row in rows:
        for name in hidden:
            del row[name]
    names: dict[int, list[str]] = defaultdict(list)
    if rows:
        links = (
            Movie.genres.through.objects.filter(movie_id__in=[row["id"] for row in rows])
            .order_by("genre__name")
            .values_list("movie_id", "genre__name")
        )
        for movie_id, name in links:
            names[movie_id].append(name)
    for row in rows:
        row["genres"] = names[row["id"]]

    def boundary(row: dict[str, Any], backwards: bool) -> Cursor:
        return Cursor(query.sort, sort_values[row["id"]], row["id"], backwards)

    if not rows:
        return Page(items=[], limit=query.limit)
    first, last = rows[0], rows[-1]
    if backwards:
        return Page(
            items=rows,
            limit=query.limit,
            next_cursor=boundary(last, False),
            previous_cursor=boundary(first, True) if has_more else None,
        )
    return Page(
        items=rows,
        limit=query.limit,
        next_cursor=boundary(last, False) if has_more else None,
        previous_cursor=boundary(first, True) if cursor is not None else None,
        previous_offset=max(0, query.offset - query.limit) if query.offset else None,
    )


def plain_get_movie(movie_id: int) -> dict[str, Any] | None:
    movie = Movie.objects.filter(pk=movie_id).values(*film_selectors.DETAIL_FIELDS).first()
    if movie is None:
        return None
    movie["genres"] = list(
        Genre.objects.filter(movies=movie_id).order_by("name").values("slug", "name")
    )
    credits = (
        Credit.objects.filter(movie_id=movie_id)
        .order_by("role", "billing_order", "id")
        .values_list("role", "person_id", "person__name", "character_name")
    )
    movie["directors"] = []
    movie["cast"] = []
    for role, person_id, name, character in credits:
        if role == Credit.Role.DIRECTOR:
            movie["directors"].append({"id": person_id, "name": name})
        else:
            movie["cast"].append({"id": person_id, "name": name, "character": character})
    return movie


def plain_list_genres() -> list[dict[str, Any]]:
    # Counted from the links: checks the count each genre keeps (movies.genre_copies).
    genres = Genre.objects.annotate(counted=Count("movies")).order_by("name")
    rows = genres.values_list("slug", "name", "counted")
    return [{"slug": slug, "name": name, "movie_count": count} for slug, name, count in rows]


def plain_list_people(query: PeopleListQuery) -> Page:
    after = query.cursor
    backwards = after is not None and after.backwards
    people = Person.objects.order_by(*(("-name", "-id") if backwards else ("name", "id")))
    if query.q is not None:
        people = people.filter(name__icontains=query.q)
    if after is not None:
        op = "lt" if backwards else "gt"
        people = people.filter(
            Q(**{f"name__{op}": after.value}) | Q(name=after.value, **{f"id__{op}": after.id})
        )
    start = query.offset if after is None else 0
    page = people.values("id", "name")[start : start + query.limit + 1]
    rows = cast(list[dict[str, Any]], list(page))
    has_more = len(rows) > query.limit
    rows = rows[: query.limit]
    if backwards:
        rows.reverse()
    if not rows:
        return Page(items=[], limit=query.limit)

    def boundary(row: dict[str, Any], backwards: bool) -> Cursor:
        return Cursor("name", row["name"], row["id"], backwards)

    if backwards:
        return Page(
            items=rows,
            limit=query.limit,
            next_cursor=boundary(rows[-1], False),
            previous_cursor=boundary(rows[0], True) if has_more else None,
        )
    return Page(
        items=rows,
        limit=query.limit,
        next_cursor=boundary(rows[-1], False) if has_more else None,
        previous_cursor=boundary(rows[0], True) if after is not None else None,
        previous_offset=max(0, query.offset - query.limit) if query.offset else None,
    )


def plain_get_person(person_id: int) -> dict[str, Any] | None:
    found = cast(
        dict[str, Any] | None, Person.objects.filter(pk=person_id).values("id", "name").first()
    )
    if found is None:
        return None
    credits = (
        Credit.objects.filter(person_id=person_id)
        .order_by("-movie__year", "movie__title", "movie_id", "role")
        .values_list("movie_id", "movie__title", "movie__year", "role", "character_name")
    )
    found["filmography"] = [
        {"movie": {"id": movie_id, "title": title, "year": year}, "role": role,
         "character": character}
        for movie_id, title, year, role, character in credits
    ]  # fmt: skip
    return found


# --- exact comparison ---------------------------------------------------------


def exact(value: Any) -> Any:
    """``value`` with key order and every scalar's type made part of equality."""
    if isinstance(value, dict):
        return [(key, exact(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [exact(item) for item in value]
    return (type(value).__name__, value)


def token(cursor: Cursor | None) -> Any:
    # Its text beside what it holds, typed, so that a failure says which row differs.
    if cursor is None:
        return None
    return cursor.encode(), cursor.sort, exact(cursor.value), cursor.id, cursor.backwards


def exact_page(page: Page) -> Any:
    return {
        "items": exact(page.items),
        "limit": page.limit,
        "next_cursor": token(page.next_cursor),
        "previous_cursor": token(page.previous_cursor),
        "previous_offset": page.previous_offset,
    }


# --- the film list --------------------------------------------------------------

# "person" names a person of the fixture (its id differs per run), or is an id.
REQUESTS: list[dict[str, Any]] = [
    {},
    *({"sort": sort} for sort in SORTS),
    *({"sort": sort, "limit": 3, "offset": 4} for sort in SORTS),
    {"genre": "crime"}, {"genre": "drama", "sort": "-rating"}, {"genre": "comedie"},
    {"genre": "odd", "sort": "-title"}, {"genre": "western"}, {"genre": "no-such-genre"},
    {"person": "Ridley Scott"}, {"person": "Conan O'Brien"}, {"person": "Zoë Twin", "sort": "id"},
    {"person": NOBODY}, {"person": MISSING_ID},
    {"year": 1986}, {"year": 1990, "sort": "-created_at"}, {"year": 1870},
    {"year_min": 1990}, {"year_min": 2100}, {"year_max": 1942}, {"year_max": 1870},
    {"year_min": 1986, "year_max": 1986, "sort": "-rating"},
    {"q": "runner"}, {"q": "heat"}, {"q": "Amélie"}, {"q": "ça"}, {"q": "Ça"}, {"q": "O'Brien"},
    {"q": "'"}, {"q": '"Quoted"'}, {"q": '"'}, {"q": "%"}, {"q": "100%"}, {"q": "_"},
    {"q": "snake_case"}, {"q": "e_c"}, {"q": "a%e"}, {"q": "\\"}, {"q": "zzzz"},
    {"q": "solaris", "sort": "-year"}, {"q": "alien -aliens"}, {"q": '"blade runner"'},
    {"q": "runner or heat"}, {"q": "film"},
    {"genre": "drama", "year_min": 1980, "sort": "-rating"},
    {"genre": "action", "person": "Ridley Scott"},
    {"genre": "science-fiction", "q": "alien", "sort": "year"},
    {"genre": "comedie", "year": 1990, "limit": 1},
    {"person": "James Cameron", "year_max": 1985},
    {"person": "Zoë Twin", "q": "twin", "sort": "-id"},
    {"year_min": 1980, "year_max": 1990, "sort": "rating", "limit": 2, "offset": 2},
    {"genre": "drama", "person": "Ridley Scott", "year": 2000, "year_min": 1990,
     "year_max": 2010, "q": "gladiator"},
    {"genre": "crime", "person": "Harrison Ford", "q": "zzzz"},
    {"offset": 0}, {"offset": 7}, {"offset": 19}, {"offset": 20}, {"offset": 500},
    {"offset": 10_000}, {"limit": 1}, {"limit": 2}, {"limit": 3}, {"limit": 100},
    {"limit": 1, "offset": 1}, {"limit": 100, "sort": "-rating"},
    {"limit": 2, "offset": 3, "sort": "rating"}, {"limit": 3, "offset": 17, "sort": "-updated_at"},
]  # fmt: skip


def request_id(params: dict[str, Any]) -> str:
    return "&".join(f"{name}={value}" for name, value in params.items()) or "defaults"


def list_query(films: Catalogue, params: dict[str, Any]) -> MovieListQuery:
    values = dict(params)
    # These tests compare the prepared keyset path with the plain ORM; a search
    # without a sort is in relevance order, which tests/test_search.py covers.
    if "q" in values:
        values.setdefault("sort", "title")
    if isinstance(values.get("person"), str):
        values["person"] = films.people[values["person"]].pk
    if isinstance(values.get("cursor"), Cursor):  # sent as a client sends it: its text
        values["cursor"] = values["cursor"].encode()
    return MovieListQuery.model_validate(values)


def assert_same_list_page(films: Catalogue, params: dict[str, Any]) -> Page:
    query = list_query(films, params)
    page = selectors.list_movies(query)
    assert exact_page(page) == exact_page(plain_list_movies(query)), params
    return page


def test_the_table_is_big_and_has_no_duplicates() -> None:
    assert len(REQUESTS) >= 60
    assert len({orjson.dumps(row, option=orjson.OPT_SORT_KEYS) for row in REQUESTS}) == len(
        REQUESTS
    )


@pytest.mark.parametrize("params", REQUESTS, ids=request_id)
def test_list_page_equals_the_plain_orm(films: Catalogue, params: dict[str, Any]) -> None:
    assert_same_list_page(films, params)


WALKS: list[dict[str, Any]] = [
    *({"sort": sort, "limit": 2} for sort in SORTS),
    {"genre": "drama", "sort": "-rating", "limit": 1},
    {"year_min": 1980, "sort": "rating", "limit": 3},
    {"q": "heat", "sort": "-created_at", "limit": 1},
    {"person": "Zoë Twin", "sort": "updated_at", "limit": 1},
]


@pytest.mark.parametrize("params", WALKS, ids=request_id)
def test_cursor_walks_equal_the_plain_orm(films: Catalogue, params: dict[str, Any]) -> None:
    page = assert_same_list_page(films, params)
    seen = [item["id"] for item in page.items]
    while page.next_cursor is not None:
        page = assert_same_list_page(films, {**params, "cursor": page.next_cursor.encode()})
        seen += [item["id"] for item in page.items]
    while page.previous_cursor is not None:
        page = assert_same_list_page(films, {**params, "cursor": page.previous_cursor.encode()})
    everything = selectors.filtered_movies(list_query(films, params))
    order = selectors.sort_order(params["sort"])
    assert seen == list(everything.order_by(*order).values_list("id", flat=True))
    assert len(seen) > params["limit"]  # the walk did cross pages


@pytest.mark.postgres(reason="q is full text over title and synopsis")
def test_synopsis_matches_equal_the_plain_orm(films: Catalogue) -> None:
    Movie.objects.create(title="Thief", year=1981, synopsis="A safecracker takes one last job.")
    page = assert_same_list_page(films, {"q": "safecrackers"})
    assert [item["title"] for item in page.items] == ["Thief"]


# --- details, people, genres ----------------------------------------------------


def test_every_film_detail_equals_the_plain_orm(films: Catalogue) -> None:
    ids = [*Movie.objects.values_list("id", flat=True), MISSING_ID]
    for movie_id in ids:
        assert exact(selectors.get_movie(movie_id)) == exact(plain_get_movie(movie_id)), movie_id
    assert selectors.get_movie(MISSING_ID) is None


def whole_filmography(person_id: int, limit: int) -> dict[str, Any] | None:
    """The person and every credit, read a page of ``limit`` at a time by ``next``."""
    query = FilmographyQuery.model_validate({"limit": limit})
    found = selectors.get_filmography(person_id, query)
    if found is None:
        return None
    person: dict[str, Any] = {**found.person, "filmography": list(found.page.items)}
    while found is not None and found.page.next_cursor is not None:
        query = FilmographyQuery.model_validate(
            {"limit": limit, "cursor": found.page.next_cursor.encode()}
        )
        found = selectors.get_filmography(person_id, query)
        assert found is not None
        person["filmography"] += found.page.items
    return person


@pytest.mark.parametrize("limit", [1, 2, 100])
def test_every_person_equals_the_plain_orm(films: Catalogue, limit: int) -> None:
    # The copies of the films' titles and years on the credits order the pages as the
    # films themselves order the plain ORM's filmography.
    ids = [*Person.objects.values_list("id", flat=True), MISSING_ID]
    for person_id in ids:
        expected = exact(plain_get_person(person_id))
        assert exact(whole_filmography(person_id, limit)) == expected, person_id
    assert selectors.get_person(MISSING_ID) is None
    nobody = selectors.get_person(films.people[NOBODY].pk)
    assert nobody is not None
    assert nobody.person == {"id": films.people[NOBODY].pk, "name": NOBODY}
    assert nobody.page.items == [] and nobody.page.next_cursor is None
    both_roles = selectors.get_person(films.people["Conan O'Brien"].pk)
    assert both_roles is not None
    assert [entry["role"] for entry in both_roles.page.items] == ["cast", "director"]


PEOPLE_REQUESTS: list[dict[str, Any]] = [
    {}, {"q": "r"}, {"q": "R"}, {"q": "%"}, {"q": "100%"}, {"q": "_"}, {"q": "e_c"}, {"q": "'"},
    {"q": "O'B"}, {"q": "zoë"}, {"q": "\\"}, {"q": "nobody-at-all"}, {"limit": 1},
    {"limit": 3, "offset": 3}, {"offset": 100}, {"limit": 2, "q": "a", "offset": 2},
    {"limit": 100},
]  # fmt: skip


@pytest.mark.parametrize("params", PEOPLE_REQUESTS, ids=request_id)
def test_people_page_equals_the_plain_orm(films: Catalogue, params: dict[str, Any]) -> None:
    query = PeopleListQuery.model_validate(params)
    assert exact_page(selectors.list_people(query)) == exact_page(plain_list_people(query))


# "o" filters the name index; "Hael" reads the name keys on PostgreSQL (0014).
@pytest.mark.parametrize(
    "params", [{"limit": 2}, {"limit": 1, "q": "o"}, {"limit": 1, "q": "Hael"}], ids=request_id
)
def test_people_cursor_walks_equal_the_plain_orm(films: Catalogue, params: dict[str, Any]) -> None:
    def page_of(extra: dict[str, Any]) -> Page:
        query = PeopleListQuery.model_validate({**params, **extra})
        page = selectors.list_people(query)
        assert exact_page(page) == exact_page(plain_list_people(query))
        return page

    page = page_of({})
    seen = [item["id"] for item in page.items]
    while page.next_cursor is not None:
        page = page_of({"cursor": page.next_cursor.encode()})
        seen += [item["id"] for item in page.items]
    while page.previous_cursor is not None:
        page = page_of({"cursor": page.previous_cursor.encode()})
    people = Person.objects.order_by("name", "id")
    if "q" in params:
        people = people.filter(name__icontains=params["q"])
    assert seen == list(people.values_list("id", flat=True))
    assert len(seen) > params["limit"]


def test_genres_equal_the_plain_orm(films: Catalogue) -> None:
    assert exact(selectors.list_genres()) == exact(plain_list_genres())


# --- the statement cache ----------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "same_shape", "other_shape"),
    [
        ({"year": 1986, "offset": 2}, {"year": 1995, "offset": 1},
         {"year": 1986, "genre": "crime"}),
        ({"q": "heat", "sort": "-year"}, {"q": "alien", "sort": "-year"},
         {"q": "heat", "sort": "year"}),
    ],
    ids=["year", "q"],
)  # fmt: skip
def test_a_second_request_of_a_shape_compiles_nothing(
    films: Catalogue, first: dict[str, Any], same_shape: dict[str, Any], other_shape: Any
) -> None:
    statements = prepared.STATEMENTS
    statements.clear()
    compiles, hits = statements.compiles, statements.hits
    selectors.list_movies(list_query(films, first))
    assert statements.compiles == compiles + 1
    selectors.list_movies(list_query(films, same_shape))
    assert (statements.compiles, statements.hits) == (compiles + 1, hits + 1)
    selectors.list_movies(list_query(films, other_shape))
    assert statements.compiles == compiles + 2


def test_cursor_pages_and_details_reuse_their_statements(films: Catalogue) -> None:
    statements = prepared.STATEMENTS
    statements.clear()
    first = selectors.list_movies(list_query(films, {"sort": "title", "limit": 2}))
    assert first.next_cursor is not None
    second = selectors.list_movies(list_query(films, {"cursor": first.next_cursor, "limit": 2}))
    compiles = statements.compiles
    assert second.next_cursor is not None
    selectors.list_movies(list_query(films, {"cursor": second.next_cursor, "limit": 2}))
    selectors.get_movie(films.movies["Alien"].pk)
    assert statements.compiles == compiles + 1  # the film with its genres and credits
    selectors.get_movie(films.movies["Heat"].pk)
    selectors.get_person(films.people["Harrison Ford"].pk)
    selectors.get_person(films.people[NOBODY].pk)
    assert statements.compiles == compiles + 2


def execute(statement: prepared.Statement, values: dict[str, Any]) -> list[prepared.Row]:
    with connection.cursor() as cursor:
        cursor.execute(statement.sql, statement.params(values, connection))
        # These shapes select text only: no converters to apply.
        assert not statement.converters
        return [dict(zip(statement.names, row, strict=True)) for row in cursor.fetchall()]


def genre_by_name() -> QuerySet[Any, Any]:
    return Genre.objects.filter(name=Param("n", Genre._meta.get_field("name"))).values("name")


def genre_by_slug() -> QuerySet[Any, Any]:
    return Genre.objects.filter(slug=Param("s", Genre._meta.get_field("slug"))).values("slug")


def genre_names() -> QuerySet[Any, Any]:
    return Genre.objects.order_by("name").values("name")


def test_statement_cache_drops_the_least_recently_used(films: Catalogue) -> None:
    cache = StatementCache(max_size=2)
    built: list[str] = []

    builders = {"a": genre_by_name, "b": genre_by_slug, "c": genre_names}

    def statement(key: str) -> prepared.Statement:
        def build() -> QuerySet[Any, Any]:
            built.append(key)
            return builders[key]()

        return cache.statement(key, "default", build)

    statement("a")
    statement("b")
    assert (len(cache), cache.compiles, cache.evictions) == (2, 2, 0)
    by_name = statement("a")  # a hit: "b" is now the least recently used
    statement("c")
    assert (len(cache), cache.compiles, cache.evictions, cache.hits) == (2, 3, 1, 1)
    assert statement("a") is by_name  # kept
    statement("b")  # dropped, so compiled again; "c" goes
    assert (len(cache), cache.compiles, cache.evictions, cache.misses) == (2, 4, 2, 4)
    assert built == ["a", "b", "c", "b"]
    assert execute(by_name, {"n": "Drama"}) == list(
        Genre.objects.filter(name="Drama").values("name")
    )
    cache.clear()
    assert len(cache) == 0


def test_compile_statement_binds_values_and_pages(films: Catalogue) -> None:
    statement = prepared.compile_statement(genre_names(), "default", limit=2, offset=True)
    assert statement.sql.endswith(" LIMIT 2 OFFSET %s")  # the limit is written, see below
    with connection.cursor() as cursor:
        cursor.execute(statement.sql, statement.params({}, connection, 1))
        assert not statement.converters  # text only
        rows = [dict(zip(statement.names, row, strict=True)) for row in cursor.fetchall()]
    assert rows == list(genre_names()[1:3])
    first_page = prepared.compile_statement(genre_names(), "default", limit=2)
    assert first_page.sql.endswith(" LIMIT 2")
    assert first_page.params({}, connection, 5) == []  # no OFFSET to bind
    with pytest.raises(ValueError, match="slice"):
        prepared.compile_statement(genre_names()[:2], "default")
    with pytest.raises(ValueError, match="needs a limit"):
        prepared.compile_statement(genre_names(), "default", offset=True)
    for limit in (-1, "2; DROP TABLE movies_genre", 2.5, True):
        with pytest.raises(ValueError, match="non-negative int"):
            prepared.compile_statement(genre_names(), "default", limit=limit)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_size"):
        StatementCache(max_size=0)


def test_each_page_size_is_a_statement_and_offsets_share_one(films: Catalogue) -> None:
    statements = prepared.STATEMENTS
    statements.clear()
    compiles = statements.compiles
    selectors.list_movies(list_query(films, {"limit": 2}))
    selectors.list_movies(list_query(films, {"limit": 3}))
    assert statements.compiles == compiles + 2
    selectors.list_movies(list_query(films, {"limit": 2, "offset": 2}))
    selectors.list_movies(list_query(films, {"limit": 2, "offset": 4}))
    assert (statements.compiles, len(statements)) == (compiles + 3, 3)


@pytest.mark.postgres(reason="server-side prepared statements")
def test_a_hot_statement_is_prepared_on_the_server(films: Catalogue) -> None:
    from django.conf import settings

    threshold = settings.DATABASES["default"]["OPTIONS"]["prepare_threshold"]
    assert threshold is not None, "DB_PREPARE_THRESHOLD is off: nothing is prepared"
    movie = films.movies["Heat"].pk

    def prepared_on_this_connection() -> list[str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT statement FROM pg_prepared_statements WHERE NOT from_sql")
            return [row[0] for row in cursor.fetchall()]

    before = prepared_on_this_connection()
    for _ in range(threshold + 1):
        assert selectors.get_movie(movie) is not None
    after = [sql for sql in prepared_on_this_connection() if sql not in before]
    # The film's one statement, with a server-side placeholder.
    assert len(after) == 1, after
    assert all('FROM "movies_' in sql and "$1" in sql for sql in after), after


@pytest.mark.postgres(reason="server-side prepared statements")
def test_a_statement_planned_each_time_is_never_prepared(films: Catalogue) -> None:
    # A filter's best plan depends on its values (prepared.run's plan_each): however
    # often it runs, it stays an unnamed statement, planned with the values bound.
    from django.conf import settings

    threshold = settings.DATABASES["default"]["OPTIONS"]["prepare_threshold"]
    assert threshold is not None, "DB_PREPARE_THRESHOLD is off: nothing is prepared"

    def prepared_on_this_connection() -> list[str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT statement FROM pg_prepared_statements WHERE NOT from_sql")
            return [row[0] for row in cursor.fetchall()]

    before = prepared_on_this_connection()
    query = list_query(films, {"limit": 2, "year_min": 1970, "year_max": 2000})
    pages = [selectors.list_movies(query) for _ in range(threshold + 2)]
    assert pages[0].items and all(page.items == pages[0].items for page in pages)
    assert [sql for sql in prepared_on_this_connection() if sql not in before] == []


@pytest.mark.parametrize(
    ("text", "threshold"), [("off", None), ("OFF", None), ("0", 0), ("2", 2), ("10", 10)]
)
def test_db_prepare_threshold_reads_runs_or_off(text: str, threshold: int | None) -> None:
    from mymoviedb.settings import _prepare_threshold

    assert _prepare_threshold(text) == threshold


@pytest.mark.parametrize("text", ["-1", "two", "2.5", ""])
def test_db_prepare_threshold_refuses_anything_else_with_a_message(text: str) -> None:
    from django.core.exceptions import ImproperlyConfigured

    from mymoviedb.settings import _prepare_threshold

    with pytest.raises(ImproperlyConfigured, match="DB_PREPARE_THRESHOLD must be a whole"):
        _prepare_threshold(text)
