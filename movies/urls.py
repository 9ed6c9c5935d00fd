"""Routes of the Django comparison views (the same resources as /api/movies)."""

from django.urls import path

from movies import views  # noqa: F401

app_name = "movies"

urlpatterns: list = [
]
