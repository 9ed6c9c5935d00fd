"""What the hot reads keep of the film-genre relation on the rows they read:
``Movie.genre_list`` (a film's genre names, alphabetical) and ``Genre.movie_count``
(how many films a genre has).

The film list then reads one table instead of a sub-select per row, and the genre
list 40 rows instead of counting every link (~2M at 1M films). Every write of the
relation keeps both in line, in its own transaction:

* ORM writes of ``Movie.genres`` (the API's services, the admin's form, tests)
  send ``m2m_changed``, on either side of the relation; a genre renamed or
  deleted sends ``pre_save``/``post_save`` and ``pre_delete``/``post_delete``, and
  so does a film deleted (its links go with it).
* Bulk writes send no signals: the importer and the generator write the names
  with the rows (:class:`GenreOrder`) and recount every genre at the end.
* Migration 0011 filled both for what was stored.

The names are ordered as the database orders ``Genre.name`` (its collation), as
the list did when it read them with ``ORDER BY``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from django.db.models import Count, F, Model, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete, pre_save

from movies.expressions import JsonTextArray
from movies.models import Genre, Movie


def refresh_names(movies: QuerySet[Any, Any]) -> int:
    """Rewrite the genre list of every film in ``movies`` from its links; returns
    how many films. Works on a migration's historical models too."""
    through = movies.model._meta.get_field("genres").remote_field.through
    links = through.objects.filter(movie_id=OuterRef("pk")).order_by("genre__name")
    return movies.update(genre_list=JsonTextArray(links.values(value=F("genre__name"))))


def recount(genres: QuerySet[Any, Any]) -> int:
    """Recount the films of every genre in ``genres`` (an index-only count of its
    links); returns how many genres. Works on historical models too."""
    through = genres.model._meta.get_field("movies").through
    counted = (
        through.objects.filter(genre_id=OuterRef("pk"))
        .order_by()
        .values("genre_id")
        .annotate(n=Count("*"))
        .values("n")
    )
    return genres.update(movie_count=Coalesce(Subquery(counted), 0))


class GenreOrder:
    """The genres' names by id and their rank in the database's order, for writers
    that build rows themselves (the importer, the generator)."""

    def __init__(self) -> None:
        ordered = Genre.objects.order_by("name").values_list("id", "name")
        self._ranked = {pk: (rank, name) for rank, (pk, name) in enumerate(ordered)}

    def names(self, genre_ids: Iterable[int]) -> list[str]:
        return [self._ranked[pk][1] for pk in sorted(genre_ids, key=lambda pk: self._ranked[pk])]

    def text(self, genre_ids: Iterable[int]) -> str:
        """The names as the column stores them (for COPY rows)."""
        return orjson.dumps(self.names(genre_ids)).decode()


def _links_changed(
    sender: type[Model], instance: Model, action: str, reverse: bool, pk_set: set[int] | None,
    using: str, **_: Any,
) -> None:  # fmt: skip
    genres = Genre.objects.using(using)
    movies = Movie.objects.using(using)
    if action == "pre_clear":
        # The other side's ids, for the signal after the clear, when the links are gone.
        other = instance.genres if isinstance(instance, Movie) else instance.movies  # type: ignore[attr-defined]
        instance._cleared = set(other.values_list("pk", flat=True))  # type: ignore[attr-defined]
        return
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    touched = instance._cleared if action == "post_clear" else (pk_set or set())  # type: ignore[attr-defined]
    if isinstance(instance, Movie):
        recount(genres.filter(pk__in=touched))
        films = movies.filter(pk=instance.pk)
        refresh_names(films)
        # The caller's instance too: a later save() of it writes every field.
        instance.genre_list = films.values_list("genre_list", flat=True).get()
    else:
        recount(genres.filter(pk=instance.pk))
        refresh_names(movies.filter(pk__in=touched))


def _genre_saving(sender: type[Genre], instance: Genre, raw: bool, using: str, **_: Any) -> None:
    old = Genre.objects.using(using).filter(pk=instance.pk).values_list("name", flat=True).first()
    instance._renamed = old is not None and old != instance.name  # type: ignore[attr-defined]


def _genre_saved(sender: type[Genre], instance: Genre, using: str, **_: Any) -> None:
    if getattr(instance, "_renamed", False):
        refresh_names(Movie.objects.using(using).filter(genres=instance))


def _genre_deleting(sender: type[Genre], instance: Genre, using: str, **_: Any) -> None:
    films = Movie.objects.using(using).filter(genres=instance).values_list("pk", flat=True)
    instance._films = list(films)  # type: ignore[attr-defined]


def _genre_deleted(sender: type[Genre], instance: Genre, using: str, **_: Any) -> None:
    refresh_names(Movie.objects.using(using).filter(pk__in=instance._films))  # type: ignore[attr-defined]


def _movie_deleting(sender: type[Movie], instance: Movie, using: str, **_: Any) -> None:
    instance._genre_ids = list(instance.genres.values_list("pk", flat=True))  # type: ignore[attr-defined]


def _movie_deleted(sender: type[Movie], instance: Movie, using: str, **_: Any) -> None:
    recount(Genre.objects.using(using).filter(pk__in=instance._genre_ids))  # type: ignore[attr-defined]


def install() -> None:
    uid = "movies.genre_copies"
    m2m_changed.connect(_links_changed, sender=Movie.genres.through, dispatch_uid=uid)
    pre_save.connect(_genre_saving, sender=Genre, dispatch_uid=f"{uid}.saving")
    post_save.connect(_genre_saved, sender=Genre, dispatch_uid=f"{uid}.saved")
    pre_delete.connect(_genre_deleting, sender=Genre, dispatch_uid=f"{uid}.deleting")
    post_delete.connect(_genre_deleted, sender=Genre, dispatch_uid=f"{uid}.deleted")
    pre_delete.connect(_movie_deleting, sender=Movie, dispatch_uid=f"{uid}.movie_deleting")
    post_delete.connect(_movie_deleted, sender=Movie, dispatch_uid=f"{uid}.movie_deleted")
