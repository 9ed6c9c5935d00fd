"""Routes of the Django comparison views (the same resources as /api/movies and
/api/people)."""

from django.urls import path

from movies import export_views, views

app_name = "movies"

urlpatterns = [
    path("", views.movie_list, name="movie-list"),
    path("export/", export_views.movie_export, name="movie-export"),
    path("people/", views.people_list, name="people-list"),
    # Without a trailing slash, as aioapi's: a person's body links to "{id}/films".
    path("people/<str:person_id>", views.person_detail, name="person-detail"),
    path("people/<str:person_id>/films", views.person_films, name="person-films"),
    path("<str:movie_id>/", views.movie_detail, name="movie-detail"),
]
