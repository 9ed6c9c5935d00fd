"""Autocomplete choices of every row of an inline, fetched in one query.

Django's ``AutocompleteSelect`` labels its selected option with a query of its
own (``AutocompleteMixin.optgroups`` filters the field's queryset by the selected
value), and ``ModelChoiceField.to_python`` looks a submitted value up again: a
film with 60 credits cost 60 queries to show, and 60 more to validate. Here the
formset fetches the objects chosen in all its rows at once; the widget and the
field read them from there. A value that was not found goes through Django's
own code, so an unknown or deleted choice gets Django's error, and everything
else about the autocomplete (AJAX URL, permissions, empty rows) is unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, cast

from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import AutocompleteSelect
from django.core.exceptions import ValidationError
from django.db.models import ForeignKey, Model
from django.forms.models import BaseInlineFormSet, ModelChoiceIterator
from django.http import HttpRequest

from movies.admin.rows import LEAN_SELECT

# The objects chosen in one field of a formset, by the value as submitted or
# rendered (a string); called only when a row needs them.
Chosen = Callable[[], Mapping[str, Model]]
OptionGroups = list[tuple[str | None, list[dict[str, Any]], int | None]]


class PreloadedAutocompleteSelect(AutocompleteSelect):
    """An ``AutocompleteSelect`` that labels its selection from ``chosen``."""

    chosen: Chosen | None = None
    # Set here, not through a renderer: the admin's RelatedFieldWidgetWrapper
    # renders the widget it wraps with the default renderer.
    template_name = LEAN_SELECT
    # The autocomplete view's URL, resolved once per formset instead of once per
    # row (a reverse() each: a tenth of a 60-credit page's time).
    url: str | None = None

    def get_url(self) -> str:
        if self.url is None:
            self.url = super().get_url()
        return self.url

    def optgroups(
        self, name: str, value: Sequence[str], attr: dict[str, Any] | None = None
    ) -> OptionGroups:
        if self.chosen is None:
            return super().optgroups(name, value, attr)
        # Django's groups, built here: its own optgroups filters the queryset by
        # the selected values even when there are none, and compiling that
        # query (never sent) cost ~0.5 ms a row.
        options: list[dict[str, Any]] = []
        if not self.is_required and not self.allow_multiple_selected:
            options.append(self.create_option(name, "", "", False, 0))
        label = cast(ModelChoiceIterator, self.choices).field.label_from_instance
        for selected in value:
            obj = self.chosen().get(str(selected))
            if obj is not None:
                options.append(self.create_option(name, selected, label(obj), True, len(options)))
        return [(None, options, 0)]


class PreloadedModelChoiceField(forms.ModelChoiceField):  # type: ignore[type-arg]
    """A ``ModelChoiceField`` that finds a submitted object in ``chosen`` first."""

    chosen: Chosen | None = None

    def to_python(self, value: Any) -> Model | None:
        if self.chosen is not None and value not in self.empty_values:
            obj = self.chosen().get(str(value))
            if obj is not None:
                return obj
        return super().to_python(value)


class PreloadingInlineFormSet(BaseInlineFormSet):  # type: ignore[type-arg]
    """Fetches, for each preloaded field, the objects chosen in every row at once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._chosen: dict[str, dict[str, Model]] = {}
        self._urls: dict[str, str] = {}
        super().__init__(*args, **kwargs)

    def add_fields(self, form: forms.ModelForm[Any], index: int | None) -> None:
        super().add_fields(form, index)
        for name, field in form.fields.items():
            if isinstance(field, PreloadedModelChoiceField):
                field.chosen = partial(self.chosen_objects, name)
                # The admin wraps the widget in a RelatedFieldWidgetWrapper.
                widget = getattr(field.widget, "widget", field.widget)
                if isinstance(widget, PreloadedAutocompleteSelect):
                    widget.chosen = field.chosen
                    if name not in self._urls:
                        self._urls[name] = widget.get_url()
                    widget.url = self._urls[name]

    def chosen_objects(self, name: str) -> dict[str, Model]:
        """The objects chosen in field ``name`` of all rows, by value: one query."""
        if name not in self._chosen:
            self._chosen[name] = self._fetch_chosen(name)
        return self._chosen[name]

    def _fetch_chosen(self, name: str) -> dict[str, Model]:
        if not self.forms:
            return {}
        # Every row's field has the same queryset (limit_choices_to included).
        field = cast(forms.ModelChoiceField, self.forms[0].fields[name])  # type: ignore[type-arg]
        queryset = field.queryset
        if queryset is None:  # never for a model's foreign key; Django's code decides
            return {}
        opts = queryset.model._meta
        key = opts.get_field(field.to_field_name) if field.to_field_name else opts.pk
        wanted: dict[str, Any] = {}
        for form in self.forms:
            value = form[name].value()
            if value in field.empty_values:
                continue
            try:
                wanted[str(value)] = key.to_python(value)
            except ValidationError:
                continue  # not even a key: the field's own clean reports it
        if not wanted:
            return {}
        found = queryset.filter(**{f"{key.name}__in": set(wanted.values())})
        by_key = {getattr(obj, key.attname): obj for obj in found}
        return {raw: by_key[k] for raw, k in wanted.items() if k in by_key}


class PreloadedAutocompleteInline(admin.options.InlineModelAdmin):  # type: ignore[type-arg]
    """An inline whose autocomplete foreign keys fetch their choices once per formset."""

    formset = PreloadingInlineFormSet

    def formfield_for_foreignkey(
        self, db_field: ForeignKey[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> forms.ModelChoiceField | None:  # type: ignore[type-arg]
        if db_field.name in self.get_autocomplete_fields(request):
            widget = PreloadedAutocompleteSelect(
                db_field, self.admin_site, using=kwargs.get("using")
            )
            kwargs.setdefault("widget", widget)
            kwargs.setdefault("form_class", PreloadedModelChoiceField)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
