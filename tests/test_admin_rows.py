"""Lean rendering of inline rows (movies.admin.rows): Django's HTML, fewer templates."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils.safestring import mark_safe

from movies.admin import preload, rows
from movies.models import Credit, Movie
from movies.templatetags.widget_attrs import html_attrs
from tests.test_admin import add_cast, change_form, person, static_root

pytestmark = pytest.mark.django_db
__all__ = ["static_root"]  # the fixture, used here too

CSRF = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')


@pytest.fixture
def ensemble() -> Movie:
    """A film of 30 credits, one with a character name HTML must escape."""
    movie = Movie.objects.create(title="Ensemble", year=1950)
    add_cast(movie, 29)
    Credit.objects.create(
        movie=movie,
        person=person('Ann "Annie" <Lee>'),
        role=Credit.Role.DIRECTOR,
        billing_order=29,
        character_name='Bob & "Rob" <Roberts>',
    )
    return movie


def stock_rendering(monkeypatch: pytest.MonkeyPatch) -> None:
    """Render the rows with Django's own widget templates."""
    monkeypatch.setattr(rows, "LEAN_TEMPLATES", {})
    monkeypatch.setattr(
        preload.PreloadedAutocompleteSelect, "template_name", "django/forms/widgets/select.html"
    )
    monkeypatch.setattr(rows.QuietErrorList, "render", rows.ErrorList.render)


def page(client: Client, movie: Movie, data: dict[str, Any] | None = None) -> tuple[str, int]:
    """The change page of ``movie`` (re-rendered with ``data``'s errors if given)
    and the number of templates it rendered."""
    url = reverse("admin:movies_movie_change", args=[movie.pk])
    response = client.get(url) if data is None else client.post(url, data)
    assert response.status_code == 200
    return CSRF.sub("", response.content.decode()), len(response.templates)


def unsigned(html: str) -> str:
    return re.sub(r":[0-9A-Za-z]{6}:[0-9A-Za-z_-]{43}\"", ':"', html)


def test_change_page_html_is_djangos(
    admin_client: Client, ensemble: Movie, monkeypatch: pytest.MonkeyPatch
) -> None:
    lean, lean_templates = page(admin_client, ensemble)
    stock_rendering(monkeypatch)
    stock, stock_templates = page(admin_client, ensemble)
    # The form's signed version snapshot carries the second it was signed at, and the
    # two renders may straddle a second: compare it without its timestamp and signature.
    assert unsigned(lean) == unsigned(stock)
    assert "Bob &amp; &quot;Rob&quot; &lt;Roberts&gt;" in lean
    # Django's templates: ~30 a row; these: 8 (5 inputs, 2 selects, the links).
    assert stock_templates - lean_templates > 20 * 30


def test_rejected_rows_show_their_errors_as_django_does(
    admin_client: Client, ensemble: Movie, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = change_form(ensemble, **{"credits-0-person": "999999", "credits-1-billing_order": "-1"})
    lean, _ = page(admin_client, ensemble, data)
    stock_rendering(monkeypatch)
    stock, _ = page(admin_client, ensemble, data)
    assert lean == stock
    assert lean.count('<ul class="errorlist"') == 2


def test_templates_per_credit_row_stay_few(admin_client: Client) -> None:
    movie = Movie.objects.create(title="Ensemble", year=1950)
    add_cast(movie, 5)
    _, few = page(admin_client, movie)
    add_cast(movie, 25)
    _, many = page(admin_client, movie)
    # Two inputs hidden (id, film), billing order, character, delete; role and
    # person selects; the person's related links.
    assert many - few == 8 * 25


def test_html_attrs_writes_attributes_as_djangos_template() -> None:
    attrs = {
        "id": "id_x",
        "required": True,
        "disabled": False,
        "maxlength": 200,
        "title": 'a "b" <c> & d',
        "data-safe": mark_safe("<b>"),
        "data-none": None,
    }
    assert html_attrs(attrs) == (
        ' id="id_x" required maxlength="200" title="a &quot;b&quot; &lt;c&gt; &amp; d"'
        ' data-safe="<b>" data-none="None"'
    )
