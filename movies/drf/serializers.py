"""ModelSerializers of a film, as DRF's tutorial writes them: nested, declarative."""

from __future__ import annotations

from rest_framework import serializers

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
