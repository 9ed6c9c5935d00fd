from django.apps import AppConfig


class MoviesConfig(AppConfig):
    name = "movies"
    verbose_name = "Catalogue"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from movies import changes, genre_copies

        genre_copies.install()  # Movie.genre_list and Genre.movie_count kept in line
        changes.install()  # NOTIFY the API workers of every committed write
