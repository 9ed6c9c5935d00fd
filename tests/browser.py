"""A real browser on a real admin: Debian's Chromium, driven by Selenium, against the
Django admin and aioapi under Gunicorn on a database of the throw-away cluster.

Registered through ``pytest_plugins`` in tests/conftest.py. ``curator_site`` and
``browser`` are made once per module that asks for them. Without Chromium the
tests are skipped, saying what to install, except under CI (``CI`` set), where a
missing browser is a failure: CI installs it (.ci/run). A failed test leaves a
screenshot and the page's HTML in ``BROWSER_ARTIFACTS_DIR``
(``test-results/browser/`` by default), named after the test.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.live import REPO, Server, Stack, make_stack, manage
from tests.pgcluster import Cluster

DATABASE = "mymoviedb_browser"
ARTIFACTS = Path(os.environ.get("BROWSER_ARTIFACTS_DIR", REPO / "test-results" / "browser"))
INSTALL = "apt-get install chromium chromium-driver"
# Long enough for a page on a busy 2-core machine, short enough to fail a hang fast.
WAIT_SECONDS = 15
EDITOR = "editor"  # a curator without delete permissions
EDITOR_PASSWORD = "editor-password-for-browser-tests"
CREDITED_FILM = "The Sixty Credits"
CREDITS = 60

# A curator who may add, change and view the catalogue but delete nothing.
CREATE_EDITOR = f"""
from django.contrib.auth.models import Permission, User
user = User.objects.create_user({EDITOR!r}, password={EDITOR_PASSWORD!r}, is_staff=True)
user.user_permissions.set(Permission.objects.filter(
    content_type__app_label="movies",
    codename__regex=r"^(add|change|view)_(movie|credit|person|genre)$",
))
"""


def chromium() -> tuple[str, str]:
    """The paths of Chromium and its driver; a skip (a failure under CI) without them."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        reason = f"needs Chromium and its WebDriver ({INSTALL})"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser tests: {reason}", pytrace=False)
        pytest.skip(reason)
    return browser, driver


def _left_the_document(old: WebElement) -> Any:
    """A wait condition: ``old`` belongs to a page that has been replaced.

    Selenium's ``staleness_of`` knows only the stale-element error; asked in the
    middle of the navigation, chromedriver may answer "Node with given id does not
    belong to the document" instead (a flaky CI failure), which says the same."""

    def replaced(_driver: Any) -> bool:
        try:
            old.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as error:
            if "does not belong to the document" in str(error):
                return True
            raise
        return False

    return replaced


@dataclass
class CuratorSite:
    """The admin and the API on one database, with the accounts the tests log in as."""

    stack: Stack
    admin: Server
    api: Server
    film_id: int  # the film with CREDITS cast credits

    @property
    def curator(self) -> tuple[str, str]:
        return self.stack.curator, self.stack.password

    def sql(self, query: str) -> list[list[str]]:
        return self.stack.cluster.psql(query, database=self.stack.database)


# The poster's host: public by movies.posters' rule, loopback to the browser.
POSTER_HOST = "posters.example.org"


def poster_svg(title: str) -> str:
    """A plain poster, served as a static file: the browser fetches nothing from outside."""
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="300">'
        '<rect width="200" height="300" fill="#264b5d"/>'
        '<text x="100" y="150" font-family="sans-serif" font-size="18" fill="#fff" '
        f'text-anchor="middle">{title}</text></svg>'
    )


@pytest.fixture(scope="module")
def curator_site(
    pg_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CuratorSite]:
    """``mymoviedb_browser``: the sample catalogue, a film with 60 cast credits, the demo
    curator and an editor without delete rights; aioapi and the admin serving it."""
    chromium()  # before minutes of set-up that a missing browser would waste
    workdir = tmp_path_factory.mktemp("browser")
    static = workdir / "static"
    stack = make_stack(pg_cluster, DATABASE, workdir, STATIC_ROOT=str(static))
    try:
        manage(stack.env, "collectstatic", "--no-input", "-v0")
        # WhiteNoise indexes STATIC_ROOT when the admin starts: the poster is there first.
        (static / "posters").mkdir()
        (static / "posters" / "sixty.svg").write_text(poster_svg(CREDITED_FILM))
        film = {
            "title": CREDITED_FILM, "year": 1999, "genres": ["Drama"],
            "cast": [f"Player {n:02d} Example" for n in range(1, CREDITS + 1)],
            "href": "The_Sixty_Credits", "extract": "A film with a crowded cast.",
        }  # fmt: skip
        (workdir / "sixty.json").write_bytes(orjson.dumps([film]))
        manage(stack.env, "import_movies", str(workdir / "sixty.json"))
        manage(stack.env, "shell", "-c", CREATE_EDITOR)
        api = stack.api("browser-api")
        stack.env["API_PUBLIC_URL"] = api.base
        admin = stack.admin("browser-admin", threads=4)
        site = CuratorSite(stack, admin, api, 0)
        [[film_id]] = site.sql(f"SELECT id FROM movies_movie WHERE title = '{CREDITED_FILM}'")
        site.film_id = int(film_id)
        # A poster on a public host name (the admin refuses loopback ones), which the
        # browser resolves to the admin's static files (Browser's host rules).
        poster = f"http://{POSTER_HOST}:{admin.port}/static/posters/sixty.svg"
        site.sql(f"UPDATE movies_movie SET poster_url = '{poster}' WHERE id = {film_id}")
        yield site
    finally:
        stack.stop_all()


class Browser:
    """Headless Chromium on one site; every wait ends in WAIT_SECONDS or fails."""

    def __init__(self, base: str) -> None:
        binary, driver = chromium()
        options = webdriver.ChromeOptions()
        options.binary_location = binary
        for argument in (
            "--headless=new",
            "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
            "--disable-dev-shm-usage",
            "--window-size=1280,900",
            "--disable-gpu",
            "--lang=en-US",
            f"--host-resolver-rules=MAP {POSTER_HOST} 127.0.0.1",
        ):
            options.add_argument(argument)
        self.driver = webdriver.Chrome(options=options, service=Service(executable_path=driver))
        self.base = base

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def wait_for(self, css: str) -> WebElement:
        locator = (By.CSS_SELECTOR, css)
        element: WebElement = WebDriverWait(self.driver, WAIT_SECONDS).until(
            expected_conditions.visibility_of_element_located(locator)
        )
        return element

    def wait_until(self, condition: Any, message: str = "") -> Any:
        return WebDriverWait(self.driver, WAIT_SECONDS).until(condition, message)

    def fill(self, css: str, text: str) -> None:
        element = self.find(css)
        element.clear()
        element.send_keys(text)

    def submit(self, css: str) -> None:
        """Click ``css`` and wait for the page it loads."""
        old = self.find("html")
        self.find(css).click()
        self.wait_until(_left_the_document(old), f"no new page after {css}")

    def messages(self) -> list[str]:
        return [element.text for element in self.find_all("ul.messagelist li")]

    def login(self, username: str, password: str) -> None:
        self.driver.delete_all_cookies()
        self.open("/admin/login/")
        self.fill("#id_username", username)
        self.fill("#id_password", password)
        self.submit("#login-form [type=submit]")
        # The admin's CSS upper-cases the greeting; WebDriver returns text as shown.
        greeting = self.find("#user-tools").text.lower()
        assert f"welcome, {username}" in greeting, self.find("body").text[:500]

    def save_artefacts(self, name: str) -> list[Path]:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        stem = re.sub(r"[^\w.-]+", "_", name)
        png, html = ARTIFACTS / f"{stem}.png", ARTIFACTS / f"{stem}.html"
        self.driver.save_screenshot(str(png))
        html.write_text(self.driver.page_source)
        return [png, html]

    def quit(self) -> None:
        self.driver.quit()


@pytest.fixture(scope="module")
def browser(curator_site: CuratorSite) -> Iterator[Browser]:
    """One headless Chromium for the module, on the admin of ``curator_site``."""
    session = Browser(curator_site.admin.base)
    try:
        yield session
    finally:
        session.quit()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failed browser test keeps what the browser showed, and says where."""
    report = yield
    session = getattr(item, "funcargs", {}).get("browser")
    if report.failed and isinstance(session, Browser):
        try:
            saved = session.save_artefacts(f"{item.name}-{report.when}")
        except Exception as error:  # noqa: BLE001 - the test's own failure matters more
            saved = [f"could not save the page: {error!r}"]  # type: ignore[list-item]
        report.sections.append(("browser artefacts", "\n".join(map(str, saved))))
    return report


@dataclass
class EventStream:
    """``/api/events`` read on a thread; each event kept with when it arrived."""

    port: int
    events: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)
    _connection: http.client.HTTPConnection | None = None
    _reader: threading.Thread | None = None
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    def start(self) -> None:
        self._connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        self._connection.request("GET", "/api/events", headers={"Host": "localhost"})
        response = self._connection.getresponse()
        assert response.status == 200, response.read()[:500]
        self._reader = threading.Thread(target=self._read, args=(response,), daemon=True)
        self._reader.start()

    def _read(self, response: http.client.HTTPResponse) -> None:
        fields: dict[str, str] = {}
        try:
            for raw in response:
                line = raw.decode().rstrip("\n")
                if line.startswith(":"):
                    continue
                if line:
                    name, _, value = line.partition(":")
                    fields[name] = value.removeprefix(" ")
                    continue
                if "data" in fields:
                    with self._arrived:
                        event = (time.monotonic(), fields["event"], orjson.loads(fields["data"]))
                        self.events.append(event)
                        self._arrived.notify_all()
                fields = {}
        except (OSError, ValueError, http.client.HTTPException):
            return  # the socket was shut down by stop()

    def wait_for_change(self, movie_id: int, timeout: float = 10) -> float:
        """When the first change event naming ``movie_id`` arrived."""
        with self._arrived:
            found = self._arrived.wait_for(
                lambda: self._change_time(movie_id) is not None, timeout=timeout
            )
            assert found, f"no change event for film {movie_id}: {self.events}"
            arrived = self._change_time(movie_id)
            assert arrived is not None
            return arrived

    def _change_time(self, movie_id: int) -> float | None:
        for arrived, kind, data in self.events:
            if kind == "change" and movie_id in data.get("movies", []):
                return arrived
        return None

    def stop(self) -> None:
        """Shut the socket down, which ends the reader; then close the connection."""
        if self._connection is None:
            return
        if self._connection.sock is not None:
            self._connection.sock.shutdown(socket.SHUT_RDWR)
        if self._reader is not None:
            self._reader.join(timeout=10)
        self._connection.close()
