"""Fixtures of the aioapi tests: a small catalogue, an app client, bearer tokens.

Registered through ``pytest_plugins`` in tests/conftest.py. The catalogue is
written with the ORM on the test's thread and committed
(``transactional_db``), so the bridge's threads, with their own connections,
see it.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
import pytest
from aiohttp.test_utils import TestClient
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth.models import Permission, User

from aioapi.app import create_app
from aioapi.settings import ApiSettings
from movies.models import Credit, Genre, Movie, Person
from movies.tokens import issue_token

ApiClient = TestClient[Any, Any]
T = TypeVar("T")


@dataclass
class Catalogue:
    genres: dict[str, Genre] = field(default_factory=dict)
    people: dict[str, Person] = field(default_factory=dict)
    movies: dict[str, Movie] = field(default_factory=dict)


# title -> (year, rating, genre slugs, directors, cast)
FILMS: dict[str, tuple[int, float | None, list[str], list[str], list[str]]] = {
    "Alien": (1979, 8.5, ["horror", "science-fiction"], ["Ridley Scott"], ["Sigourney Weaver"]),
    "Aliens": (1986, 8.4, ["action", "science-fiction"], ["James Cameron"], ["Sigourney Weaver"]),
    "Blade Runner": (1982, 8.1, ["science-fiction"], ["Ridley Scott"], ["Harrison Ford"]),
    "Casablanca": (1942, None, ["drama"], ["Michael Curtiz"], ["Humphrey Bogart"]),
    "Gladiator": (2000, 8.5, ["action", "drama"], ["Ridley Scott"], ["Russell Crowe"]),
    "Heat": (1995, None, ["crime", "drama"], ["Michael Mann"], ["Al Pacino", "Robert De Niro"]),
    "The Terminator": (1984, 8.1, ["action"], ["James Cameron"], ["Arnold Schwarzenegger"]),
    "Witness": (1985, 7.4, ["crime", "drama"], ["Peter Weir"], ["Harrison Ford"]),
}
GENRES = {
    "action": "Action", "crime": "Crime", "drama": "Drama", "horror": "Horror",
    "science-fiction": "Science Fiction", "western": "Western",
}  # fmt: skip


def build_catalogue() -> Catalogue:
    """Write FILMS with their genres and credits; return the saved objects."""
    catalogue = Catalogue()
    for slug, name in GENRES.items():
        catalogue.genres[slug] = Genre.objects.create(slug=slug, name=name)
    for title, (year, rating, slugs, directors, cast) in FILMS.items():
        movie = Movie.objects.create(
            title=title,
            year=year,
            rating=rating,
            release_date=dt.date(year, 6, 1),
            runtime_minutes=100 + len(title),
            synopsis=f"{title}, a film of {year}.",
        )
        movie.genres.set([catalogue.genres[slug] for slug in slugs])
        for order, name in enumerate(cast):
            Credit.objects.create(
                movie=movie, person=_person(catalogue, name), role="cast",
                billing_order=order, character_name=f"{name.split()[-1]}'s part",
            )  # fmt: skip
        for name in directors:
            Credit.objects.create(movie=movie, person=_person(catalogue, name), role="director")
        catalogue.movies[title] = movie
    return catalogue


def _person(catalogue: Catalogue, name: str) -> Person:
    if name not in catalogue.people:
        catalogue.people[name] = Person.objects.create(name=name, key=name.lower())
    return catalogue.people[name]


@pytest.fixture
def catalogue(transactional_db: None) -> Catalogue:
    return build_catalogue()


@pytest.fixture
def api_settings() -> ApiSettings:
    return ApiSettings(
        db_threads=4,
        db_max_pending=64,
        access_log="off",
        auth_failures_per_minute=5,
        cache_control=settings.API_CACHE_CONTROL,
    )


@pytest.fixture
async def api(
    aiohttp_client: Callable[..., Awaitable[ApiClient]], api_settings: ApiSettings
) -> ApiClient:
    return await aiohttp_client(create_app(api_settings))


_usernames = itertools.count()


def make_token(*codenames: str) -> tuple[User, str]:
    """A user holding the ``movies`` permissions ``codenames``, and a raw token of theirs."""
    user = User.objects.create_user(f"curator{next(_usernames)}", password=None)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    _, raw = issue_token(user, "tests")
    return user, raw


@pytest.fixture
def writer(transactional_db: None) -> tuple[User, str]:
    """A curator who may add, change and delete films."""
    return make_token("add_movie", "change_movie", "delete_movie")


def bearer(raw: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw}"}


async def orm(function: Callable[..., T], *args: Any) -> T:
    """Run ORM code from an async test (Django refuses it on the loop's thread)."""
    # channels' wrapper hands the connection back afterwards, as the bridge does.
    return await database_sync_to_async(function)(*args)


async def json_of(response: Any) -> Any:
    """The body parsed with orjson whatever its JSON media type."""
    return orjson.loads(await response.read())


def busy_person() -> tuple[int, list[tuple[int, str, int, str]]]:
    """A person credited 29 times in 25 films (four as cast and director, years and
    titles repeating); their credits in filmography order: (year, title, film, role)."""
    person = Person.objects.create(name="Busy Body", key="busy body")
    credits: list[tuple[int, str, int, str]] = []
    for n in range(25):
        movie = Movie.objects.create(title=f"Take {n % 6}", year=1990 + n % 4)
        roles = ["cast", "director"] if n % 7 == 0 else ["director" if n % 3 else "cast"]
        for role in roles:
            Credit.objects.create(movie=movie, person=person, role=role)
            credits.append((movie.year, movie.title, movie.pk, role))
    credits.sort(key=lambda credit: (-credit[0], credit[1], credit[2], credit[3]))
    return person.pk, credits
