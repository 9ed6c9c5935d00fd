"""Routes of the async comparison views (the same resources as /movies/)."""

from django.urls import path

from movies import async_views

app_name = "movies"

urlpatterns = [
    path("", async_views.movie_list, name="movie-list"),
    path("<str:movie_id>/", async_views.movie_detail, name="movie-detail"),
]
