"""Routes of the Django comparison views (the same resources as /api/movies)."""

from django.urls import path

from movies import views

app_name = "movies"

urlpatterns = [
    path("", views.movie_list, name="movie-list"),
    path("<str:movie_id>/", views.movie_detail, name="movie-detail"),
]
