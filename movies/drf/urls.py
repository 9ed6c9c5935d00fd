"""Routes of the DRF API: ``/drf/movies/`` and ``/drf/movies/<id>/``."""

from django.urls import path

from movies.drf import views

app_name = "drf"

urlpatterns = [
    path("", views.MovieList.as_view(), name="movie-list"),
    path("<int:pk>/", views.MovieDetail.as_view(), name="movie-detail"),
]
