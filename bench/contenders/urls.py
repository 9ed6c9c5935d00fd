"""The product's URLs plus the contenders': ``/async/movies/`` and ``/drf/movies/``."""

from django.urls import include, path

from bench.contenders import async_views, drf
from mymoviedb.urls import handler400, handler403, handler404, handler500, urlpatterns

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]

async_patterns = [
    path("", async_views.movie_list, name="movie-list"),
    path("<str:movie_id>/", async_views.movie_detail, name="movie-detail"),
]
drf_patterns = [
    path("", drf.MovieList.as_view(), name="movie-list"),
    path("<int:pk>/", drf.MovieDetail.as_view(), name="movie-detail"),
]
urlpatterns = [
    *urlpatterns,
    path("async/movies/", include((async_patterns, "movies"), namespace="async-movies")),
    path("drf/movies/", include((drf_patterns, "drf"))),
]
