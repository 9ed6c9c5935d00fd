"""The curator's admin in headless Chromium, end to end: JavaScript widgets, inline
credits, filters, tokens and refusals as a curator meets them (tests/browser.py).

The tests share one site and one browser and run in file order; each logs in as
the user it needs. With UPDATE_DOCS_SCREENSHOTS=1 they also refresh the README's
screenshots under docs/.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import orjson
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select

from tests.browser import (
    CREDITED_FILM,
    CREDITS,
    EDITOR,
    EDITOR_PASSWORD,
    Browser,
    CuratorSite,
    EventStream,
)
from tests.live import SAMPLE, fetch

DOCS = Path(__file__).resolve().parent.parent / "docs"
SAMPLE_FILMS: list[dict[str, Any]] = json.loads(SAMPLE.read_text())


def screenshot_for_docs(browser: Browser, name: str, height: int = 900) -> None:
    """With UPDATE_DOCS_SCREENSHOTS=1, the page's top ``height`` pixels in docs/."""
    if os.environ.get("UPDATE_DOCS_SCREENSHOTS") != "1":
        return
    size = browser.driver.get_window_size()
    browser.driver.set_window_size(size["width"], height)
    try:
        browser.driver.save_screenshot(str(DOCS / name))
    finally:
        browser.driver.set_window_size(size["width"], size["height"])


def listed_titles(browser: Browser) -> list[str]:
    return [cell.text for cell in browser.find_all("#result_list tbody td.field-title")]


def api_movie(site: CuratorSite, movie_id: int) -> dict[str, Any]:
    reply = fetch(site.api.port, f"/api/movies/{movie_id}")
    assert reply.status == 200, reply.body[:500]
    movie: dict[str, Any] = orjson.loads(reply.body)
    return movie


def film_id(site: CuratorSite, title: str) -> int:
    [[found]] = site.sql(f"SELECT id FROM movies_movie WHERE title = '{title}'")
    return int(found)


def test_a_curator_logs_in_and_out(browser: Browser, curator_site: CuratorSite) -> None:
    browser.login(*curator_site.curator)
    assert browser.find("#site-name").text
    browser.submit("#logout-form [type=submit]")
    assert "Logged out" in browser.find("#content").text
    browser.open("/admin/movies/movie/")
    assert "/admin/login/" in browser.driver.current_url


def test_a_word_of_the_title_finds_the_film(browser: Browser, curator_site: CuratorSite) -> None:
    browser.login(*curator_site.curator)
    browser.open("/admin/movies/movie/")
    browser.fill("#searchbar", "falcon")
    browser.submit("#changelist-search [type=submit]")
    expected = {
        film["title"]
        for film in SAMPLE_FILMS
        if "falcon" in film["title"].lower() or any("falcon" in n.lower() for n in film["cast"])
    }
    assert expected, "the sample catalogue changed: pick another word"
    assert set(listed_titles(browser)) == expected
    assert browser.find("#searchbar").get_attribute("value") == "falcon"


def test_decade_and_genre_filters_narrow_the_list(
    browser: Browser, curator_site: CuratorSite
) -> None:
    browser.login(*curator_site.curator)
    browser.open("/admin/movies/movie/")
    browser.submit("#changelist-filter a[href*='decade=1950']")
    browser.submit("#changelist-filter a[href*='genre=comedy']")
    assert re.search(r"decade=1950", browser.driver.current_url)
    assert re.search(r"genre=comedy", browser.driver.current_url)
    expected = {
        film["title"]
        for film in SAMPLE_FILMS
        if 1950 <= film["year"] < 1960 and "Comedy" in film["genres"]
    }
    assert expected, "the sample catalogue changed: pick another decade"
    assert set(listed_titles(browser)) == expected
    selected = [a.text for a in browser.find_all("#changelist-filter li.selected a")]
    assert sorted(selected) == ["1950s", "Comedy"]
    browser.open("/admin/movies/movie/")
    screenshot_for_docs(browser, "admin-changelist.png")


def test_editing_a_film_with_60_credits_reaches_the_api_and_its_events(
    browser: Browser, curator_site: CuratorSite
) -> None:
    site, movie = curator_site, curator_site.film_id
    browser.login(*site.curator)
    browser.open(f"/admin/movies/movie/{movie}/change/")
    rows = browser.find_all("#credits-group tr.form-row.has_original")
    assert len(rows) == CREDITS
    poster = browser.find(".field-poster_preview img.poster")
    assert str(poster.get_attribute("src")).endswith("/static/posters/sixty.svg")
    assert browser.driver.execute_script("return arguments[0].naturalWidth", poster) > 0
    api_link = browser.find(".field-api_link a")
    assert api_link.get_attribute("href") == f"{site.api.base}/api/movies/{movie}"
    # Down to the first credits: the film, its release, the poster and the API link.
    screenshot_for_docs(browser, "admin-change.png", height=2100)

    def person_in_row(index: int) -> str:
        return Select(browser.find(f"#id_credits-{index}-person")).first_selected_option.text

    first, second, third = person_in_row(0), person_in_row(1), person_in_row(2)
    browser.fill("#id_title", f"{CREDITED_FILM}, Recut")
    browser.fill("#id_credits-0-billing_order", "1")  # the lead steps back one place
    browser.find("#id_credits-1-DELETE").click()  # the second leaves the cast
    # The newcomer, found through the person autocomplete of the blank row, leads.
    new_row = f"#credits-{CREDITS}"
    browser.find(f"{new_row} .select2-selection").click()
    browser.wait_for(".select2-container--open .select2-search__field").send_keys("Buster Kea")
    option = (By.XPATH, "//li[contains(@class, 'select2-results__option') and .='Buster Keaton']")
    browser.wait_until(expected_conditions.element_to_be_clickable(option)).click()
    assert person_in_row(CREDITS) == "Buster Keaton"
    browser.fill(f"#id_credits-{CREDITS}-billing_order", "0")
    browser.fill(f"#id_credits-{CREDITS}-character_name", "The Newcomer")

    events = EventStream(site.api.port)
    events.start()
    try:
        browser.submit("input[name=_save]")
        saved = time.monotonic()
        arrived = events.wait_for_change(movie)
    finally:
        events.stop()
    assert arrived - saved <= 1.0, f"the change event came {arrived - saved:.2f} s after saving"
    [message] = browser.messages()
    assert "was changed successfully" in message and f"{CREDITED_FILM}, Recut" in message

    served = api_movie(site, movie)
    assert served["title"] == f"{CREDITED_FILM}, Recut"
    cast = [member["name"] for member in served["cast"]]
    assert cast[:3] == ["Buster Keaton", first, third]
    assert second not in cast and len(cast) == CREDITS
    assert served["cast"][0]["character"] == "The Newcomer"

    browser.open(f"/admin/movies/movie/{movie}/history/")
    last = browser.find_all("#change-history tbody tr")[-1].text
    assert site.stack.curator in last
    for change in ("Changed Title", "Added credit", "Changed Billing order", "Deleted credit"):
        assert change in last, last


def test_a_token_is_shown_once_works_and_is_refused_once_revoked(
    browser: Browser, curator_site: CuratorSite
) -> None:
    site = curator_site
    browser.login(*site.curator)
    browser.open("/admin/movies/apitoken/add/")
    assert "shown once" in browser.find("fieldset .description").text
    browser.fill("#id_name", "browser test")
    browser.submit("input[name=_save]")
    issued, usage, added = browser.messages()
    match = re.fullmatch(r"Copy this token now, it will not be shown again: (\S+)", issued)
    assert match is not None, issued
    token = match[1]
    assert "Authorization: Bearer <token>" in usage and f"{site.api.base}/api/movies" in usage
    assert "browser test" in added
    browser.open("/admin/movies/apitoken/")
    assert token not in browser.driver.page_source

    movie = film_id(site, "Casablanca")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def patch(rating: float) -> Any:
        body = orjson.dumps({"rating": rating})
        return fetch(site.api.port, f"/api/movies/{movie}", "PATCH", body, headers)

    assert patch(8.6).status == 200
    assert api_movie(site, movie)["rating"] == 8.6

    row = browser.driver.find_element(
        By.XPATH, "//table[@id='result_list']//tr[.//*[normalize-space()='browser test']]"
    )
    row.find_element(By.CSS_SELECTOR, "input.action-select").click()
    Select(browser.find("select[name=action]")).select_by_value("revoke")
    browser.submit("#changelist-form button[name=index]")
    assert browser.messages() == ["Revoked 1 token(s)."]
    refused = patch(1.0)
    assert refused.status == 401
    assert orjson.loads(refused.body)["detail"] == "The token is invalid or revoked."
    assert api_movie(site, movie)["rating"] == 8.6


def test_a_curator_without_delete_rights_has_no_delete_button_and_a_forged_post_fails(
    browser: Browser, curator_site: CuratorSite
) -> None:
    movie = film_id(curator_site, "Psycho")
    browser.login(EDITOR, EDITOR_PASSWORD)
    browser.open("/admin/movies/movie/")
    actions = [o.get_attribute("value") for o in browser.find_all("select[name=action] option")]
    assert "delete_selected" not in actions
    browser.open(f"/admin/movies/movie/{movie}/change/")
    assert browser.find("input[name=_save]").is_displayed()
    assert browser.find_all(".deletelink") == []
    # The delete page's form, forged: the editor's own session and CSRF token.
    status, body = browser.driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const form = new URLSearchParams({
            csrfmiddlewaretoken: document.querySelector("[name=csrfmiddlewaretoken]").value,
            post: "yes",
        });
        fetch(arguments[0], {method: "POST", body: form, credentials: "same-origin"})
            .then(response => response.text().then(text => done([response.status, text])));
        """,
        f"/admin/movies/movie/{movie}/delete/",
    )
    assert status == 403
    assert "permission" in body.lower(), body[:500]
    assert api_movie(curator_site, movie)["title"] == "Psycho"


def test_a_validation_error_keeps_the_input_and_says_what_is_wrong(
    browser: Browser, curator_site: CuratorSite
) -> None:
    movie = film_id(curator_site, "Vertigo")
    browser.login(*curator_site.curator)
    browser.open(f"/admin/movies/movie/{movie}/change/")
    browser.fill("#id_title", "Vertigo (restored)")
    browser.fill("#id_year", "1800")
    browser.submit("input[name=_save]")
    assert browser.find(".errornote").text == "Please correct the error below."
    assert "greater than or equal to 1870" in browser.find(".field-year .errorlist").text
    assert browser.find("#id_title").get_attribute("value") == "Vertigo (restored)"
    assert browser.find("#id_year").get_attribute("value") == "1800"
    assert api_movie(curator_site, movie)["title"] == "Vertigo"


def shown(value: Any) -> str:
    """A value as the conflict table shows it."""
    return "(empty)" if value in (None, "") else str(value)


def test_a_stale_form_shows_the_conflict_and_keeps_an_api_patch(
    browser: Browser, curator_site: CuratorSite
) -> None:
    site = curator_site
    movie = film_id(site, "Chinatown")
    before = api_movie(site, movie)
    browser.login(*site.curator)
    browser.open(f"/admin/movies/movie/{movie}/change/")
    # Meanwhile a client changes the synopsis and the rating through the API.
    headers = {"Authorization": f"Bearer {site.stack.token}", "Content-Type": "application/json"}
    body = orjson.dumps({"synopsis": "Water, power and a private eye.", "rating": 9.1})
    assert fetch(site.api.port, f"/api/movies/{movie}", "PATCH", body, headers).status == 200
    browser.fill("#id_title", "Chinatown (restored)")
    browser.submit("input[name=_save]")

    assert browser.find(".errornote").text == "Please correct the error below."
    assert "Someone changed this film since you opened it. Nothing was saved." in (
        browser.find("#content-main .errorlist.nonfield").text
    )
    rows = [
        [cell.text for cell in row.find_elements(By.CSS_SELECTOR, "th, td")]
        for row in browser.find_all("#version-conflict tbody tr")
    ]
    synopsis, rating = (shown(before[name]) for name in ("synopsis", "rating"))
    assert rows == [
        ["Title", "Chinatown", "Chinatown", "Chinatown (restored)"],
        ["Synopsis", synopsis, "Water, power and a private eye.", synopsis],
        ["Rating", rating, "9.1", rating],
    ]
    served = api_movie(site, movie)
    assert (served["title"], served["synopsis"], served["rating"]) == (
        "Chinatown", "Water, power and a private eye.", 9.1,
    )  # fmt: skip

    # The form now holds the curator's title and the API's synopsis and rating.
    assert browser.find("#id_title").get_attribute("value") == "Chinatown (restored)"
    assert browser.find("#id_synopsis").get_attribute("value") == "Water, power and a private eye."
    assert browser.find("#id_rating").get_attribute("value") == "9.1"
    assert browser.find_all("a.reload-film") == []
    browser.submit("input[name=_save]")
    assert "was changed successfully" in browser.messages()[0]
    served = api_movie(site, movie)
    assert (served["title"], served["synopsis"], served["rating"]) == (
        "Chinatown (restored)", "Water, power and a private eye.", 9.1,
    )  # fmt: skip
