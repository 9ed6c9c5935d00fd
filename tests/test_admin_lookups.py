"""Changelist URLs a curator can type are a page or a 400, never a 500
(movies/admin/lookups.py), on every registered changelist."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from movies.admin.lookups import NUL_REFUSED, OfferedLookupsOnly
from movies.models import ApiToken, Credit, Genre, Movie, Person

pytestmark = pytest.mark.django_db

# Each changelist, with a text field of its model (a lookup no filter offers)
# and the filters it does offer, each with a value.
CHANGELISTS: dict[str, tuple[str, dict[str, str]]] = {
    "movies_movie": ("title", {"genre": "drama", "decade": "1950"}),
    "movies_person": ("name", {}),
    "movies_genre": ("name", {}),
    "movies_credit": ("character_name", {"role__exact": "cast"}),
    "movies_apitoken": ("name", {"revoked_at__isempty": "1"}),
    "auth_user": ("username", {"is_staff__exact": "1", "groups__id__exact": "1"}),
    "auth_group": ("name", {}),
    "axes_accessattempt": ("username", {"attempt_time__gte": "2000-01-01 00:00:00+00:00"}),
    "axes_accesslog": ("username", {"logout_time__isnull": "True"}),
    "axes_accessfailurelog": ("username", {"locked_out__exact": "1"}),
}


@pytest.fixture(autouse=True)
def static_root(settings: Any, tmp_path: Path) -> None:
    settings.STATIC_ROOT = tmp_path


@pytest.fixture
def catalogue() -> None:
    drama = Genre.objects.create(name="Drama", slug="drama")
    movie = Movie.objects.create(title="Vertigo", year=1958)
    movie.genres.set([drama])
    stewart = Person.objects.create(name="James Stewart", key="james stewart")
    Credit.objects.create(movie=movie, person=stewart, character_name="Scottie")
    Group.objects.create(name="Curators")  # the user list offers its groups filter only then


def changelist(name: str) -> str:
    return reverse(f"admin:{name}_changelist")


def test_every_registered_changelist_checks_its_lookups() -> None:
    registered = {
        f"{model._meta.app_label}_{model._meta.model_name}": model_admin
        for model, model_admin in admin.site._registry.items()
    }
    assert set(registered) == set(CHANGELISTS)
    assert all(isinstance(m, OfferedLookupsOnly) for m in registered.values())


@pytest.mark.parametrize("name", CHANGELISTS)
def test_the_offered_filters_still_filter(admin_client: Client, catalogue: None, name: str) -> None:
    _, offered = CHANGELISTS[name]
    for parameter, value in offered.items():
        response = admin_client.get(changelist(name), {parameter: value})
        assert response.status_code == 200, parameter
        assert response.context["cl"].has_active_filters


@pytest.mark.parametrize("name", CHANGELISTS)
@pytest.mark.parametrize(
    "lookup",
    ["{field}__regex", "{field}__iregex", "{field}", "id__in"],
)
@pytest.mark.parametrize("value", ["(", "1,2"])
def test_a_lookup_no_filter_offers_is_a_400(
    admin_client: Client, catalogue: None, name: str, lookup: str, value: str
) -> None:
    field, _ = CHANGELISTS[name]
    response = admin_client.get(changelist(name), {lookup.format(field=field): value})
    assert response.status_code == 400


@pytest.mark.parametrize("name", CHANGELISTS)
def test_a_nul_in_any_query_parameter_is_a_400(
    admin_client: Client, catalogue: None, name: str
) -> None:
    _, offered = CHANGELISTS[name]
    queries = [{"q": "a\x00b"}, {"o": "1\x00"}, {"p": "\x00"}, {"\x00": "1"}]
    queries += [{parameter: f"{value}\x00"} for parameter, value in offered.items()]
    for query in queries:
        response = admin_client.get(changelist(name), query)
        assert response.status_code == 400, query
        assert response.content.decode() == NUL_REFUSED


@pytest.mark.parametrize(
    ("model", "field"),
    [("credit", "person"), ("credit", "movie"), ("movie", "genres")],
)
def test_an_autocomplete_term_with_a_nul_is_a_400(
    admin_client: Client, catalogue: None, model: str, field: str
) -> None:
    query = {"app_label": "movies", "model_name": model, "field_name": field}
    assert (
        admin_client.get(reverse("admin:autocomplete"), {**query, "term": "ste"}).status_code == 200
    )
    response = admin_client.get(reverse("admin:autocomplete"), {**query, "term": "st\x00e"})
    assert response.status_code == 400
    assert response.content.decode() == NUL_REFUSED


@pytest.mark.parametrize(
    ("name", "query"),
    [
        ("movies_movie", {"decade": "1955"}),
        ("movies_movie", {"p": "abc"}),
        ("movies_movie", {"p": "99999999999999999999999"}),
        ("movies_credit", {"role__exact": "nobody"}),
        ("movies_apitoken", {"revoked_at__isempty": "maybe"}),
        ("auth_user", {"is_staff__exact": "maybe"}),
        ("auth_user", {"groups__id__exact": "x"}),
        ("auth_user", {"groups__id__exact": "99999999999999999999999"}),
    ],
)
def test_a_bad_value_of_an_offered_filter_is_a_page(
    admin_client: Client, catalogue: None, name: str, query: dict[str, str]
) -> None:
    response = admin_client.get(changelist(name), query)
    # A list (no match), or Django's "invalid filter" redirect to ?e=1.
    assert response.status_code in (200, 302), response.status_code
    if response.status_code == 302:
        assert response["Location"].endswith("?e=1")
        assert admin_client.get(response["Location"]).status_code == 200


def test_unchanged_admin_urls_outside_the_query_are_not_affected(
    admin_client: Client, catalogue: None
) -> None:
    movie = Movie.objects.get()
    response = admin_client.get(reverse("admin:movies_movie_change", args=[movie.pk]))
    assert response.status_code == 200
    token_url = reverse("admin:movies_apitoken_changelist")
    assert admin_client.get(token_url).status_code == 200
    assert not ApiToken.objects.exists()
