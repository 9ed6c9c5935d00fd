"""A typical Django REST framework API of the films: ModelSerializers as DRF's tutorial
writes them (nested, declarative) and generic views. Not a strawman: genres are
prefetched, and so are the credits with their people; the list is in the API's order
(title, then id) and pages with DRF's LimitOffsetPagination, which also counts."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet
from rest_framework import generics, serializers

from movies.models import Credit, Genre, Movie, Person


class GenreSerializer(serializers.ModelSerializer):
    class Meta:
        model = Genre
        fields = ["slug", "name"]


class PersonSerializer(serializers.ModelSerializer):
    class Meta:
        model = Person
        fields = ["id", "name"]


class CreditSerializer(serializers.ModelSerializer):
    person = PersonSerializer()

    class Meta:
        model = Credit
        fields = ["person", "role", "billing_order", "character_name"]


class MovieListSerializer(serializers.ModelSerializer):
    genres = GenreSerializer(many=True)

    class Meta:
        model = Movie
        fields = [
            "id", "title", "year", "release_date", "runtime_minutes", "rating",
            "poster_url", "updated_at", "genres",
        ]  # fmt: skip


class MovieDetailSerializer(MovieListSerializer):
    credits = CreditSerializer(many=True)

    class Meta(MovieListSerializer.Meta):
        fields = [
            *MovieListSerializer.Meta.fields, "synopsis", "wikipedia_slug", "created_at",
            "credits",
        ]  # fmt: skip


class MovieList(generics.ListAPIView):
    serializer_class = MovieListSerializer

    def get_queryset(self) -> QuerySet[Movie]:
        return Movie.objects.prefetch_related("genres").order_by("title", "id")


class MovieDetail(generics.RetrieveAPIView):
    serializer_class = MovieDetailSerializer

    def get_queryset(self) -> QuerySet[Movie]:
        credits = Credit.objects.select_related("person")
        return Movie.objects.prefetch_related("genres", Prefetch("credits", queryset=credits))
