"""The film a curator saw, carried in the change form, so a stale save is refused.

The change form holds a hidden ``version``: a signed snapshot of the film as the
page showed it (its editable fields, genres and credits). On save, with the
film's row locked, the stored film is compared with that snapshot; if anything
differs (an API ``PATCH``, another curator's save, a credit edited on its own
page), nothing is written and the page shows, field by field, the value the
curator started from, the value stored now and the curator's own, as a merge
conflict would.

Values are compared, not ``updated_at``: a credit saved on its own page, or a
save that changed nothing, leaves the film's timestamp as it is or moves it
without changing anything the form would overwrite.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

from django import forms
from django.core import signing
from django.core.serializers.json import DjangoJSONEncoder
from django.db import router
from django.forms.formsets import BaseFormSet
from django.http import QueryDict

from movies.json_check import lost_number
from movies.models import Credit, Genre, Movie, Person
from movies.services import SCALAR_FIELDS

# The film's own columns that writers change (the API's and the change form's);
# genres and credits are compared apart.
FORM_FIELDS = SCALAR_FIELDS
CREDIT_FIELDS = ("person", "role", "billing_order", "character_name")
_SALT = "movies.admin.versions"

# A credit's row in a snapshot: [credit id, person id, role, billing order, character].
CreditRow = list[Any]


def _plain(value: Any) -> Any:
    """``value`` as JSON gives it back: dates as ISO strings, numbers as numbers."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def snapshot(movie: Movie, *, using: str | None = None) -> dict[str, Any]:
    """What the change form of ``movie`` shows and would write back.

    Genres come from the film's prefetched genres when it has them; the credits
    cost one query.
    """
    credits = Credit.objects.using(using or movie._state.db).filter(movie=movie)
    rows = credits.order_by("id").values_list("id", "person_id", *CREDIT_FIELDS[1:])
    return {
        "fields": {name: _plain(getattr(movie, name)) for name in FORM_FIELDS},
        "genres": sorted(genre.pk for genre in movie.genres.all()),
        "credits": [list(row) for row in rows],
    }


def token(state: dict[str, Any]) -> str:
    return signing.dumps(state, salt=_SALT, compress=True)


def version_of(movie_id: int) -> str:
    """The version that the change page of a film, opened now, would carry."""
    return token(snapshot(Movie.objects.get(pk=movie_id)))


def read_token(value: str) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = signing.loads(value, salt=_SALT)
    except signing.BadSignature:
        return None
    return state


@dataclass
class Conflict:
    """The film as the curator's page showed it (``base``) and as stored now."""

    base: dict[str, Any]
    current: dict[str, Any]
    # Whether the form was carried over to the stored film and can be saved again.
    resumable: bool = False


class VersionedMovieForm(forms.ModelForm):  # type: ignore[type-arg]
    """A film's admin form that refuses to save over a film changed since it was shown."""

    version = forms.CharField(widget=forms.HiddenInput, required=False)
    conflict: Conflict | None = None
    submitted: Any  # the posted data, when the form was carried over (_rebase)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields["version"].required = True
            self.fields["version"].initial = token(snapshot(self.instance))

    def clean_rating(self) -> float | None:
        # Django's FloatField reads 1e-400 as 0.0: refused as on the API (one rule).
        rating: float | None = self.cleaned_data.get("rating")
        if rating == 0.0:
            reason = lost_number(str(self.data.get(self.add_prefix("rating"), "0")))
            if reason is not None:
                raise forms.ValidationError(f"The rating {reason}.", code="lost_number")
        return rating

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        if self.instance.pk is None:
            return cleaned
        base = read_token(self.data.get(self.add_prefix("version"), ""))
        if base is None:
            raise forms.ValidationError(
                "This form carries no valid version of the film: reload the page and "
                "make your changes again. Nothing was saved.",
                code="no_version",
            )
        # Locked until the admin's transaction ends, so no writer slips in between
        # this comparison and the save (the API's services lock the same row).
        using = router.db_for_write(Movie)
        stored = Movie.objects.using(using).select_for_update().get(pk=self.instance.pk)
        current = snapshot(stored, using=using)
        if current != base:
            self.conflict = Conflict(base, current)
            # Credit rows are posted by id: a form whose rows changed meanwhile
            # cannot be carried over, only opened again.
            if current["credits"] != base["credits"]:
                raise forms.ValidationError(STALE_REOPEN, code="stale")
            self._rebase(base, current)
            self.conflict.resumable = True
            raise forms.ValidationError(STALE_RESAVE, code="stale")
        return cleaned

    def _rebase(self, base: dict[str, Any], current: dict[str, Any]) -> None:
        """Carry the form over to the stored film, as a merge would: each value the
        curator left as it was shows as stored now, each one they changed stays
        theirs, and the form carries the stored film's version, so saving it again
        writes exactly what the page then shows."""
        self.submitted = self.data
        data = cast(QueryDict, self.data).copy()  # the admin's form holds request.POST
        for name in FORM_FIELDS:
            started, now = base["fields"][name], current["fields"][name]
            if now != started and _yours(self, name) == started:
                data[self.add_prefix(name)] = "" if now is None else str(now)
        if current["genres"] != base["genres"] and _your_genres(self) == base["genres"]:
            data.setlist(self.add_prefix("genres"), [str(pk) for pk in current["genres"]])
        data[self.add_prefix("version")] = token(current)
        self.data = data


STALE_REOPEN = (
    "Someone changed this film since you opened it. Nothing was saved. The table shows "
    "what changed: open the film again to see it as stored now, then make your changes again."
)
STALE_RESAVE = (
    "Someone changed this film since you opened it. Nothing was saved. The table shows "
    "what changed. The form now holds the stored values where you had changed nothing and "
    "your own values elsewhere: check them, then save again."
)


def conflict_rows(
    form: VersionedMovieForm, credits: BaseFormSet | None
) -> list[tuple[str, str, str, str]]:
    """(what, started from, stored now, yours) for each value that differs."""
    conflict = form.conflict
    if conflict is None:
        return []
    base, current = conflict.base, conflict.current
    rows = []
    for name in [name for name in form.fields if name in FORM_FIELDS]:  # in page order
        started, now = base["fields"].get(name), current["fields"].get(name)
        yours = _yours(form, name)
        if len({_shown(started), _shown(now), _shown(yours)}) > 1:
            label = str(Movie._meta.get_field(name).verbose_name).capitalize()  # type: ignore[union-attr]
            rows.append((label, _shown(started), _shown(now), _shown(yours)))
    rows += _genre_rows(form, base["genres"], current["genres"])
    rows += _credit_rows(base["credits"], current["credits"], _your_credits(credits))
    if not rows:  # the same values, in rows saved again since (new credit ids)
        rows.append(("Credits", "as you opened them", "saved again since", "as you opened them"))
    return rows


def _submitted(form: forms.BaseForm) -> Any:
    """The data the curator posted (``_rebase`` may have carried the form's over)."""
    return getattr(form, "submitted", form.data)


def _yours(form: forms.BaseForm, name: str) -> Any:
    if hasattr(form, "cleaned_data") and name in form.cleaned_data:
        return _plain(form.cleaned_data[name])
    return _submitted(form).get(form.add_prefix(name))


def _shown(value: Any) -> str:
    return "(empty)" if value in (None, "") else str(value)


def _your_genres(form: forms.BaseForm) -> list[int]:
    submitted = _submitted(form).getlist(form.add_prefix("genres"))
    return sorted({int(pk) for pk in submitted if str(pk).isdigit()})


def _genre_rows(form: forms.BaseForm, base: list[int], current: list[int]) -> list[Any]:
    yours = _your_genres(form)
    if base == current == yours:
        return []
    names = dict(Genre.objects.filter(pk__in={*base, *current, *yours}).values_list("pk", "name"))

    def shown(pks: list[int]) -> str:
        return ", ".join(sorted(names.get(pk, f"#{pk}") for pk in pks)) or "(none)"

    return [("Genres", shown(base), shown(current), shown(yours))]


def _your_credits(formset: BaseFormSet | None) -> list[CreditRow]:
    """The credits as the curator's form would leave them."""
    if formset is None:
        return []
    rows = []
    for row in formset.forms:
        if not row.has_changed() and row.instance.pk is None:
            continue  # a blank extra row
        if formset.can_delete and row["DELETE"].value():
            continue
        values = [row[name].value() for name in CREDIT_FIELDS]
        rows.append([row.instance.pk, *values])
    return rows


def _credit_rows(base: list[Any], current: list[Any], yours: list[Any]) -> list[Any]:
    """One row per credited (person, role), the film's natural key of a credit."""

    def keyed(rows: list[CreditRow]) -> dict[tuple[str, str], str]:
        return {(str(r[1]), str(r[2])): f"billing order {r[3]}, as {r[4] or '-'}" for r in rows}

    started, now, mine = keyed(base), keyed(current), keyed(yours)
    keys = {*started, *now, *mine}
    person_ids = {int(person) for person, _ in keys if person.isdigit()}
    names = dict(Person.objects.filter(pk__in=person_ids).values_list("pk", "name"))

    def person(key: tuple[str, str]) -> str:
        return names.get(int(key[0]), f"#{key[0]}") if key[0].isdigit() else key[0]

    rows = []
    for key in sorted(keys, key=lambda key: (person(key), key[1])):
        values = [side.get(key, "(no such credit)") for side in (started, now, mine)]
        if len(set(values)) > 1:
            rows.append((f"Credit: {person(key)} ({key[1]})", *values))
    return rows
