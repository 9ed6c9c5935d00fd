"""Inline rows rendered with fewer templates, for forms with many rows.

A film's change page renders a row of widgets per credit: 60 credits are ~450
widgets. Django renders each text, number, hidden or checkbox input through
three templates (``text.html`` includes ``input.html``, which includes
``attrs.html``), each option of a select through two more, and each field's
empty error list through one: ~1,900 template renders, the bulk of the page's
time. ``RowRenderer`` renders an input with one template and a select, with
its options, with one, writing attributes with one filter call
(movies/templatetags/widget_attrs.py) instead of a loop of template nodes;
``QuietErrorList`` renders nothing when it is empty, as Django's template
would. The HTML is the same as Django's (tests/test_admin_rows.py compares it).
"""

from __future__ import annotations

from typing import Any

from django.forms.models import BaseInlineFormSet
from django.forms.renderers import DjangoTemplates
from django.forms.utils import ErrorList
from django.template.backends.django import Template
from django.utils.safestring import SafeString, mark_safe

_INPUT = "movies/rows/input.html"
# Select's template with select_option.html's markup inlined.
LEAN_SELECT = "movies/rows/select.html"
# Django's widget templates that only include input.html, and Select's own.
LEAN_TEMPLATES = {
    "django/forms/widgets/text.html": _INPUT,
    "django/forms/widgets/number.html": _INPUT,
    "django/forms/widgets/hidden.html": _INPUT,
    "django/forms/widgets/checkbox.html": _INPUT,
    "django/forms/widgets/input.html": _INPUT,
    "django/forms/widgets/select.html": LEAN_SELECT,
    # The admin's "change/add/view related" links, written without the
    # {% spaceless %} block that Django's version strips at every render.
    "admin/widgets/related_widget_wrapper.html": "movies/rows/related_widget_wrapper.html",
}


class RowRenderer(DjangoTemplates):
    """Django's form renderer, with the widget templates of LEAN_TEMPLATES swapped
    for single templates that produce the same HTML."""

    def get_template(self, template_name: str) -> Template:
        return super().get_template(LEAN_TEMPLATES.get(template_name, template_name))


class QuietErrorList(ErrorList):
    """An ``ErrorList`` that skips its template when it has no errors (the
    admin's tabular inline prints every field's errors, nearly always none)."""

    def render(
        self, template_name: str | None = None, context: Any = None, renderer: Any = None
    ) -> SafeString:
        if not self.data:
            return mark_safe("")
        return super().render(template_name, context, renderer)


# One renderer for every formset, as Django keeps one default renderer: its
# template engine (and its cached templates) is built on first use.
ROW_RENDERER = RowRenderer()


class LeanRowsFormSet(BaseInlineFormSet):  # type: ignore[type-arg]
    """An inline formset whose rows render through ``ROW_RENDERER`` and ``QuietErrorList``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("error_class", QuietErrorList)
        # Not a class attribute: formset_factory sets one, the default renderer,
        # on the class it makes; the formset reads this one in __init__.
        self.renderer = ROW_RENDERER
        super().__init__(*args, **kwargs)
