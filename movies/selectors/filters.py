"""What the film list and the ranked search share: the list's columns, its
filters, and each film's genre names (movies.selectors.films and .ranked)."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.models import Exists, ExpressionWrapper, F, OuterRef, QuerySet, Subquery

from movies.expressions import ListField
from movies.models import Credit, Genre, Movie
from movies.prepared import Param

LIST_FIELDS = (
    "id", "title", "year", "release_date", "runtime_minutes", "rating", "poster_url",
    "updated_at",
)  # fmt: skip
# The list filters, in the order they are applied, and the field each value is
# compared with (what a Param binds it as).
MOVIE_FILTERS = ("genre", "person", "year", "year_min", "year_max", "q")
_FILTER_FIELDS = {
    "genre": Genre._meta.get_field("slug"),
    "person": Credit._meta.get_field("person").target_field,
    "year": Movie._meta.get_field("year"),
    "year_min": Movie._meta.get_field("year"),
    "year_max": Movie._meta.get_field("year"),
    "q": Movie._meta.get_field("title"),
}


def filter_movies(movies: QuerySet[Movie], filters: dict[str, Any]) -> QuerySet[Movie]:
    """``movies`` narrowed by every filter given: a value, or a Param standing for one."""
    if "genre" in filters:
        # The genre's id found once (an InitPlan), not joined for every link of
        # every film tried: one index probe per film, half the buffers.
        genre = Subquery(Genre.objects.filter(slug=filters["genre"]).values("id"))
        in_genre = Movie.genres.through.objects.filter(movie_id=OuterRef("pk"), genre_id=genre)
        movies = movies.filter(Exists(in_genre))
    if "person" in filters:
        credited = Credit.objects.filter(movie_id=OuterRef("pk"), person_id=filters["person"])
        movies = movies.filter(Exists(credited))
    if "year" in filters:
        movies = movies.filter(year=filters["year"])
    if "year_min" in filters:
        movies = movies.filter(year__gte=filters["year_min"])
    if "year_max" in filters:
        movies = movies.filter(year__lte=filters["year_max"])
    if "q" in filters:
        movies = _search(movies, filters["q"])
    return movies


def filter_param(name: str) -> Param:
    return Param(name, _FILTER_FIELDS[name])


def _search(movies: QuerySet[Movie], text: str | Param) -> QuerySet[Movie]:
    if connection.vendor == "postgresql":
        from movies.search import movie_search_query, movie_search_vector

        return movies.annotate(search=movie_search_vector()).filter(search=movie_search_query(text))
    return movies.filter(title__icontains=text)


def genre_names(movie: Any) -> ExpressionWrapper[Any]:
    """The names of a film's genres, alphabetical, as one list column: the film's
    own copy of them (``Movie.genre_list``), ``movie`` being the row read."""
    return ExpressionWrapper(F("genre_list"), output_field=ListField())
