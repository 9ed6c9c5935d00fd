"""Every write of the catalogue through the API: create, update, delete a film.

Each runs in one transaction, so a write that fails changes nothing. Updates and
deletes lock the film's row first and compare the versions the writer read (the
caller's ``expected``; aioapi takes them from ``If-Match``) with the version the
row carries (``movies.models.row_version``), so two writers never overwrite each
other silently and nothing is rendered to find out. Each write is logged in the
admin history of the film (``LogEntry``), attributed to the token's user.
Refusals are domain errors (movies.errors): what status each is, is
movies.problems' business.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.db import transaction
from django.utils.text import capfirst

from movies import changes, selectors
from movies.bodies import CreditIn, MovieCreate, MovieFields
from movies.errors import Invalid, NotFound, VersionConflict
from movies.models import Credit, Genre, Movie, Person, row_version
from movies.shapes import MovieDetail

# Body fields stored as columns of Movie; genres and credits are relations.
SCALAR_FIELDS = (
    "title", "year", "release_date", "runtime_minutes", "rating", "synopsis",
    "wikipedia_slug", "poster_url",
)  # fmt: skip


def create_movie(*, fields: MovieCreate, user_id: int) -> MovieDetail:
    """Add a film with its genres and credits; returns its detail body."""
    with transaction.atomic():
        genres = _genres(fields.genres or [])
        _check_people(fields.credits or [])
        values = {name: getattr(fields, name) for name in SCALAR_FIELDS}
        movie = Movie(**{name: value for name, value in values.items() if value is not None})
        movie.save()
        movie.genres.set(genres)
        _replace_credits(movie, fields.credits or [])
        LogEntry.objects.log_actions(user_id, [movie], ADDITION, [{"added": {}}])
        return _detail(movie.pk)


def update_movie(
    *,
    movie_id: int,
    fields: MovieFields,
    user_id: int,
    expected: frozenset[int] | None = None,
) -> MovieDetail:
    """Change the fields given in the body; returns the film's new detail body.

    ``expected``: the versions the writer read, one of which must be current
    (``None``: no condition). Raises :class:`NotFound`, :class:`VersionConflict`,
    or :class:`Invalid` for unknown genres or people.
    """
    with transaction.atomic():
        movie = _locked(movie_id, expected)
        given = fields.model_fields_set
        changed: list[str] = []
        for name in SCALAR_FIELDS:
            value = getattr(fields, name)
            if name in given and getattr(movie, name) != value:
                setattr(movie, name, value)
                changed.append(name)
        if "genres" in given:
            genres = _genres(fields.genres)
            if {genre.pk for genre in genres} != set(movie.genres.values_list("pk", flat=True)):
                movie.genres.set(genres)
                changed.append("genres")
        if "credits" in given:
            _check_people(fields.credits)
            if _credit_rows(fields.credits) != _current_credit_rows(movie):
                _replace_credits(movie, fields.credits)
                changed.append("credits")
        if changed:
            # Saved even when only relations changed, so updated_at (and the
            # ETag) move on with every change.
            movie.save()
            message = [{"changed": {"fields": [_label(name) for name in changed]}}]
            LogEntry.objects.log_actions(user_id, [movie], CHANGE, message)
        return _detail(movie_id)


def delete_movie(*, movie_id: int, user_id: int, expected: frozenset[int] | None = None) -> None:
    """Delete a film and its credits (:class:`NotFound`; :class:`VersionConflict` when
    none of the ``expected`` versions is current)."""
    with transaction.atomic():
        movie = _locked(movie_id, expected)
        # Logged first: the entry keeps the film's id and title after it is gone.
        LogEntry.objects.log_actions(user_id, [movie], DELETION)
        movie.delete()


def _locked(movie_id: int, expected: frozenset[int] | None) -> Movie:
    # select_for_update makes the version check and the write one step: a
    # concurrent writer waits here and then compares against the new version.
    movie = Movie.objects.select_for_update().filter(pk=movie_id).first()
    if movie is None:
        raise NotFound("Movie")
    if expected is not None and row_version(movie.updated_at) not in expected:
        raise VersionConflict("The film has changed since it was read")
    return movie


def _detail(movie_id: int) -> MovieDetail:
    movie = selectors.get_movie(movie_id)
    if movie is None:  # pragma: no cover - we hold the row's lock
        raise NotFound("Movie")
    return movie


def _genres(slugs: Iterable[str]) -> list[Genre]:
    wanted = list(dict.fromkeys(slugs))
    genres = list(Genre.objects.filter(slug__in=wanted))
    unknown = set(wanted) - {genre.slug for genre in genres}
    if unknown:
        errors = [
            {"name": f"genres.{index}", "reason": f"no genre has the slug {slug!r}"}
            for index, slug in enumerate(wanted)
            if slug in unknown
        ]
        names = ", ".join(slug for slug in wanted if slug in unknown)
        raise Invalid(f"Unknown genre(s): {names}.", errors=errors)
    return genres


def _check_people(credits: list[CreditIn]) -> None:
    wanted = {credit.person_id for credit in credits}
    known = set(Person.objects.filter(pk__in=wanted).values_list("pk", flat=True))
    if wanted <= known:
        return
    errors = [
        {"name": f"credits.{index}.person_id", "reason": f"no person has the id {credit.person_id}"}
        for index, credit in enumerate(credits)
        if credit.person_id not in known
    ]
    ids = ", ".join(str(person_id) for person_id in sorted(wanted - known))
    raise Invalid(f"Unknown person id(s): {ids}.", errors=errors)


CreditRow = tuple[int, str, int, str]


def _credit_rows(credits: list[CreditIn]) -> set[CreditRow]:
    return {(c.person_id, c.role, c.billing_order, c.character_name) for c in credits}


def _current_credit_rows(movie: Movie) -> set[CreditRow]:
    rows = movie.credits.values_list("person_id", "role", "billing_order", "character_name")
    return set(rows)


def _replace_credits(movie: Movie, credits: list[CreditIn]) -> None:
    movie.credits.all().delete()
    Credit.objects.bulk_create(
        Credit(
            movie=movie,
            person_id=credit.person_id,
            role=credit.role,
            billing_order=credit.billing_order,
            character_name=credit.character_name,
        )
        for credit in credits
    )
    # bulk_create sends no post_save: announce the credits (delivered on commit).
    changes.credits_replaced(movie.pk, [credit.person_id for credit in credits])


def _label(name: str) -> str:
    # The admin's history shows field labels ("Changed Title and Year."); the
    # reverse relation "credits" has no verbose name of its own.
    field = Movie._meta.get_field(name)
    return str(capfirst(getattr(field, "verbose_name", name)))
