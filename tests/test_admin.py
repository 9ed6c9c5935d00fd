"""The curator admin (movies.admin): pages, search, filters, query counts, API tokens."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.widgets import AutocompleteSelect, AutocompleteSelectMultiple
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from movies import selectors
from movies.admin import catalogue, lists, versions
from movies.admin.lists import DecadeFilter, EstimatedCountPaginator
from movies.models import MIN_YEAR, ApiToken, Credit, Genre, Movie, Person
from movies.schemas import MovieListQuery
from movies.tokens import authenticate_token, digest

pytestmark = pytest.mark.django_db

MOVIE_CHANGELIST = reverse("admin:movies_movie_changelist")
# The changelist's default order (updated_at, descending) asked for explicitly.
BY_UPDATED_AT = "-6"
TOKEN_CHANGELIST = reverse("admin:movies_apitoken_changelist")


@pytest.fixture(autouse=True)
def static_root(settings: Any, tmp_path: Path) -> None:
    # WhiteNoise, in the middleware, warns when STATIC_ROOT does not exist.
    settings.STATIC_ROOT = tmp_path


def person(name: str) -> Person:
    return Person.objects.create(name=name, key=name.lower())


def film(title: str, year: int, genres: Sequence[Genre] = (), **credits: list[Person]) -> Movie:
    """A film; ``credits`` maps a role to the people credited in it."""
    movie = Movie.objects.create(title=title, year=year)
    movie.genres.set(genres)
    for role, people in credits.items():
        for order, who in enumerate(people):
            Credit.objects.create(movie=movie, person=who, role=role, billing_order=order)
    return movie


@pytest.fixture
def films() -> dict[str, Any]:
    """Five films, four genres (one unused) and three people."""
    drama = Genre.objects.create(name="Drama", slug="drama")
    western = Genre.objects.create(name="Western", slug="western")
    thriller = Genre.objects.create(name="Thriller", slug="thriller")
    Genre.objects.create(name="Musical", slug="musical")
    stewart, hitchcock, eastwood = (
        person("James Stewart"),
        person("Alfred Hitchcock"),
        person("Clint Eastwood"),
    )
    return {
        "genres": {"drama": drama, "western": western, "thriller": thriller},
        "people": {"stewart": stewart, "hitchcock": hitchcock, "eastwood": eastwood},
        "films": {
            "vertigo": film(
                "Vertigo", 1958, [thriller, drama], cast=[stewart], director=[hitchcock]
            ),
            "rear_window": film(
                "Rear Window", 1954, [thriller], cast=[stewart], director=[hitchcock]
            ),
            "man_laramie": film("The Man from Laramie", 1955, [western], cast=[stewart]),
            # Eastwood both directs and stars: two credits, one film.
            "unforgiven": film(
                "Unforgiven", 1992, [western, drama], cast=[eastwood], director=[eastwood]
            ),
            "psycho": film("Psycho", 1960, [thriller], director=[hitchcock]),
        },
    }


def titles(client: Client, url: str = MOVIE_CHANGELIST, **params: str) -> list[str]:
    """Titles of the changelist's current page, in display order."""
    response = client.get(url, params)
    assert response.status_code == 200
    return [movie.title for movie in response.context["cl"].result_list]


# --- access -------------------------------------------------------------------------------

ADMIN_PAGES = [
    MOVIE_CHANGELIST,
    reverse("admin:movies_movie_add"),
    reverse("admin:movies_person_changelist"),
    reverse("admin:movies_genre_changelist"),
    reverse("admin:movies_credit_changelist"),
    TOKEN_CHANGELIST,
    reverse("admin:movies_apitoken_add"),
]


@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_anonymous_users_are_sent_to_the_login_page(client: Client, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('admin:login')}?next={url}"


@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_every_page_renders_for_a_superuser(admin_client: Client, films: Any, url: str) -> None:
    assert admin_client.get(url).status_code == 200


def test_the_admin_passes_its_system_checks() -> None:
    for model in (Movie, Genre, Person, Credit, ApiToken):
        assert admin.site.is_registered(model)
        assert admin.site.get_model_admin(model).check() == []


# --- movie changelist ---------------------------------------------------------------------


def test_movie_changelist_newest_first_with_genre_names(admin_client: Client, films: Any) -> None:
    response = admin_client.get(MOVIE_CHANGELIST)
    cl = response.context["cl"]
    assert [m.title for m in cl.result_list] == [
        "Psycho",
        "Unforgiven",
        "The Man from Laramie",
        "Rear Window",
        "Vertigo",
    ]
    assert cl.result_count == 5
    # Genres in name order, from the prefetch.
    assert '<td class="field-genre_names">Drama, Thriller</td>' in response.content.decode()
    assert '<td class="field-genre_names">Drama, Western</td>' in response.content.decode()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("vertigo", ["Vertigo"]),
        ("WINDOW", ["Rear Window"]),
        # A person's name: each film once, though Eastwood has two credits in it.
        ("eastwood", ["Unforgiven"]),
        ("stewart", ["The Man from Laramie", "Rear Window", "Vertigo"]),
        ("hitchcock", ["Psycho", "Rear Window", "Vertigo"]),
        # Every word, in any order, in the title or in one person's name.
        ("window rear", ["Rear Window"]),
        ("stewart james", ["The Man from Laramie", "Rear Window", "Vertigo"]),
        ("man laramie", ["The Man from Laramie"]),
        # Words are not mixed across fields or people.
        ("stewart laramie", []),
        ("james alfred", []),
        ('"rear window"', ["Rear Window"]),
        ('"window rear"', []),
        # A lone quote is an empty phrase, not an error.
        ('"', ["Psycho", "Unforgiven", "The Man from Laramie", "Rear Window", "Vertigo"]),
        ("nosuchfilm", []),
    ],
)
@pytest.mark.parametrize(
    ("credited_inline_max", "hashed_people_max"),
    [
        (catalogue.CREDITED_INLINE_MAX, catalogue.HASHED_PEOPLE_MAX),  # a list of film ids
        (0, catalogue.HASHED_PEOPLE_MAX),  # a subquery under OR, as "ada" takes
        (0, 0),  # a UNION, as a search matching very many people takes
    ],
    ids=["id-list", "or-subquery", "union"],
)
def test_movie_search_by_title_and_people(
    admin_client: Client,
    films: Any,
    query: str,
    expected: list[str],
    credited_inline_max: int,
    hashed_people_max: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(catalogue, "CREDITED_INLINE_MAX", credited_inline_max)
    monkeypatch.setattr(catalogue, "HASHED_PEOPLE_MAX", hashed_people_max)
    # A column order asks for every film holding the words (relevance: below).
    response = admin_client.get(MOVIE_CHANGELIST, {"q": query, "o": BY_UPDATED_AT})
    cl = response.context["cl"]
    assert [m.title for m in cl.result_list] == expected
    assert cl.result_count == len(expected)


@pytest.mark.postgres(reason="the planner's row estimate")
@pytest.mark.parametrize("filtered", [False, True])
def test_a_search_known_to_find_many_films_is_not_counted_again(
    admin_client: Client, films: Any, monkeypatch: pytest.MonkeyPatch, filtered: bool
) -> None:
    # As "ada" at a million films: more credited films than the exact count reads.
    monkeypatch.setattr(catalogue, "CREDITED_INLINE_MAX", 1)
    monkeypatch.setattr(lists, "EXACT_COUNT_UP_TO", 1)
    params = {"q": "stewart", "o": BY_UPDATED_AT, **({"decade": "1950"} if filtered else {})}
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(MOVIE_CHANGELIST, params)
    cl = response.context["cl"]
    assert [m.title for m in cl.result_list] == ["The Man from Laramie", "Rear Window", "Vertigo"]
    film_counts = [
        q["sql"]
        for q in queries
        if q["sql"].startswith("SELECT COUNT(*)") and "movies_movie" in q["sql"]
    ]
    if filtered:  # a filter may leave few of the credited films: counted as usual
        assert len(film_counts) == 1 and cl.result_count >= 2
    else:  # two credited films are known: the planner's estimate, at least 2
        assert film_counts == [] and cl.result_count >= 2
    # Either way past EXACT_COUNT_UP_TO, so a planner's number, which can be off
    # severalfold: the curator reads it as one.
    page = response.content.decode()
    assert f"about {cl.result_count} results" in page
    assert f"about {cl.result_count} movies" in page


def test_an_exact_count_is_shown_as_it_is(admin_client: Client, films: Any) -> None:
    params = {"q": "stewart", "o": BY_UPDATED_AT}
    page = admin_client.get(MOVIE_CHANGELIST, params).content.decode()
    assert "3 results" in page and "3 movies" in page
    assert not re.search(r"about \d", page)


@pytest.mark.postgres(reason="the admin ranks searches on PostgreSQL (movies.search)")
def test_a_search_without_column_order_is_in_relevance_order(
    admin_client: Client, films: Any
) -> None:
    assert titles(admin_client, q="rear window") == ["Rear Window"]
    assert titles(admin_client, q="the man from") == ["The Man from Laramie"]
    assert titles(admin_client, q="vertgo") == ["Vertigo"]  # a typo
    assert titles(admin_client, q="stewart laramie") == ["The Man from Laramie"]
    assert titles(admin_client, q="psycho 1960", decade="1960") == ["Psycho"]
    Movie.objects.create(title="Vertigo Revisited", year=2020)
    assert titles(admin_client, q="vertigo") == ["Vertigo", "Vertigo Revisited"]


@pytest.mark.postgres(reason="the admin ranks searches on PostgreSQL (movies.search)")
def test_a_search_the_ranking_finds_nothing_for_lists_what_the_substrings_find(
    admin_client: Client, films: Any
) -> None:
    # A person's name alone is no title: every film crediting them, newest change first.
    films["films"]["rear_window"].save()
    assert titles(admin_client, q="hitchcock") == ["Rear Window", "Psycho", "Vertigo"]
    assert titles(admin_client, q="itchc") == ["Rear Window", "Psycho", "Vertigo"]


def test_movie_search_runs_no_distinct(admin_client: Client, films: Any) -> None:
    with CaptureQueriesContext(connection) as queries:
        titles(admin_client, q="stewart", o=BY_UPDATED_AT)
    assert not [q["sql"] for q in queries if "DISTINCT" in q["sql"]]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"genre": "western"}, ["Unforgiven", "The Man from Laramie"]),
        ({"genre": "musical"}, []),
        ({"decade": "1950"}, ["The Man from Laramie", "Rear Window", "Vertigo"]),
        ({"decade": "1960"}, ["Psycho"]),
        ({"decade": "1990", "genre": "drama"}, ["Unforgiven"]),
        (
            {"decade": "1950", "genre": "western", "q": "stewart", "o": "-6"},
            ["The Man from Laramie"],
        ),
    ],
)
def test_movie_filters(
    admin_client: Client, films: Any, params: dict[str, str], expected: list[str]
) -> None:
    assert titles(admin_client, **params) == expected


def test_decade_filter_bounds(admin_client: Client) -> None:
    for year in (1949, 1950, 1959, 1960):
        Movie.objects.create(title=f"Film of {year}", year=year)
    assert titles(admin_client, decade="1950") == ["Film of 1959", "Film of 1950"]


def test_decade_choices_span_the_allowed_years_without_a_query(
    rf: RequestFactory, django_assert_num_queries: Any
) -> None:
    model_admin = admin.site.get_model_admin(Movie)
    with django_assert_num_queries(0):
        decades = DecadeFilter(rf.get("/"), {}, Movie, model_admin).lookup_choices
    this_decade = timezone.now().year // 10 * 10
    assert decades[0] == (str(this_decade), f"{this_decade}s")
    assert decades[-1] == ("1870", "1870s")
    assert [int(d) for d, _ in decades] == list(range(this_decade, 1869, -10))


def test_an_invalid_decade_is_reported_not_a_server_error(admin_client: Client, films: Any) -> None:
    response = admin_client.get(MOVIE_CHANGELIST, {"decade": "sixties"})
    assert response.status_code == 302
    assert response["Location"] == f"{MOVIE_CHANGELIST}?e=1"


def test_changelist_queries_do_not_grow_with_the_number_of_films(admin_client: Client) -> None:
    drama, western = (
        Genre.objects.create(name="Drama", slug="drama"),
        Genre.objects.create(name="Western", slug="western"),
    )
    people = [person(f"Actor {i}") for i in range(3)]

    def add_films(count: int) -> None:
        for _ in range(count):
            n = Movie.objects.count()
            film(f"Film {n}", 1950 + n % 50, [drama, western], cast=people, director=people[:1])

    def queries(**params: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert titles(admin_client, **params)
        return len(captured)

    add_films(5)
    few = {name: queries(**params) for name, params in SCENARIOS.items()}
    add_films(55)
    many = {name: queries(**params) for name, params in SCENARIOS.items()}
    assert many == few
    # Session, user, genre choices, count (plus the planner's estimate on
    # PostgreSQL), the page, the page's genres.
    assert few["plain"] <= 7


SCENARIOS: dict[str, dict[str, str]] = {
    "plain": {},
    "search": {"q": "film"},
    "genre": {"genre": "drama"},
    "decade": {"decade": "1950", "o": "1"},
}


# --- movie add and change pages -----------------------------------------------------------


def test_movie_add_page_has_credits_inline_with_autocomplete(admin_client: Client) -> None:
    response = admin_client.get(reverse("admin:movies_movie_add"))
    html = response.content.decode()
    assert 'name="credits-TOTAL_FORMS"' in html
    credit_form = response.context["inline_admin_formsets"][0].formset.form
    assert list(credit_form.base_fields) == ["person", "role", "billing_order", "character_name"]
    # People and genres are chosen through autocomplete, never a <select> of every row.
    movie_form = response.context["adminform"].form
    assert isinstance(movie_form.fields["genres"].widget.widget, AutocompleteSelectMultiple)
    assert isinstance(credit_form.base_fields["person"].widget.widget, AutocompleteSelect)
    assert 'data-ajax--url="/admin/autocomplete/"' in html
    fieldsets = [fs.name for fs in response.context["adminform"]]
    assert fieldsets == ["Film", "Release", "Links", "Timestamps"]


def test_movie_change_page_shows_credits(admin_client: Client, films: Any) -> None:
    vertigo = films["films"]["vertigo"]
    response = admin_client.get(reverse("admin:movies_movie_change", args=[vertigo.pk]))
    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][0].formset
    assert [(c.person.name, c.role) for c in formset.queryset] == [
        ("James Stewart", "cast"),
        ("Alfred Hitchcock", "director"),
    ]
    html = response.content.decode()
    assert "James Stewart" in html and "Alfred Hitchcock" in html


def movie_form(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "title": "North by Northwest",
        "synopsis": "",
        "year": "1959",
        "release_date": "",
        "runtime_minutes": "136",
        "rating": "8.3",
        "wikipedia_slug": "",
        "poster_url": "",
        "credits-TOTAL_FORMS": "0",
        "credits-INITIAL_FORMS": "0",
        "credits-MIN_NUM_FORMS": "0",
        "credits-MAX_NUM_FORMS": "1000",
    }
    data.update(overrides)
    return data


def test_curator_adds_a_film_with_its_credits(admin_client: Client, films: Any) -> None:
    hitchcock = films["people"]["hitchcock"]
    thriller = films["genres"]["thriller"]
    data = movie_form(
        genres=[thriller.pk],
        **{
            "credits-TOTAL_FORMS": "1",
            "credits-0-person": str(hitchcock.pk),
            "credits-0-role": "director",
            "credits-0-billing_order": "0",
            "credits-0-character_name": "",
        },
    )
    response = admin_client.post(reverse("admin:movies_movie_add"), data)
    assert response.status_code == 302
    movie = Movie.objects.get(title="North by Northwest")
    assert (movie.year, movie.runtime_minutes, movie.rating) == (1959, 136, 8.3)
    assert list(movie.genres.all()) == [thriller]
    assert [(c.person, c.role) for c in movie.credits.all()] == [(hitchcock, "director")]


def test_an_invalid_film_is_not_saved(admin_client: Client) -> None:
    response = admin_client.post(reverse("admin:movies_movie_add"), movie_form(year="1700"))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["year"] == [
        f"Ensure this value is greater than or equal to {MIN_YEAR}."
    ]
    assert not Movie.objects.exists()


def add_cast(movie: Movie, count: int) -> None:
    """Credit ``count`` new people in the cast of ``movie``, after those it has."""
    start = movie.credits.count()
    for order in range(start, start + count):
        Credit.objects.create(movie=movie, person=person(f"Actor {order}"), billing_order=order)


def change_form(movie: Movie, **overrides: Any) -> dict[str, Any]:
    """The change form of ``movie`` as its page submits it, credits in page order."""
    credits = list(movie.credits.all())
    data = movie_form(
        title=movie.title,
        year=str(movie.year),
        # The version of the film the page showed: the film as stored now.
        version=versions.version_of(movie.pk),
        **{"credits-TOTAL_FORMS": str(len(credits)), "credits-INITIAL_FORMS": str(len(credits))},
    )
    for i, credit in enumerate(credits):
        data.update(
            {
                f"credits-{i}-id": str(credit.pk),
                f"credits-{i}-movie": str(movie.pk),
                f"credits-{i}-person": str(credit.person_id),
                f"credits-{i}-role": credit.role,
                f"credits-{i}-billing_order": str(credit.billing_order),
                f"credits-{i}-character_name": credit.character_name,
            }
        )
    data.update(overrides)
    return data


def selected_people(movie: Movie) -> list[str]:
    """The autocomplete options the change page of ``movie`` must show as chosen."""
    return [
        f'<option value="{c.person_id}" selected>{c.person.name}</option>'
        for c in movie.credits.select_related("person")
    ]


# Django checks each submitted row with two lookups by primary key, whatever the
# widgets: the row's hidden id (a ModelChoiceField) and the person (ForeignKey.validate).
ROW_VALIDATION = re.compile(
    r'FROM "movies_credit" WHERE "movies_credit"\."id" = \d+ |SELECT 1 AS "a" FROM "movies_person"'
)


def test_change_page_queries_do_not_grow_with_the_credits(admin_client: Client) -> None:
    movie = Movie.objects.create(title="Ensemble", year=1950)
    url = reverse("admin:movies_movie_change", args=[movie.pk])
    admin_client.get(url)  # the first request fills per-process caches (content types)

    def opened() -> tuple[int, str]:
        with CaptureQueriesContext(connection) as captured:
            response = admin_client.get(url)
        assert response.status_code == 200
        return len(captured), response.content.decode()

    add_cast(movie, 3)
    few, _ = opened()
    add_cast(movie, 27)
    many, html = opened()
    assert many == few
    # Session, user, film, genres, credits, the people of all rows at once, and
    # the credits' values for the version the form carries (movies/admin/versions.py).
    assert few <= 7
    for option in selected_people(movie):
        assert option in html
    # Still the AJAX autocomplete, with an empty row to add someone.
    assert 'data-ajax--url="/admin/autocomplete/"' in html
    assert 'name="credits-30-person"' in html


def test_a_rejected_change_shows_its_credits_without_a_query_per_row(admin_client: Client) -> None:
    movie = Movie.objects.create(title="Ensemble", year=1950)
    url = reverse("admin:movies_movie_change", args=[movie.pk])
    admin_client.get(url)

    def rejected() -> tuple[list[str], int, str]:
        with CaptureQueriesContext(connection) as captured:
            response = admin_client.post(url, change_form(movie, year="1700"))
        assert response.status_code == 200
        assert "year" in response.context["adminform"].form.errors
        sql = [q["sql"] for q in captured]
        validation = [q for q in sql if ROW_VALIDATION.search(q)]
        rest = [q for q in sql if not ROW_VALIDATION.search(q)]
        return rest, len(validation), response.content.decode()

    add_cast(movie, 3)
    few, few_checks, _ = rejected()
    add_cast(movie, 27)
    many, many_checks, html = rejected()
    assert len(many) == len(few)
    assert (few_checks, many_checks) == (2 * 3, 2 * 30)
    for option in selected_people(movie):
        assert option in html
    assert Movie.objects.get(pk=movie.pk).year == 1950


def test_curator_changes_who_plays_a_part(admin_client: Client, films: Any) -> None:
    vertigo = films["films"]["vertigo"]
    eastwood = films["people"]["eastwood"]
    url = reverse("admin:movies_movie_change", args=[vertigo.pk])
    response = admin_client.post(url, change_form(vertigo, **{"credits-0-person": eastwood.pk}))
    assert response.status_code == 302
    assert [(c.person.name, c.role) for c in vertigo.credits.all()] == [
        ("Clint Eastwood", "cast"),
        ("Alfred Hitchcock", "director"),
    ]


# "stewart": Django's own AutocompleteSelect fails with a 500 re-rendering the
# page (it filters the people's ids by the text); the preloaded one skips it.
@pytest.mark.parametrize("submitted", ["deleted", "999999", "stewart"])
def test_a_person_who_does_not_exist_is_rejected(
    admin_client: Client, films: Any, submitted: str
) -> None:
    vertigo = films["films"]["vertigo"]
    if submitted == "deleted":
        novak = person("Kim Novak")
        submitted = str(novak.pk)
        novak.delete()
    url = reverse("admin:movies_movie_change", args=[vertigo.pk])
    response = admin_client.post(url, change_form(vertigo, **{"credits-0-person": submitted}))
    assert response.status_code == 200
    invalid = "Select a valid choice. That choice is not one of the available choices."
    assert response.context["inline_admin_formsets"][0].formset.errors == [
        {"person": [invalid]},
        {},
    ]
    assert [(c.person.name, c.role) for c in vertigo.credits.all()] == [
        ("James Stewart", "cast"),
        ("Alfred Hitchcock", "director"),
    ]


# --- autocomplete, genres, people, credits ------------------------------------------------


def test_people_autocomplete_returns_json(admin_client: Client, films: Any) -> None:
    stewart = films["people"]["stewart"]
    response = admin_client.get(
        reverse("admin:autocomplete"),
        {"app_label": "movies", "model_name": "credit", "field_name": "person", "term": "stew"},
    )
    assert response.status_code == 200
    assert response.json() == {
        "results": [{"id": str(stewart.pk), "text": "James Stewart"}],
        "pagination": {"more": False},
    }


def test_genre_autocomplete_for_films(admin_client: Client, films: Any) -> None:
    western = films["genres"]["western"]
    response = admin_client.get(
        reverse("admin:autocomplete"),
        {"app_label": "movies", "model_name": "movie", "field_name": "genres", "term": "wes"},
    )
    assert response.json() == {
        "results": [{"id": str(western.pk), "text": "Western"}],
        "pagination": {"more": False},
    }


def test_genre_changelist_counts_films(admin_client: Client, films: Any) -> None:
    response = admin_client.get(reverse("admin:movies_genre_changelist"))
    counts = {g.name: g.film_count for g in response.context["cl"].result_list}
    assert counts == {"Drama": 2, "Musical": 0, "Thriller": 3, "Western": 2}


def test_person_search_and_required_key(admin_client: Client, films: Any) -> None:
    response = admin_client.get(reverse("admin:movies_person_changelist"), {"q": "clint"})
    assert [p.name for p in response.context["cl"].result_list] == ["Clint Eastwood"]
    response = admin_client.post(reverse("admin:movies_person_add"), {"name": "Kim Novak"})
    assert response.context["adminform"].form.errors == {"key": ["This field is required."]}
    assert not Person.objects.filter(name="Kim Novak").exists()


def test_credit_changelist_filters_by_role_and_searches_people(
    admin_client: Client, films: Any
) -> None:
    url = reverse("admin:movies_credit_changelist")
    response = admin_client.get(url, {"role__exact": "director", "q": "hitchcock"})
    assert sorted(c.movie.title for c in response.context["cl"].result_list) == [
        "Psycho",
        "Rear Window",
        "Vertigo",
    ]


# --- the estimated count ------------------------------------------------------------------


def test_paginator_counts_exactly_on_small_or_filtered_tables(films: Any) -> None:
    for films_of, expected in ((Movie.objects.all(), 5), (Movie.objects.filter(year__lt=1960), 3)):
        paginator = EstimatedCountPaginator(films_of, 2)
        assert paginator.count == expected and not paginator.estimated


@pytest.mark.postgres(reason="the planner's row estimate")
def test_paginator_uses_the_planner_estimate_for_a_large_unfiltered_table(
    films: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lists, "ESTIMATE_ABOVE_ROWS", 1)
    with connection.cursor() as cursor:
        # The estimate is whatever ANALYZE last saw: make it differ from the truth.
        cursor.execute("ANALYZE movies_movie")
        Movie.objects.create(title="Not yet analysed", year=2000)
    paginator = EstimatedCountPaginator(Movie.objects.all(), 2)
    with CaptureQueriesContext(connection) as queries:
        count = paginator.count
    assert count == 5 and paginator.estimated
    assert Movie.objects.count() == 6
    assert not [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
    # A filter means an exact count again.
    assert EstimatedCountPaginator(Movie.objects.filter(year=2000), 2).count == 1


@pytest.mark.postgres(reason="the planner's row estimate")
def test_paginator_estimates_a_filtered_list_past_the_exact_count(
    films: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lists, "EXACT_COUNT_UP_TO", 2)
    with CaptureQueriesContext(connection) as queries:
        two = EstimatedCountPaginator(Movie.objects.filter(year__gt=1958), 2).count
    assert two == 2
    # The count stops reading at the limit and asks for no plan.
    [count] = [q["sql"] for q in queries]
    assert "LIMIT 3" in count
    with CaptureQueriesContext(connection) as queries:
        many = EstimatedCountPaginator(Movie.objects.filter(year__lt=1960), 2).count
    # At least the rows the capped count saw, whatever the planner guessed.
    assert many >= 3
    assert [q["sql"].split()[0] for q in queries] == ["SELECT", "EXPLAIN"]


# --- API tokens ---------------------------------------------------------------------------


def test_token_add_form_asks_only_for_user_and_name(admin_client: Client) -> None:
    response = admin_client.get(reverse("admin:movies_apitoken_add"))
    assert list(response.context["adminform"].form.fields) == ["user", "name"]


def test_issuing_a_token_shows_it_once_and_stores_only_its_digest(
    admin_client: Client, admin_user: User
) -> None:
    response = admin_client.post(
        reverse("admin:movies_apitoken_add"), {"user": admin_user.pk, "name": "importer"}
    )
    token = ApiToken.objects.get()
    assert response.status_code == 302
    assert response["Location"] == TOKEN_CHANGELIST
    shown = [m.message for m in get_messages(response.wsgi_request)]
    match = re.fullmatch(r"Copy this token now, it will not be shown again: (\S+)", shown[0])
    assert match is not None, shown
    raw = match[1]
    assert (token.user, token.name, token.prefix) == (admin_user, "importer", raw.split(".")[0])
    assert token.digest == digest(raw)
    row = ApiToken.objects.filter(pk=token.pk).values().get()
    assert not [field for field, value in row.items() if raw in str(value)]
    assert authenticate_token(raw) == token
    # The next page shows the message once; after that the token is gone for good.
    page = admin_client.get(TOKEN_CHANGELIST).content.decode()
    assert raw in page
    assert token.digest not in page
    change_page = reverse("admin:movies_apitoken_change", args=[token.pk])
    for url in (TOKEN_CHANGELIST, change_page):
        page = admin_client.get(url).content.decode()
        assert token.prefix in page
        assert raw not in page and token.digest not in page


def test_token_change_page_edits_only_the_name(admin_client: Client, admin_user: User) -> None:
    token = ApiToken.objects.create(user=admin_user, name="old", prefix="abcd1234", digest="f" * 64)
    url = reverse("admin:movies_apitoken_change", args=[token.pk])
    response = admin_client.get(url)
    assert list(response.context["adminform"].form.fields) == ["name"]
    assert "f" * 64 not in response.content.decode()
    response = admin_client.post(url, {"name": "renamed", "user": "999", "revoked_at": "x"})
    assert response.status_code == 302
    token.refresh_from_db()
    assert (token.name, token.user, token.revoked_at) == ("renamed", admin_user, None)


def test_revoke_action_revokes_active_tokens_and_keeps_earlier_revocations(
    admin_client: Client, admin_user: User
) -> None:
    earlier = timezone.now() - timedelta(days=3)
    active = ApiToken.objects.create(user=admin_user, name="a", prefix="aaaa0000", digest="a" * 64)
    revoked = ApiToken.objects.create(
        user=admin_user, name="b", prefix="bbbb0000", digest="b" * 64, revoked_at=earlier
    )
    response = admin_client.post(
        TOKEN_CHANGELIST,
        {"action": "revoke", "_selected_action": [active.pk, revoked.pk]},
        follow=True,
    )
    assert [m.message for m in response.context["messages"]] == ["Revoked 1 token(s)."]
    active.refresh_from_db()
    revoked.refresh_from_db()
    assert active.revoked_at is not None and active.revoked_at > earlier
    assert revoked.revoked_at == earlier


def test_token_changelist_shows_status_never_the_digest(
    admin_client: Client, admin_user: User
) -> None:
    ApiToken.objects.create(user=admin_user, name="live", prefix="cccc0000", digest="c" * 64)
    response = admin_client.get(TOKEN_CHANGELIST, {"revoked_at__isempty": "1"})
    assert [t.name for t in response.context["cl"].result_list] == ["live"]
    html = response.content.decode()
    assert "cccc0000" in html and "c" * 64 not in html
    assert 'alt="True"' in html


def test_a_curator_issues_tokens_only_for_themselves(
    client: Client, admin_user: User, django_user_model: type[User]
) -> None:
    curator = django_user_model.objects.create_user("curator", is_staff=True)
    curator.user_permissions.set(
        Permission.objects.filter(codename__in=["add_apitoken", "change_apitoken", "view_apitoken"])
    )
    ApiToken.objects.create(user=admin_user, name="admin's", prefix="dddd0000", digest="d" * 64)
    client.force_login(curator)

    response = client.get(reverse("admin:movies_apitoken_add"))
    assert list(response.context["adminform"].form.fields["user"].queryset) == [curator]
    # A token for a superuser would carry the superuser's rights into the API.
    response = client.post(
        reverse("admin:movies_apitoken_add"), {"user": admin_user.pk, "name": "escalate"}
    )
    assert response.status_code == 200
    assert "user" in response.context["adminform"].form.errors
    assert not ApiToken.objects.filter(name="escalate").exists()

    response = client.post(
        reverse("admin:movies_apitoken_add"), {"user": curator.pk, "name": "mine"}
    )
    assert response.status_code == 302
    assert ApiToken.objects.get(name="mine").user == curator
    # The superuser's token is neither listed nor reachable.
    response = client.get(TOKEN_CHANGELIST)
    assert [t.name for t in response.context["cl"].result_list] == ["mine"]
    admins = ApiToken.objects.get(name="admin's")
    response = client.get(reverse("admin:movies_apitoken_change", args=[admins.pk]))
    assert response.status_code == 302  # "doesn't exist", back to the index


def test_a_film_retitled_in_the_admin_is_found_by_its_new_title(
    admin_client: Client, films: Any
) -> None:
    def found(q: str) -> list[str]:
        page = selectors.list_movies(MovieListQuery.model_validate({"q": q}))
        return [item["title"] for item in page.items]

    assert admin_client.post(reverse("admin:movies_movie_add"), movie_form()).status_code == 302
    movie = Movie.objects.get(title="North by Northwest")
    assert found("northwest") == ["North by Northwest"]
    change = reverse("admin:movies_movie_change", args=[movie.pk])
    response = admin_client.post(change, change_form(movie, title="Saboteur", year="1942"))
    assert response.status_code == 302
    assert found("saboteur") == found("sabot") == ["Saboteur"]
    assert found("northwest") == []
