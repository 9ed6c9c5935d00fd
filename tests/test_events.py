"""``GET /api/events``: admin edits arrive as server-sent events; Last-Event-ID resumes
within the window, anywhere else a ``reload``; shutdown ends open streams."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from django.test import Client
from django.urls import reverse

from aioapi.app import create_app
from aioapi.changefeed import END, QUEUE_SLACK, ChangeFeed, change_frame
from aioapi.settings import ApiSettings
from movies.admin import versions
from movies.changes import Change
from movies.models import Genre, Movie
from tests.api_fixtures import ApiClient, Catalogue, json_of, orm

AppClient = Callable[..., Awaitable[ApiClient]]
NOTIFY = pytest.mark.postgres(reason="LISTEN/NOTIFY")
Event = dict[str, str]


@pytest.fixture
def events_settings(api_settings: ApiSettings) -> ApiSettings:
    # The cache stays off: the first stream starts the listener.
    return api_settings.model_copy(update={"events_heartbeat_seconds": 0.2, "events_window": 50})


@pytest.fixture
async def events_api(
    aiohttp_client: AppClient, events_settings: ApiSettings, catalogue: Catalogue
) -> ApiClient:
    return await aiohttp_client(create_app(events_settings))


@pytest.fixture
def static_root(settings: Any, tmp_path: Path) -> None:
    # WhiteNoise, in the admin's middleware, warns when STATIC_ROOT does not exist.
    settings.STATIC_ROOT = tmp_path


async def read_event(response: aiohttp.ClientResponse, seconds: float = 5.0) -> Event:
    """The next event (comments and the ``retry`` line skipped), as its fields."""
    fields: Event = {}
    async with asyncio.timeout(seconds):
        while True:
            raw = await response.content.readline()
            if not raw:
                raise EOFError("the stream ended")
            line = raw.decode().rstrip("\n")
            if not line:
                if "data" in fields:
                    return fields
                fields = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")


async def open_stream(api: ApiClient, last_id: str | None = None) -> aiohttp.ClientResponse:
    headers = {"Last-Event-ID": last_id} if last_id is not None else {}
    response = await api.get("/api/events", headers=headers)
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-store"
    return response


async def listening(api: ApiClient) -> aiohttp.ClientResponse:
    """A stream opened on a fresh app: its first event says listening has begun."""
    response = await open_stream(api)
    first = await read_event(response)
    assert first["event"] == "reload"
    assert orjson.loads(first["data"])["reason"] == "the server started listening for changes"
    return response


def change_of(event: Event) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(event["data"])
    assert event["event"] == "change"
    assert event["id"] == str(data["id"])
    return data


def admin_edit(client: Client, movie: Movie, title: str) -> None:
    data = {
        "title": title, "synopsis": movie.synopsis, "year": str(movie.year),
        "release_date": str(movie.release_date or ""),
        "runtime_minutes": str(movie.runtime_minutes or ""),
        "rating": "" if movie.rating is None else str(movie.rating),
        "wikipedia_slug": "", "poster_url": "",
        "genres": list(movie.genres.values_list("pk", flat=True)),
        "credits-TOTAL_FORMS": "0", "credits-INITIAL_FORMS": "0",
        "credits-MIN_NUM_FORMS": "0", "credits-MAX_NUM_FORMS": "1000",
        "version": versions.version_of(movie.pk),
    }  # fmt: skip
    response = client.post(reverse("admin:movies_movie_change", args=[movie.pk]), data)
    assert response.status_code == 302


async def edits_of(response: aiohttp.ClientResponse, movie: Movie) -> AsyncIterator[Event]:
    """Events of ``response`` that concern ``movie``."""
    while True:
        event = await read_event(response)
        if movie.pk in orjson.loads(event["data"]).get("movies", []):
            yield event


@NOTIFY
@pytest.mark.usefixtures("static_root")
async def test_a_stream_receives_an_admin_edit(
    events_api: ApiClient, catalogue: Catalogue, admin_client: Client
) -> None:
    heat = catalogue.movies["Heat"]
    stream = await listening(events_api)
    await orm(admin_edit, admin_client, heat, "Heat (1995)")
    event = await anext(edits_of(stream, heat))
    data = change_of(event)
    assert data == {
        "id": data["id"],
        "kind": "movie",
        "op": "update",
        "movies": [heat.pk],
        "people": [],
        "genres": [],
    }
    stream.close()


@NOTIFY
@pytest.mark.usefixtures("static_root")
async def test_last_event_id_resumes_with_what_was_missed(
    events_api: ApiClient, catalogue: Catalogue, admin_client: Client
) -> None:
    heat, alien = catalogue.movies["Heat"], catalogue.movies["Alien"]
    stream = await listening(events_api)
    await orm(admin_edit, admin_client, heat, "Heat (1995)")
    seen = change_of(await anext(edits_of(stream, heat)))
    stream.close()
    # While the client is away: two more edits.
    await orm(admin_edit, admin_client, alien, "Alien (1979)")
    await orm(admin_edit, admin_client, heat, "Heat")
    resumed = await open_stream(events_api, last_id=str(seen["id"]))
    missed = [change_of(await read_event(resumed)) for _ in range(2)]
    assert [change["movies"] for change in missed] == [[alien.pk], [heat.pk]]
    assert seen["id"] < missed[0]["id"] < missed[1]["id"]
    resumed.close()


@NOTIFY
async def test_an_id_outside_the_window_gets_a_reload(
    aiohttp_client: AppClient, events_settings: ApiSettings, catalogue: Catalogue
) -> None:
    api = await aiohttp_client(create_app(events_settings.model_copy(update={"events_window": 2})))
    stream = await listening(api)
    genres = [f"genre-{n}" for n in range(3)]
    for slug in genres:
        await orm(lambda slug=slug: Genre.objects.create(name=slug, slug=slug))
    ids = [change_of(await read_event(stream))["id"] for _ in genres]
    stream.close()

    too_old = await open_stream(api, last_id=str(ids[0]))  # the window holds ids[1:] only
    event = await read_event(too_old)
    assert event["event"] == "reload"
    assert event["id"] == str(ids[-1])  # where to resume from after reloading
    data = orjson.loads(event["data"])
    assert data == {
        "id": ids[-1],
        "kind": "all",
        "reason": f"event {ids[0]} is not among the last 2 of this server",
    }
    too_old.close()

    in_window = await open_stream(api, last_id=str(ids[1]))
    assert change_of(await read_event(in_window))["id"] == ids[2]
    in_window.close()

    garbage = await api.get("/api/events", headers={"Last-Event-ID": "yesterday"})
    assert garbage.status == 400
    assert (await json_of(garbage))["detail"] == (
        "Last-Event-ID must be the id of an event this API sent."
    )


@NOTIFY
async def test_every_worker_numbers_an_event_alike(
    aiohttp_client: AppClient, events_settings: ApiSettings, catalogue: Catalogue
) -> None:
    first = await aiohttp_client(create_app(events_settings))
    second = await aiohttp_client(create_app(events_settings))
    streams = [await listening(first), await listening(second)]
    heat = catalogue.movies["Heat"]

    def rename() -> None:
        heat.title = "Heat (1995)"
        heat.save()

    await orm(rename)
    events = [await anext(edits_of(stream, heat)) for stream in streams]
    assert events[0] == events[1]
    # So a client may resume on the other worker.
    resumed = await open_stream(second, last_id=events[0]["id"])
    await orm(rename)
    assert change_of(await read_event(resumed))["movies"] == [heat.pk]
    for stream in [*streams, resumed]:
        stream.close()


@NOTIFY
async def test_idle_streams_get_heartbeats(events_api: ApiClient) -> None:
    stream = await listening(events_api)
    lines: list[bytes] = []
    started = time.monotonic()
    async with asyncio.timeout(5):
        while lines.count(b": heartbeat\n") < 2:
            lines.append(await stream.content.readline())
    assert time.monotonic() - started >= 0.2
    stream.close()


@NOTIFY
async def test_shutdown_ends_open_streams_at_once(
    aiohttp_client: AppClient, api_settings: ApiSettings, catalogue: Catalogue
) -> None:
    # The default heartbeat (15 s): only the shutdown can end the streams.
    api = await aiohttp_client(create_app(api_settings))
    async with aiohttp.ClientSession() as session:
        # Only streams opened before the listener connects get its first event: wait
        # for it on one, then open the others (each open now pings the database).
        first = await session.get(api.make_url("/api/events"))
        await read_event(first)  # the listener is up
        streams = [first] + [await session.get(api.make_url("/api/events")) for _ in range(2)]
        for stream in streams:
            assert stream.status == 200
        started = time.monotonic()
        await api.server.close()
        assert time.monotonic() - started < 2
        for stream in streams:
            with pytest.raises(EOFError):
                await read_event(stream, seconds=1)


@pytest.mark.sqlite
async def test_sqlite_has_no_events(api: ApiClient) -> None:
    response = await api.get("/api/events")
    assert response.status == 503
    assert (await json_of(response))["detail"] == (
        "Change events need PostgreSQL (LISTEN/NOTIFY); this API runs on SQLite."
    )


# --- the feed alone ----------------------------------------------------------------------


async def drain(queue: asyncio.Queue[bytes]) -> list[bytes]:
    frames = []
    while not queue.empty():
        frames.append(queue.get_nowait())
    return frames


async def test_a_stream_that_falls_behind_is_ended_and_may_resume() -> None:
    feed = ChangeFeed(window=3)
    slow = feed.subscribe(None)
    for number in range(1, 3 + QUEUE_SLACK + 2):
        feed.publish(Change("movie", "update", movies=(number,), id=number))
    frames = await drain(slow)
    assert frames == [END]  # dropped, not left to grow
    assert feed.streams == 0
    # The window still holds the last three: a reconnect resumes from there.
    resumed = feed.subscribe(3 + QUEUE_SLACK)
    assert [frame.split(b"\n")[0] for frame in await drain(resumed)] == [
        b"id: %d" % (3 + QUEUE_SLACK + 1)
    ]


async def test_reset_and_close_reach_every_stream() -> None:
    feed = ChangeFeed(window=10)
    feed.publish(Change("genre", "create", genres=(1,), id=7))
    streams = [feed.subscribe(None), feed.subscribe(7)]
    feed.reset("the server reconnected to the database and may have missed changes")
    for stream in streams:
        (frame,) = await drain(stream)
        assert frame.startswith(b"event: reload\ndata: ")  # no id: the window is gone
    assert feed.last_id is None
    feed.close()
    assert [await drain(stream) for stream in streams] == [[END], [END]]
    assert await drain(feed.subscribe(None)) == [END]  # after shutdown, at once


def test_a_change_without_an_id_is_sent_without_one() -> None:
    frame = change_frame(Change("all", "update"))
    assert frame == (
        b'event: reload\ndata: {"id":null,"kind":"all","op":"update",'
        b'"movies":[],"people":[],"genres":[]}\n\n'
    )
