"""Routes of the Django comparison views (the same resources as /api/movies)."""

from django.urls import path

from movies import export_views, views

app_name = "movies"

urlpatterns = [
    path("", views.movie_list, name="movie-list"),
    path("export/", export_views.movie_export, name="movie-export"),
    path("people/", views.people_list, name="people-list"),
    path("<str:movie_id>/", views.movie_detail, name="movie-detail"),
]
