"""A film's change form refuses to save over a film changed since it was opened
(movies/admin/versions.py): by the API, by another curator, in its credits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from bench.admin import form_data
from movies import services
from movies.admin import versions
from movies.bodies import CreditIn, MovieFields
from movies.models import Credit, Genre, Movie, Person
from tests.test_admin import change_form

pytestmark = pytest.mark.django_db

REOPEN = (
    "Someone changed this film since you opened it. Nothing was saved. The table shows "
    "what changed: open the film again to see it as stored now, then make your changes again."
)
RESAVE = (
    "Someone changed this film since you opened it. Nothing was saved. The table shows what "
    "changed. The form now holds the stored values where you had changed nothing and your own "
    "values elsewhere: check them, then save again."
)


@pytest.fixture(autouse=True)
def static_root(settings: Any, tmp_path: Path) -> None:
    settings.STATIC_ROOT = tmp_path


@pytest.fixture
def vertigo() -> Movie:
    movie = Movie.objects.create(title="Vertigo", year=1958, synopsis="A detective.", rating=8.3)
    movie.genres.set([Genre.objects.create(name="Thriller", slug="thriller")])
    stewart = Person.objects.create(name="James Stewart", key="james stewart")
    novak = Person.objects.create(name="Kim Novak", key="kim novak")
    Credit.objects.create(movie=movie, person=stewart, billing_order=0, character_name="Scottie")
    Credit.objects.create(movie=movie, person=novak, billing_order=1, character_name="Madeleine")
    return movie


def url(movie: Movie) -> str:
    return reverse("admin:movies_movie_change", args=[movie.pk])


def opened(client: Client, movie: Movie) -> dict[str, Any]:
    """The change form of ``movie`` as its page would submit it now, version included."""
    response = client.get(url(movie))
    assert response.status_code == 200
    version = response.context["adminform"].form["version"].value()
    assert f'name="version" value="{version}"' in response.content.decode()
    shown = {name: "" if value is None else str(value) for name, value in fields(movie).items()}
    return change_form(movie, version=version, genres=[g.pk for g in movie.genres.all()], **shown)


def fields(movie: Movie) -> dict[str, Any]:
    return {name: getattr(movie, name) for name in versions.FORM_FIELDS}


Conflict = tuple[list[tuple[str, ...]], dict[str, Any]]


def refused(client: Client, movie: Movie, data: dict[str, Any], message: str) -> Conflict:
    """Posts a stale form and asserts that nothing is written; returns the conflict
    table and the form as the page that says so would post it again."""
    entries, before = LogEntry.objects.count(), stored(movie)
    response = client.post(url(movie), data)
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.non_field_errors() == [message]
    html = response.content.decode()
    assert 'id="version-conflict"' in html and message in html
    assert ('class="reload-film"' in html) == (message == REOPEN)
    assert (LogEntry.objects.count(), stored(movie)) == (entries, before)
    return [tuple(row) for row in response.context["version_conflict"]], form_data(response)


def stored(movie: Movie) -> tuple[Any, ...]:
    movie.refresh_from_db()
    credits = movie.credits.order_by("billing_order")
    return (
        movie.title, movie.synopsis, movie.rating,
        [(c.person.name, c.billing_order, c.character_name) for c in credits],
    )  # fmt: skip


def test_the_version_covers_every_field_of_the_form(admin_client: Client, vertigo: Movie) -> None:
    form = admin_client.get(url(vertigo)).context["adminform"].form
    assert set(form.fields) == {*versions.FORM_FIELDS, "genres", "version"}


def test_a_save_from_a_fresh_form_goes_through(admin_client: Client, vertigo: Movie) -> None:
    data = opened(admin_client, vertigo)
    data["title"] = "Vertigo (restored)"
    assert admin_client.post(url(vertigo), data).status_code == 302
    assert stored(vertigo)[0] == "Vertigo (restored)"


def test_a_stale_form_does_not_revert_an_api_patch(
    admin_client: Client, admin_user: User, vertigo: Movie
) -> None:
    data = opened(admin_client, vertigo)
    patch = MovieFields.model_validate(
        {"synopsis": "A detective afraid of heights.", "rating": 8.4}
    )
    services.update_movie(movie_id=vertigo.pk, fields=patch, user_id=admin_user.pk)
    data["title"] = "Vertigo (restored)"
    rows, again = refused(admin_client, vertigo, data, RESAVE)
    assert rows == [
        ("Title", "Vertigo", "Vertigo", "Vertigo (restored)"),
        ("Synopsis", "A detective.", "A detective afraid of heights.", "A detective."),
        ("Rating", "8.3", "8.4", "8.3"),
    ]
    assert stored(vertigo)[:3] == ("Vertigo", "A detective afraid of heights.", 8.4)
    # The page now shows the API's values beside the curator's title; saved as shown.
    assert (again["title"], again["synopsis"], again["rating"]) == (
        "Vertigo (restored)", "A detective afraid of heights.", "8.4",
    )  # fmt: skip
    assert admin_client.post(url(vertigo), again).status_code == 302
    assert stored(vertigo)[:3] == ("Vertigo (restored)", "A detective afraid of heights.", 8.4)


def test_a_value_both_changed_stays_the_curators_until_saved_again(
    admin_client: Client, admin_user: User, vertigo: Movie
) -> None:
    data = opened(admin_client, vertigo)
    patch = MovieFields.model_validate({"synopsis": "From the API."})
    services.update_movie(movie_id=vertigo.pk, fields=patch, user_id=admin_user.pk)
    data["synopsis"] = "From the curator."
    rows, again = refused(admin_client, vertigo, data, RESAVE)
    assert rows == [("Synopsis", "A detective.", "From the API.", "From the curator.")]
    assert again["synopsis"] == "From the curator."
    assert stored(vertigo)[1] == "From the API."
    # Saved again, knowingly: the curator's value wins.
    assert admin_client.post(url(vertigo), again).status_code == 302
    assert stored(vertigo)[1] == "From the curator."


def test_the_second_of_two_curators_is_refused(admin_client: Client, vertigo: Movie) -> None:
    other = Client()
    other.force_login(User.objects.create_superuser("second", password="unused-password"))
    first, second = opened(admin_client, vertigo), opened(other, vertigo)
    first["year"] = "1959"
    first["genres"] = []
    assert admin_client.post(url(vertigo), first).status_code == 302
    second["synopsis"] = "A retired detective."
    rows, again = refused(other, vertigo, second, RESAVE)
    assert rows == [
        ("Synopsis", "A detective.", "A detective.", "A retired detective."),
        ("Year", "1958", "1959", "1958"),
        ("Genres", "Thriller", "(none)", "Thriller"),
    ]
    assert (again["year"], again["synopsis"], again.get("genres", [])) == (
        "1959", "A retired detective.", [],
    )  # fmt: skip
    assert other.post(url(vertigo), again).status_code == 302
    vertigo.refresh_from_db()
    assert (vertigo.year, vertigo.synopsis, list(vertigo.genres.all())) == (
        1959, "A retired detective.", [],
    )  # fmt: skip


def test_a_credit_changed_meanwhile_is_not_reverted(admin_client: Client, vertigo: Movie) -> None:
    data = opened(admin_client, vertigo)
    # Another curator renames a part on the credit's own page: the film's
    # updated_at does not move, its credits do.
    madeleine = vertigo.credits.get(character_name="Madeleine")
    madeleine.character_name = "Madeleine Elster"
    madeleine.save()
    data["credits-0-billing_order"] = "2"  # the curator moves Stewart down
    rows, again = refused(admin_client, vertigo, data, REOPEN)
    assert rows == [
        (
            "Credit: James Stewart (cast)",
            "billing order 0, as Scottie",
            "billing order 0, as Scottie",
            "billing order 2, as Scottie",
        ),
        (
            "Credit: Kim Novak (cast)",
            "billing order 1, as Madeleine",
            "billing order 1, as Madeleine Elster",
            "billing order 1, as Madeleine",
        ),
    ]
    assert stored(vertigo)[3] == [
        ("James Stewart", 0, "Scottie"),
        ("Kim Novak", 1, "Madeleine Elster"),
    ]
    # The page still carries the version first opened: saving it again is refused again.
    assert again["version"] == data["version"]
    refused(admin_client, vertigo, again, REOPEN)


def test_credits_and_genres_replaced_by_the_api_are_kept(
    admin_client: Client, admin_user: User, vertigo: Movie
) -> None:
    data = opened(admin_client, vertigo)
    Genre.objects.create(name="Mystery", slug="mystery")
    bel_geddes = Person.objects.create(name="Barbara Bel Geddes", key="barbara bel geddes")
    credits = [
        CreditIn(
            person_id=c.person_id, character_name=c.character_name, billing_order=c.billing_order
        )
        for c in vertigo.credits.all()
    ]
    credits.append(CreditIn(person_id=bel_geddes.pk, billing_order=2, character_name="Midge"))
    patch = MovieFields.model_validate({"genres": ["thriller", "mystery"], "credits": credits})
    services.update_movie(movie_id=vertigo.pk, fields=patch, user_id=admin_user.pk)
    data["title"] = "Vertigo (restored)"
    rows, _ = refused(admin_client, vertigo, data, REOPEN)
    assert rows == [
        ("Title", "Vertigo", "Vertigo", "Vertigo (restored)"),
        ("Genres", "Thriller", "Mystery, Thriller", "Thriller"),
        (
            "Credit: Barbara Bel Geddes (cast)",
            "(no such credit)",
            "billing order 2, as Midge",
            "(no such credit)",
        ),
    ]
    assert stored(vertigo)[0] == "Vertigo"
    assert [name for name, *_ in stored(vertigo)[3]] == [
        "James Stewart",
        "Kim Novak",
        "Barbara Bel Geddes",
    ]
    assert sorted(vertigo.genres.values_list("slug", flat=True)) == ["mystery", "thriller"]


def test_the_api_bumps_updated_at_when_only_relations_change(
    admin_user: User, vertigo: Movie
) -> None:
    before = Movie.objects.get(pk=vertigo.pk).updated_at
    patch = MovieFields.model_validate({"genres": []})
    services.update_movie(movie_id=vertigo.pk, fields=patch, user_id=admin_user.pk)
    assert Movie.objects.get(pk=vertigo.pk).updated_at > before


@pytest.mark.parametrize("version", [None, "", "forged", "e30:1tamper:signature"])
def test_a_form_without_a_valid_version_is_refused(
    admin_client: Client, vertigo: Movie, version: str | None
) -> None:
    data = opened(admin_client, vertigo)
    data["title"] = "Vertigo (restored)"
    if version is None:
        del data["version"]
    else:
        data["version"] = version
    response = admin_client.post(url(vertigo), data)
    assert response.status_code == 200
    assert response.context["adminform"].form.non_field_errors() == [
        "This form carries no valid version of the film: reload the page and make your "
        "changes again. Nothing was saved."
    ]
    assert stored(vertigo)[0] == "Vertigo"


@pytest.mark.parametrize("typed", ["1e-400", "-1e-999", "0.0000e-5000"])
def test_a_rating_that_would_be_stored_as_0_is_refused_as_on_the_api(
    admin_client: Client, vertigo: Movie, typed: str
) -> None:
    data = opened(admin_client, vertigo)
    data["rating"] = typed
    response = admin_client.post(url(vertigo), data)
    zero_literal = typed.startswith("0.0000")
    assert response.status_code == (302 if zero_literal else 200)
    if zero_literal:
        assert stored(vertigo)[2] == 0.0
    else:
        errors = response.context["adminform"].form.errors["rating"]
        assert errors == ["The rating is too small a number: it would be stored as 0."]
        assert stored(vertigo)[2] == 8.3
