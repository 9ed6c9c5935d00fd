"""URL map of the Django side: the curator admin and the comparison views."""

from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "mymoviedb curation"
admin.site.site_title = "mymoviedb"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("movies/", include("movies.urls")),
]

# Errors under /movies/ in the API's problem shape; the admin's stay HTML pages.
handler400 = "movies.problem_handlers.bad_request"
handler403 = "movies.problem_handlers.permission_denied"
handler404 = "movies.problem_handlers.page_not_found"
handler500 = "movies.problem_handlers.server_error"
