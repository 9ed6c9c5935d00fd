"""The catalogue: films, genres, people and the credits that join them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower

from movies.expressions import SortKey
from movies.validators import validate_line, validate_poster_url, validate_prose

MIN_YEAR = 1870
MAX_YEAR = 2100
MAX_ID = 2**63 - 1  # the largest bigint: no id, path or cursor may name more
# Where an unrated film sorts, as a rating: past 10 ascending, below 0 descending.
RATING_LAST = 11
RATING_LAST_DESC = -1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def row_version(updated_at: datetime) -> int:
    """A film's version: its ``updated_at`` in microseconds since the epoch.

    Every write of a film saves its row (the API's services, the admin's change
    form, the importer when a value differs), so the version moves with each
    change; a write's ``If-Match`` names the version it read (movies.conditional).
    """
    return (updated_at - _EPOCH) // _MICROSECOND


class NameListField(models.Field):  # type: ignore[type-arg]
    """A list of names, stored as JSON array text (the same on PostgreSQL and SQLite)."""

    # What django-stubs' plugin types the attribute as (set, then read).
    _pyi_private_set_type: list[str] | str | models.expressions.Combinable
    _pyi_private_get_type: list[str]

    def get_internal_type(self) -> str:
        return "TextField"

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> list[str]:
        # The column only ever holds a JSON array (get_prep_value): loads gives the list.
        return [] if value is None else orjson.loads(value)  # type: ignore[no-any-return]

    def to_python(self, value: Any) -> list[str]:
        if isinstance(value, str):
            return list(orjson.loads(value))
        return [] if value is None else list(value)

    def get_prep_value(self, value: Any) -> Any:
        # Text already in the column's form passes through (COPY rows, expressions).
        if isinstance(value, list | tuple):
            return orjson.dumps(list(value)).decode()
        return value


class KeepsCopies(models.Model):
    """A model with columns only movies.genre_copies writes (with UPDATE ... SET
    from the links): ``save()`` of a stored row leaves them out, so an instance
    read before a change of the links never writes its stale copy back."""

    kept_fields: tuple[str, ...] = ()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding and kwargs.get("update_fields") is None:
            # As Django would: every loaded field, but the kept ones.
            deferred = self.get_deferred_fields()
            kwargs["update_fields"] = [
                field.name
                for field in self._meta.concrete_fields
                if not field.primary_key
                and not getattr(field, "generated", False)
                and field.attname not in deferred
                and field.name not in self.kept_fields
            ]
        super().save(*args, **kwargs)


class Genre(KeepsCopies):
    name = models.CharField(max_length=64, unique=True, validators=[validate_line])
    slug = models.SlugField(max_length=64, unique=True)
    # How many films have the genre, kept by every write of the relation
    # (movies.genre_copies): the genre list reads 40 rows, not every link.
    movie_count = models.PositiveIntegerField(default=0, editable=False)
    kept_fields = ("movie_count",)

    class Meta:
        ordering = ["name"]
        verbose_name = "genre"
        verbose_name_plural = "genres"

    def __str__(self) -> str:
        return self.name


class Person(models.Model):
    name = models.CharField(max_length=200, validators=[validate_line])
    # Normalised name used to de-duplicate people on import ("robert downey jr.").
    key = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        verbose_name = "person"
        verbose_name_plural = "people"
        # Constraints rather than unique=True: no extra LIKE index on PostgreSQL.
        constraints = [models.UniqueConstraint(fields=["key"], name="person_unique_key")]
        indexes = [
            models.Index(fields=["name", "id"], name="person_name_id"),
            models.Index(Lower("name"), name="person_lower_name"),
        ]

    def __str__(self) -> str:
        return self.name


class Movie(KeepsCopies):
    # Free text and posters by the rules of API writes and the importer (movies.validators).
    title = models.CharField(max_length=300, validators=[validate_line])
    year = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(MIN_YEAR), MaxValueValidator(MAX_YEAR)]
    )
    release_date = models.DateField(null=True, blank=True)
    runtime_minutes = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(1000)]
    )
    rating = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.0), MaxValueValidator(10.0)],
        help_text="Average rating from 0 to 10.",
    )
    synopsis = models.TextField(blank=True, validators=[validate_prose])
    wikipedia_slug = models.CharField(max_length=300, blank=True, validators=[validate_line])
    poster_url = models.URLField(max_length=500, blank=True, validators=[validate_poster_url])
    # Identity of a film in an imported source, so that re-importing updates it
    # instead of adding a copy. NULL (not "") for films created by curators or
    # the API, so that the unique constraint allows any number of them.
    source_key = models.CharField(  # noqa: DJ001
        max_length=400, null=True, blank=True, editable=False
    )
    genres = models.ManyToManyField(Genre, related_name="movies", blank=True)
    # The names of ``genres``, alphabetical (the database's collation), kept on the
    # row by every write of the relation (movies.genre_copies), so that a page of the
    # list reads one table: a sub-select per row cost ~5 µs of the database's CPU
    # each, most of a list-100 page.
    genre_list = NameListField(default=list, editable=False)
    kept_fields = ("genre_list",)
    people = models.ManyToManyField(Person, through="Credit", related_name="movies")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title", "id"]
        verbose_name = "movie"
        verbose_name_plural = "movies"
        # Each sort of the API is a keyset (field, id): one index per sort key. The
        # rating's keys are expressions (movies.expressions.SortKey), one per direction.
        indexes = [
            models.Index(fields=["title", "id"], name="movie_title_id"),
            models.Index(fields=["year", "id"], name="movie_year_id"),
            models.Index(fields=["rating", "id"], name="movie_rating_id"),
            models.Index(SortKey("rating", RATING_LAST), "id", name="movie_rating_key_id"),
            models.Index(
                SortKey("rating", RATING_LAST_DESC).desc(),
                models.F("id").desc(),
                name="movie_rating_key_desc_id",
            ),
            models.Index(fields=["updated_at", "id"], name="movie_updated_at_id"),
            models.Index(fields=["created_at", "id"], name="movie_created_at_id"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["source_key"], name="movie_unique_source_key"),
            models.CheckConstraint(
                condition=models.Q(year__gte=MIN_YEAR) & models.Q(year__lte=MAX_YEAR),
                name="movie_year_range",
            ),
            models.CheckConstraint(
                condition=models.Q(rating__isnull=True)
                | (models.Q(rating__gte=0) & models.Q(rating__lte=10)),
                name="movie_rating_range",
            ),
            models.CheckConstraint(
                condition=models.Q(runtime_minutes__isnull=True) | models.Q(runtime_minutes__gte=1),
                name="movie_runtime_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.year})"


class Credit(models.Model):
    class Role(models.TextChoices):
        CAST = "cast", "Cast"
        DIRECTOR = "director", "Director"

    # No single-column index: credit_unique_person_role starts with movie.
    movie = models.ForeignKey(
        Movie, on_delete=models.CASCADE, related_name="credits", db_index=False
    )
    # No single-column index: credit_person_movie below starts with person.
    person = models.ForeignKey(
        Person, on_delete=models.CASCADE, related_name="credits", db_index=False
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.CAST)
    billing_order = models.PositiveSmallIntegerField(default=0)
    character_name = models.CharField(max_length=200, blank=True, validators=[validate_line])

    class Meta:
        ordering = ["movie", "role", "billing_order", "id"]
        verbose_name = "credit"
        verbose_name_plural = "credits"
        constraints = [
            models.UniqueConstraint(
                fields=["movie", "person", "role"], name="credit_unique_person_role"
            ),
        ]
        indexes = [
            # The person filter and filmographies go from person to movies.
            models.Index(fields=["person", "movie"], name="credit_person_movie"),
            # A film's detail reads its credits in this order: one range scan, no sort.
            models.Index(
                fields=["movie", "role", "billing_order", "id"], name="credit_movie_billing"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.person} as {self.get_role_display()} in {self.movie}"


class ApiToken(models.Model):
    """A bearer token for API writes. Only a SHA-256 digest is stored.

    Tokens carry 256 bits of randomness, so a fast hash is enough (a slow
    password hash defends low-entropy secrets); the digest is looked up by its
    short prefix and compared in constant time.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, help_text="What the token is for.")
    prefix = models.CharField(max_length=12, unique=True, editable=False)
    digest = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"
        verbose_name_plural = "API tokens"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class AuthFailure(models.Model):
    """One failed API authentication, counted against a key (aioapi/ratelimit.py).

    The key is a client's address, or an address and the token id it tried. In
    the database, not in a worker's memory, so that the limit holds across every
    worker and replica of the API; rows older than the window are deleted.
    """

    key = models.CharField(max_length=320)
    at = models.FloatField(help_text="When, in seconds since the epoch.")

    class Meta:
        indexes = [
            models.Index(fields=["key", "at"], name="authfailure_key_at"),
            models.Index(fields=["at"], name="authfailure_at"),
        ]
        verbose_name = "failed API authentication"
        verbose_name_plural = "failed API authentications"

    def __str__(self) -> str:
        return f"{self.key} at {self.at:.0f}"


class SearchPosting(models.Model):
    """A film under one of its title's words or word prefixes, ranked as a search for
    that word alone ranks it (movies.search; the table and the triggers that keep it
    are migration 0012's SQL, PostgreSQL only)."""

    pk = models.CompositePrimaryKey("key", "rank", "movie")
    key = models.TextField()
    rank = models.FloatField(help_text="Minus the score: the best film first.")
    movie = models.ForeignKey(
        Movie, on_delete=models.DO_NOTHING, db_constraint=False, related_name="search_postings"
    )

    class Meta:
        managed = False
        db_table = "movies_search_posting"

    def __str__(self) -> str:
        return f"{self.key}: film {self.movie_id}"
