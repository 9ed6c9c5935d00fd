"""Generic views over the films: the list and one film, read-only and anonymous.

Not a strawman: genres are prefetched (one query for the page's genres) and so
are the credits with their people (one join), as a careful DRF project does. The
list is in the API's default order (title, then id) and pages with DRF's own
``LimitOffsetPagination`` (settings.REST_FRAMEWORK), which also counts the films.
"""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet
from rest_framework import generics

from movies.drf.serializers import MovieDetailSerializer, MovieListSerializer
from movies.models import Credit, Movie


class MovieList(generics.ListAPIView):
    serializer_class = MovieListSerializer

    def get_queryset(self) -> QuerySet[Movie]:
        return Movie.objects.prefetch_related("genres").order_by("title", "id")


class MovieDetail(generics.RetrieveAPIView):
    serializer_class = MovieDetailSerializer

    def get_queryset(self) -> QuerySet[Movie]:
        credits = Credit.objects.select_related("person")
        return Movie.objects.prefetch_related("genres", Prefetch("credits", queryset=credits))
