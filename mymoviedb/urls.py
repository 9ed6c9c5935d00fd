"""URL map of the Django side: the curator admin and the comparison views."""

from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "mymoviedb curation"
admin.site.site_title = "mymoviedb"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("movies/", include("movies.urls")),
]
