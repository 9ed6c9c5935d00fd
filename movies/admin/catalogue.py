"""Admin of the catalogue: films, genres, people and credits.

Built for tens of thousands to a million films: every changelist runs a constant
number of queries, counts with ``EstimatedCountPaginator`` and sorts only on
indexed columns; many-valued fields use autocomplete widgets, which load the
selected rows instead of every choice.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.views.main import ORDER_VAR, SEARCH_VAR, ChangeList
from django.db import connections, models, router
from django.db.models import (
    Case,
    Count,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import smart_split, unescape_string_literal

from movies.admin.lists import (
    DecadeFilter,
    EstimatedCountPaginator,
    GenreFilter,
    holding_at_least,
)
from movies.admin.lookups import OfferedLookupsOnly
from movies.admin.preload import PreloadedAutocompleteInline, PreloadingInlineFormSet
from movies.admin.rows import LeanRowsFormSet
from movies.admin.versions import VersionedMovieForm, conflict_rows
from movies.models import Credit, Genre, Movie, Person
from movies.search import ranked

# Films credited to the people a search matches, up to this many, are passed to
# the film query as a list of ids (see MovieAdmin.get_search_results).
CREDITED_INLINE_MAX = 5_000
# Past that, a search matching up to this many people keeps its credits in a
# subquery that PostgreSQL hashes once: ~20 credits a person, so ~100,000 film
# ids, which fit in twice the default work_mem (hash_mem_multiplier). Beyond it
# the planner would rescan the subquery for every film, and a UNION is used.
HASHED_PEOPLE_MAX = 5_000


def search_words(search_term: str) -> list[str]:
    """Split a search like Django's admin: on spaces, keeping "quoted phrases"."""
    return [
        unescape_string_literal(bit) if bit[0] in "\"'" and bit[0] == bit[-1] else bit
        for bit in smart_split(search_term)
    ]


@admin.register(Genre)
class GenreAdmin(OfferedLookupsOnly):
    list_display = ["name", "slug", "film_count"]
    ordering = ["name"]
    search_fields = ["name"]
    prepopulated_fields = {"slug": ("name",)}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Genre]:
        # A subquery, not Count("movies"): it is computed for the rows shown
        # only, and left out of the changelist's COUNT(*) and of autocomplete.
        films = (
            Movie.genres.through.objects.filter(genre=OuterRef("pk"))
            .order_by()
            .values("genre")
            .annotate(films=Count("*"))
            # django-stubs loses annotations made after values(): typeddjango/django-stubs#3471.
            .values("films")  # type: ignore[misc]
        )
        return super().get_queryset(request).annotate(film_count=Coalesce(Subquery(films), 0))

    @admin.display(description="films", ordering="film_count")
    def film_count(self, genre: Genre) -> int:
        return genre.film_count  # type: ignore[attr-defined]


@admin.register(Person)
class PersonAdmin(OfferedLookupsOnly):
    # ``key`` stays a required field: it must be normalised exactly as the
    # importer normalises names, or a re-import would add the person twice.
    list_display = ["name", "key"]
    search_fields = ["name"]
    search_help_text = "Part of the name."
    readonly_fields = ["created_at", "updated_at"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 50


class CreditFormSet(LeanRowsFormSet, PreloadingInlineFormSet):
    """A film's credits: a few templates per row, and one query for all their people."""


# Preloaded: one query labels the people of every row, not one per credit.
class CreditInline(PreloadedAutocompleteInline, admin.TabularInline):
    model = Credit
    formset = CreditFormSet
    fields = ["person", "role", "billing_order", "character_name"]
    autocomplete_fields = ["person"]
    extra = 1

    def get_queryset(self, request: HttpRequest) -> QuerySet[Credit]:
        # Each row prints str(credit), which names the person and the film.
        return super().get_queryset(request).select_related("movie", "person")


@admin.register(Movie)
class MovieAdmin(OfferedLookupsOnly):
    list_display = [
        "poster_thumbnail", "title", "year", "rating", "runtime_minutes", "genre_names",
        "updated_at",
    ]  # fmt: skip
    list_display_links = ["poster_thumbnail", "title"]
    # Only the columns with a (column, id) index: sorting the rest means
    # sorting the whole table.
    sortable_by = ["title", "year", "rating", "updated_at"]
    ordering = ["-updated_at"]
    list_filter = [GenreFilter, DecadeFilter]
    # What get_search_results searches; also turns on the search box.
    search_fields = ["title", "credits__person__name"]
    search_help_text = (
        "Words of a title (typos, accents and a half-typed last word forgiven), a year, or "
        "a credited person's name: best matches first, as the API ranks them (PostgreSQL). "
        "Sort by a column to list every film with each word in its title or in one "
        "person's name."
    )
    # No date_hierarchy: it runs a query over every film to list its years.
    list_per_page = 50
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    autocomplete_fields = ["genres"]
    # Posters are served over HTTPS; also Django 6's default for a bare domain.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    inlines = [CreditInline]
    # Carries the version of the film the page shows; a stale save is refused.
    form = VersionedMovieForm
    readonly_fields = ["poster_preview", "api_link", "source_key", "created_at", "updated_at"]
    fieldsets = [
        ("Film", {"fields": ["title", "synopsis", "genres", "version"]}),
        ("Release", {"fields": ["year", "release_date", "runtime_minutes", "rating"]}),
        ("Links", {"fields": ["api_link", "wikipedia_slug", "poster_url", "poster_preview"]}),
        ("Timestamps", {"fields": ["source_key", "created_at", "updated_at"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Movie]:
        # One query for the genres of a whole page instead of one per film.
        genres = Prefetch("genres", queryset=Genre.objects.only("name"))
        return super().get_queryset(request).prefetch_related(genres)

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Movie | None = None,
    ) -> HttpResponse:
        # A refused stale save: the differences, shown above the form.
        formsets = [inline.formset for inline in context.get("inline_admin_formsets", [])]
        credits = next((f for f in formsets if f.model is Credit), None)
        context["version_conflict"] = conflict_rows(context["adminform"].form, credits)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return RelevanceChangeList

    def get_ordering(self, request: HttpRequest) -> list[Any]:
        # A search without a column order is in relevance order (get_search_results).
        return [] if _by_relevance(request) else list(super().get_ordering(request))

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Movie], search_term: str
    ) -> tuple[QuerySet[Movie], bool]:
        """The films the API's search finds, best first, unless a column order is
        asked for or the ranked search finds none (a person's name alone, letters
        inside a word): then every film _substring_search finds."""
        if not _by_relevance(request):
            return self._substring_search(queryset, search_term)
        films = [film_id for film_id, _ in ranked(search_term, router.db_for_read(Movie))]
        if not films:
            found, duplicates = self._substring_search(queryset, search_term)
            return found.order_by(*self.ordering), duplicates  # no relevance to order by
        # At most movies.search's few hundred candidates: a CASE over them is cheap.
        position = Case(
            *[When(pk=film_id, then=Value(n)) for n, film_id in enumerate(films)],
            default=Value(len(films)),
            output_field=IntegerField(),
        )
        return queryset.filter(pk__in=films).order_by(position), False

    def _substring_search(
        self, queryset: QuerySet[Movie], search_term: str
    ) -> tuple[QuerySet[Movie], bool]:
        """Films with every word of the search in the title, or in the name of
        one person credited.

        Django's own search joins credits and people: a film comes back once per
        matching credit, so the changelist adds DISTINCT over whole rows, which
        takes seconds at a million films. Here the films credited to matching
        people are fetched first (one query, through the trigram index of names);
        when they are few, the list is "title matches OR id in that list", a
        filter the planner can check while it walks the list's sort index, and a
        common title word costs a few milliseconds instead of a join with every
        film. Past CREDITED_INLINE_MAX films (a common first name: "ada" is
        in 4,000 names and 90,000 credits), the credits stay a subquery under
        the same OR while the people are at most HASHED_PEOPLE_MAX: PostgreSQL
        hashes it once and still walks the sort index, stopping at the page's
        last film. Past that it is a UNION of two subqueries, which finds the
        same films without duplicates. Unlike Django's search, the words are not
        mixed across fields ("stewart laramie" finds nothing): per-word unions
        cost seconds as soon as one word is common ("the", "7").
        """
        words = search_words(search_term)
        if not words:
            return queryset, False
        titled = Q(*[Q(title__icontains=w) for w in words])
        people = Person.objects.filter(*[Q(name__icontains=w) for w in words])
        credited = Credit.objects.filter(*[Q(person__name__icontains=w) for w in words])
        credited_ids = credited.order_by().values_list("movie_id", flat=True)
        few = list(credited_ids[: CREDITED_INLINE_MAX + 1])
        if len(few) <= CREDITED_INLINE_MAX:
            return queryset.filter(titled | Q(pk__in=few)), False
        if people.order_by()[: HASHED_PEOPLE_MAX + 1].count() <= HASHED_PEOPLE_MAX:
            found = queryset.filter(titled | Q(pk__in=credited_ids))
        else:
            # A UNION, not "title matches OR id IN (subquery)": under OR, PostgreSQL
            # rescans the subquery for every film once it outgrows work_mem.
            union = Movie.objects.filter(titled).values("pk").order_by().union(credited_ids)
            found = queryset.filter(pk__in=union)
        if queryset.query.where:  # a filtered list may hold few of the credited films
            return found, False
        # The paginator need not count what the credits already show.
        return holding_at_least(found, len(set(few))), False

    @admin.display(description="genres")
    def genre_names(self, movie: Movie) -> str:
        return ", ".join(genre.name for genre in movie.genres.all())

    @admin.display(description="poster")
    def poster_thumbnail(self, movie: Movie) -> SafeString | str:
        return poster_image(movie, height=48)

    @admin.display(description="poster")
    def poster_preview(self, movie: Movie) -> SafeString | str:
        return poster_image(movie, height=240) or "No poster URL."

    @admin.display(description="in the API")
    def api_link(self, movie: Movie) -> SafeString | str:
        if movie.pk is None:
            return "Saved films are served by the API."
        url = f"{settings.API_PUBLIC_URL}/api/movies/{movie.pk}"
        return format_html('<a href="{}" class="api-link" target="_blank">{}</a>', url, url)


def _ranks_people() -> bool:
    # SQLite's ranked search reads titles only (movies.search): its admin keeps
    # the substring search, which also finds people.
    return connections[router.db_for_read(Movie)].vendor == "postgresql"


def _by_relevance(request: HttpRequest) -> bool:
    searching = bool(request.GET.get(SEARCH_VAR, "").strip())
    return searching and ORDER_VAR not in request.GET and _ranks_people()


class RelevanceChangeList(ChangeList):
    """The film changelist: no default order under a search, whose relevance order
    (MovieAdmin.get_search_results) is then the list's (the id breaks no ties)."""

    def _get_default_ordering(self) -> list[Any]:
        if self.query.strip() and ORDER_VAR not in self.params and _ranks_people():
            return []
        return list(super()._get_default_ordering())  # type: ignore[misc]


def poster_image(movie: Movie, *, height: int) -> SafeString | str:
    """The film's poster at ``height`` pixels, loaded lazily: a page of 50 films
    fetches only the posters scrolled into view."""
    if not movie.poster_url:
        return ""
    return format_html(
        '<img src="{}" alt="Poster of {}" height="{}" loading="lazy" class="poster">',
        movie.poster_url, movie.title, height,
    )  # fmt: skip


@admin.register(Credit)
class CreditAdmin(OfferedLookupsOnly):
    list_display = ["movie", "person", "role", "billing_order", "character_name"]
    list_select_related = ["movie", "person"]
    list_filter = ["role"]
    # Not the film's title too: an OR across two joined tables cannot use
    # either index (7 s over 5 million credits). A film's credits are on its page.
    search_fields = ["person__name"]
    search_help_text = "Part of the person's name."
    autocomplete_fields = ["movie", "person"]
    # The model's ordering goes through the film's title: a sort over every
    # credit. The primary key is indexed and keeps newest first.
    ordering = ["-id"]
    sortable_by = ()
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 50
