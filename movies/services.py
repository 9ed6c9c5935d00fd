"""Every write of the catalogue through the API: create, update, delete a film.

Each runs in one transaction, so a write that fails changes nothing. Updates and
deletes lock the film's row first and compare ``If-Match`` with the ETag of its
current detail body, the bytes a client last read, so two writers never
overwrite each other silently. Each write is logged in the admin history of the
film (``LogEntry``), attributed to the token's user.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.db import transaction
from django.utils.text import capfirst

from movies import changes, selectors
from movies.models import Credit, Genre, Movie, Person
from movies.problems import Problem, not_found
from movies.rendering import dumps, etag
from movies.schemas import CreditIn, MovieCreate, MovieFields
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
    *, movie_id: int, fields: MovieFields, user_id: int, if_match: str | None = None
) -> MovieDetail:
    """Change the fields given in the body; returns the film's new detail body.

    Raises 404 for an unknown film, 412 when ``if_match`` is stale, 422 for
    unknown genres or people.
    """
    with transaction.atomic():
        movie = _locked(movie_id, if_match)
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


def delete_movie(*, movie_id: int, user_id: int, if_match: str | None = None) -> None:
    """Delete a film and its credits (404 if unknown, 412 if ``if_match`` is stale)."""
    with transaction.atomic():
        movie = _locked(movie_id, if_match)
        # Logged first: the entry keeps the film's id and title after it is gone.
        LogEntry.objects.log_actions(user_id, [movie], DELETION)
        movie.delete()


def _locked(movie_id: int, if_match: str | None) -> Movie:
    # select_for_update makes the If-Match comparison and the write one step:
    # a concurrent writer waits here and then compares against the new ETag.
    movie = Movie.objects.select_for_update().filter(pk=movie_id).first()
    if movie is None:
        raise not_found("Movie")
    if if_match is not None and not if_match_allows(if_match, _current_etag(movie_id)):
        raise Problem(
            412,
            "The film has changed since it was read: If-Match does not match its "
            "current ETag. Read it again, then retry.",
        )
    return movie


def _current_etag(movie_id: int) -> str:
    return etag(dumps(selectors.get_movie(movie_id)))


def if_match_allows(header: str, current: str) -> bool:
    """``If-Match`` against a list of tags, or ``*``; ``W/"x"`` counts as ``"x"``."""
    if header.strip() == "*":
        return True
    # RFC 9110 asks for the strong comparison here, where a weak tag never matches.
    # We issue only strong tags, each the digest of the identity bytes of one
    # version; a W/ on one was added on the way, by nginx (or any gzipping proxy)
    # saying it compressed those same bytes. The opaque part still names exactly
    # that version, so accepting it keeps what If-Match is for (no lost update)
    # and lets a client that read through the shipped nginx with gzip write back.
    return any(tag.strip().removeprefix("W/") == current for tag in header.split(","))


def _detail(movie_id: int) -> MovieDetail:
    movie = selectors.get_movie(movie_id)
    if movie is None:  # pragma: no cover - we hold the row's lock
        raise not_found("Movie")
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
        raise Problem(422, f"Unknown genre(s): {names}.", errors=errors)
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
    raise Problem(422, f"Unknown person id(s): {ids}.", errors=errors)


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
