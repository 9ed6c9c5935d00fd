"""Search in relevance order (movies.search.ranked, movies.selectors.ranked).

On PostgreSQL every kind of forgiving input is checked; on SQLite (FTS5) the
ranking of exact titles and prefixes, and that its index follows every write.
"""

from __future__ import annotations

from typing import Any

import pytest

from movies import selectors
from movies.models import Credit, Movie, Person
from movies.schemas import MovieListQuery

pytestmark = pytest.mark.django_db

FILMS = [
    ("The Godfather", 1972, ["Al Pacino", "Marlon Brando"]),
    ("The Godfather Part II", 1974, ["Al Pacino", "Robert De Niro"]),
    ("The Godfather Part III", 1990, ["Al Pacino"]),
    ("3 Godfathers", 1948, ["John Wayne"]),
    ("Disco Godfather", 1979, ["Rudy Ray Moore"]),
    ("Titanic", 1953, ["Barbara Stanwyck"]),
    ("Titanic", 1997, ["Leonardo DiCaprio"]),
    ("Clash of the Titans", 1981, ["Harry Hamlin"]),
    ("Amélie", 2001, ["Audrey Tautou"]),
    ("Star Wars", 1977, ["Mark Hamill"]),
    ("Star Trek", 1979, ["William Shatner"]),
    ("Heat", 1995, ["Al Pacino", "Robert De Niro"]),
]


@pytest.fixture
def films(db: None) -> dict[tuple[str, int], Movie]:
    made = {}
    people: dict[str, Person] = {}
    for title, year, cast in FILMS:
        movie = Movie.objects.create(title=title, year=year, synopsis=f"{title}, a film.")
        for order, name in enumerate(cast):
            if name not in people:
                people[name] = Person.objects.create(name=name, key=name.lower())
            Credit.objects.create(movie=movie, person=people[name], billing_order=order)
        made[title, year] = movie
    return made


def found(q: str, **params: Any) -> list[tuple[str, int]]:
    page = selectors.list_movies(MovieListQuery.model_validate({"q": q, **params}))
    return [(item["title"], item["year"]) for item in page.items]


def test_a_search_without_sort_is_in_relevance_order(films: Any) -> None:
    query = MovieListQuery.model_validate({"q": "godfather"})
    assert query.sort == "relevance"
    assert found("godfather")[:3] == [
        ("The Godfather", 1972),
        ("The Godfather Part II", 1974),
        ("The Godfather Part III", 1990),
    ]
    assert set(found("godfather")[3:]) == {("3 Godfathers", 1948), ("Disco Godfather", 1979)}


def test_an_explicit_sort_still_wins(films: Any) -> None:
    assert found("godfather", sort="title") == [
        ("3 Godfathers", 1948),
        ("Disco Godfather", 1979),
        ("The Godfather", 1972),
        ("The Godfather Part II", 1974),
        ("The Godfather Part III", 1990),
    ]


def test_exact_title_before_titles_containing_it(films: Any) -> None:
    assert found("titanic")[:2] == [("Titanic", 1953), ("Titanic", 1997)]
    assert found("star wars")[0] == ("Star Wars", 1977)


def test_a_year_prefers_that_year(films: Any) -> None:
    assert found("titanic 1997")[0] == ("Titanic", 1997)


def test_prefix_article_and_case(films: Any) -> None:
    assert found("the godfa")[0] == ("The Godfather", 1972)
    assert found("GODFATHER part i")[0][0].startswith("The Godfather Part")
    assert found("star w") == [("Star Wars", 1977)]


@pytest.mark.postgres(reason="typos, accents and people are PostgreSQL's (pg_trgm, unaccent)")
def test_typos_accents_and_people(films: Any) -> None:
    assert found("the godfahter")[0] == ("The Godfather", 1972)
    assert found("godfathr part ii")[0] == ("The Godfather Part II", 1974)
    assert found("amelie") == [("Amélie", 2001)]
    assert found("pacino godfather")[0] == ("The Godfather", 1972)
    assert found("de niro heat") == [("Heat", 1995)]


def test_relevance_cursors_walk_every_match_both_ways(films: Any) -> None:
    everything = found("godfather", limit=100)
    seen: list[tuple[str, int]] = []
    params: dict[str, Any] = {"q": "godfather", "limit": 2}
    page = selectors.list_movies(MovieListQuery.model_validate(params))
    pages = [page]
    while page.next_cursor is not None:
        cursor = page.next_cursor
        assert cursor.sort == "relevance" and isinstance(cursor.value, float)
        page = selectors.list_movies(
            MovieListQuery.model_validate({**params, "cursor": cursor.encode()})
        )
        pages.append(page)
    for each in pages:
        seen += [(item["title"], item["year"]) for item in each.items]
    assert seen == everything
    assert page.previous_cursor is not None
    back = selectors.list_movies(
        MovieListQuery.model_validate({**params, "cursor": page.previous_cursor.encode()})
    )
    assert back.items == pages[-2].items


def test_other_filters_narrow_the_ranked_films(films: Any) -> None:
    pacino = Person.objects.get(name="Al Pacino")
    assert found("godfather", person=pacino.pk, year_min=1974) == [
        ("The Godfather Part II", 1974),
        ("The Godfather Part III", 1990),
    ]


def test_the_index_follows_writes(films: Any) -> None:
    movie = films["Star Trek", 1979]
    movie.title = "Solaris"
    movie.save()
    assert found("solaris") == [("Solaris", 1979)]
    assert found("star trek") == []
    movie.delete()
    assert found("solaris") == []
    Movie.objects.create(title="Stalker", year=1979)
    assert found("stalk")[0] == ("Stalker", 1979)


def test_text_that_means_nothing_finds_nothing(films: Any) -> None:
    for q in ["!!!", "-", '"', "zzzz"]:
        assert found(q) == [], q


@pytest.mark.postgres(reason="the ranked postings are PostgreSQL's (migration 0012)")
def test_a_word_ranks_by_its_postings_as_the_general_search_scores(films: Any) -> None:
    # A one-word search reads the postings; their ranks must be the scores the
    # general statement gives (its people bonus aside: no film here credits a
    # person named like a word of its title).
    from movies import search
    from movies.models import SearchPosting

    for word in ["godfather", "titanic", "godf", "star", "heat", "part"]:
        general = dict(search.candidates(word, "default"))
        postings = dict(SearchPosting.objects.filter(key=word).values_list("movie_id", "rank"))
        assert postings, word
        assert {film: -rank for film, rank in postings.items()} == {
            film: score for film, score in general.items() if film in postings
        }, word
        assert set(general) <= set(postings), word
        assert [item["id"] for item in selectors.list_movies(
            MovieListQuery.model_validate({"q": word, "limit": 100})
        ).items] == sorted(postings, key=lambda film: (postings[film], film)), word  # fmt: skip


@pytest.mark.postgres(reason="the ranked postings are PostgreSQL's (migration 0012)")
def test_the_postings_follow_every_kind_of_write(films: Any) -> None:
    from movies.models import SearchPosting

    def keys(movie: Movie) -> set[str]:
        return set(SearchPosting.objects.filter(movie=movie).values_list("key", flat=True))

    heat = films["Heat", 1995]
    assert keys(heat) == {"hea", "heat"}
    Movie.objects.filter(pk=heat.pk).update(title="Thief")  # one UPDATE, no save()
    assert keys(heat) == {"thi", "thie", "thief"}
    assert found("heat") == []
    assert found("thief") == [("Thief", 1995)]
    Movie.objects.filter(pk=heat.pk).update(rating=8.0)  # not the title: postings kept
    assert keys(heat) == {"thi", "thie", "thief"}
    made = Movie.objects.bulk_create(
        [Movie(title="Heat Wave", year=1935), Movie(title="Heatwave", year=1983)]
    )
    assert found("heat") == [("Heat Wave", 1935), ("Heatwave", 1983)]  # the whole word first
    Movie.objects.filter(pk__in=[m.pk for m in made]).delete()
    assert found("heat") == []
    assert not SearchPosting.objects.filter(movie_id__in=[m.pk for m in made]).exists()


@pytest.mark.postgres(reason="the ranked postings are PostgreSQL's (migration 0012)")
def test_a_word_no_title_holds_is_widened_by_its_typos(films: Any) -> None:
    # No posting for "godfahter": the general search answers, with its typo widening.
    assert found("godfahter")[0] == ("The Godfather", 1972)
    assert found("titanik")[:2] == [("Titanic", 1953), ("Titanic", 1997)]


@pytest.mark.postgres(reason="the ranked postings are PostgreSQL's (migration 0012)")
def test_the_postings_are_bounded_per_word_and_long_words_take_the_general_search(
    films: Any,
) -> None:
    # A title of long "words" (random letters, a hostile import) writes a bounded
    # number of keys; a query word past the key length is answered by the general
    # statement, which still finds the film by its title's prefix.
    from movies import search
    from movies.models import SearchPosting

    long_word = "extraordinaries"  # 15 letters: its prefixes up to 10 are keys
    longer = "x" * 16 + "yz"  # past 15 letters: no key at all
    film = Movie.objects.create(title=f"Mary {long_word} {longer}", year=1964)
    keys = set(SearchPosting.objects.filter(movie=film).values_list("key", flat=True))
    assert keys == {"mar", "mary"} | {long_word[:n] for n in range(3, 11)}
    assert search.posting_key(long_word[:10]) == long_word[:10]
    assert search.posting_key(long_word[:11]) is None
    assert (f"Mary {long_word} {longer}", 1964) in found(long_word)
