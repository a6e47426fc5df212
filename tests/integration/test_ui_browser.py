"""The Models page in a real browser: Airflow's login, its navigation, the page in its frame.

Headless Chromium (Debian's package) drives the session's real ``airflow api-server``: it signs
in through Airflow's own login form, opens "Models" from Airflow's navigation and works in the
page Airflow frames, while Airflow's REST API confirms what changed. Screenshots of the list and
a model page (light and dark) land in ``$MODEL_STEPS_TEST_ARTIFACTS`` (``.artifacts/ui/``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, FrameLocator, Page, ViewportSize, expect, sync_playwright

from tests.conftest import REPO

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT: ViewportSize = {"width": 1400, "height": 1800}
MODEL = "iris"
DAGS = ("iris__train", "iris__infer")
INVALID_FILE = "broken/iris_typo.yaml"


@pytest.fixture(scope="module")
def artifacts() -> Path:
    folder = Path(os.environ.get("MODEL_STEPS_TEST_ARTIFACTS") or REPO / ".artifacts" / "ui")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def rest(airflow_api: Any) -> Iterator[httpx.Client]:
    """Airflow's REST API as the admin: the independent witness of what the page changed."""
    with airflow_api.client("admin") as client:
        yield client


@pytest.fixture(scope="module")
def trained_iris(run_dag: Any, example_data: Path, rest: httpx.Client) -> Iterator[None]:
    """iris trained twice (two regularisations: the metrics differ); its pointer restored after."""
    for regularisation in (1.0, 0.02):
        outcome = run_dag(f"{MODEL}__train", conf={"C": regularisation})
        assert outcome.state == "success", outcome.errors
    live = versions(rest)["current"]
    yield
    if versions(rest)["current"] != live:
        restored = rest.post(f"/model-steps/models/{MODEL}/rollback", json={"version": live})
        assert restored.status_code == 200, restored.text


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def admin(browser: Browser, airflow_api: Any, trained_iris: None) -> Iterator[Page]:
    """A page signed in as the admin through Airflow's login form."""
    context = browser.new_context(viewport=VIEWPORT)
    yield sign_in(context.new_page(), airflow_api, "admin")
    context.close()


def sign_in(page: Page, airflow_api: Any, user: str) -> Page:
    page.goto(f"{airflow_api.base_url}/")
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(airflow_api.password(user))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{airflow_api.base_url}/")
    return page


def open_models(page: Page, airflow_api: Any) -> FrameLocator:
    """Airflow's home, then its "Models" navigation entry: the page Airflow frames."""
    page.goto(f"{airflow_api.base_url}/")
    page.get_by_role("link", name="Models").click()
    frame = page.frame_locator("iframe[title='Models']")
    expect(frame.get_by_role("heading", name="Models", exact=True)).to_be_visible()
    return frame


def open_model(page: Page, airflow_api: Any) -> FrameLocator:
    frame = open_models(page, airflow_api)
    frame.get_by_role("link", name=MODEL, exact=True).click()
    expect(frame.get_by_role("heading", name=MODEL, exact=True)).to_be_visible()
    return frame


def confirm(frame: FrameLocator, button: str, confirmation: str | None = None) -> None:
    """Click an action, then confirm it in the page's dialog (its button repeats the action)."""
    frame.get_by_role("button", name=button, exact=True).click()
    dialog = frame.get_by_role("dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name=confirmation or button, exact=True).click()
    expect(dialog).to_be_hidden()


def versions(rest: httpx.Client) -> dict[str, Any]:
    response = rest.get(f"/model-steps/models/{MODEL}/versions")
    assert response.status_code == 200, response.text
    listing: dict[str, Any] = response.json()
    return listing


def paused(rest: httpx.Client) -> dict[str, bool]:
    """Each of the model's DAGs' pause state, as Airflow's own REST API reports it."""
    states = {}
    for dag_id in DAGS:
        response = rest.get(f"/api/v2/dags/{dag_id}")
        assert response.status_code == 200, response.text
        states[dag_id] = response.json()["is_paused"]
    return states


def background(frame: FrameLocator) -> str:
    return str(frame.locator("body").evaluate("body => getComputedStyle(body).backgroundColor"))


def airflow_background(page: Page) -> str:
    """The background colour token of Airflow's own UI in its current colour mode."""
    script = "getComputedStyle(document.documentElement).getPropertyValue('--chakra-colors-bg')"
    return str(page.evaluate(script)).strip()


def set_colour_mode(page: Page, mode: str) -> None:
    """Switch Airflow's colour mode the way a user does: User > Appearance > mode."""
    page.get_by_role("button", name="User").click()
    page.get_by_role("menuitem", name="Appearance").hover()
    page.get_by_role("menuitemradio", name=mode).click()


def test_models_entry_lists_every_model_and_each_invalid_file(
    admin: Page, airflow_api: Any, rest: httpx.Client, artifacts: Path
) -> None:
    listing = rest.get("/model-steps/models").json()
    frame = open_models(admin, airflow_api)

    models = frame.get_by_role("list", name="models")
    for model in listing["models"]:
        expect(models.get_by_role("link", name=model["name"], exact=True)).to_be_visible()
    iris = models.get_by_role("listitem", name=MODEL, exact=True)
    for text in ("deployed", "@daily", "on new version", *DAGS):
        expect(iris).to_contain_text(text)
    invalid = frame.get_by_role("list", name="definition files with errors")
    expect(invalid.get_by_role("listitem", name=INVALID_FILE, exact=True)).to_contain_text(
        "line 6:3 schedule.train unknown preset '@dayly'"
    )
    admin.screenshot(path=artifacts / "models-list.png")


def test_model_page_shows_every_version_and_a_chart_of_the_chosen_metric(
    admin: Page, airflow_api: Any, rest: httpx.Client, artifacts: Path
) -> None:
    published = versions(rest)
    frame = open_model(admin, airflow_api)

    rows = frame.get_by_role("table", name="versions").locator("tbody tr")
    expect(rows).to_have_count(len(published["versions"]))
    expect(rows.first).to_contain_text(f"v{published['versions'][0]['version']}")
    expect(frame.locator("tr[aria-current='true']")).to_contain_text(f"v{published['current']}")
    chart = frame.get_by_role("img", name="test.accuracy across versions")
    expect(chart.locator("circle")).to_have_count(len(published["versions"]))
    frame.get_by_role("combobox", name="Metric").select_option("train.f1_macro")
    expect(frame.get_by_role("img", name="train.f1_macro across versions")).to_be_visible()
    admin.screenshot(path=artifacts / "model-page.png")


def test_resume_and_pause_after_confirmation_change_both_dags_in_airflow(
    admin: Page, airflow_api: Any, rest: httpx.Client
) -> None:
    assert paused(rest) == dict.fromkeys(DAGS, True)  # the example starts paused
    frame = open_model(admin, airflow_api)

    confirm(frame, "Resume")
    expect(frame.get_by_role("status")).to_have_text("Resumed iris__train and iris__infer.")
    assert paused(rest) == dict.fromkeys(DAGS, False)
    confirm(frame, "Pause")
    expect(frame.get_by_role("status")).to_have_text("Paused iris__train and iris__infer.")
    assert paused(rest) == dict.fromkeys(DAGS, True)


def test_cancelling_the_confirmation_changes_nothing(
    admin: Page, airflow_api: Any, rest: httpx.Client
) -> None:
    before = paused(rest)
    frame = open_model(admin, airflow_api)

    frame.get_by_role("button", name="Resume", exact=True).click()
    frame.get_by_role("dialog").get_by_role("button", name="Cancel").click()

    expect(frame.get_by_role("dialog")).to_be_hidden()
    assert paused(rest) == before


def test_rollback_after_confirmation_serves_the_chosen_version(
    admin: Page, airflow_api: Any, rest: httpx.Client
) -> None:
    oldest = versions(rest)["versions"][-1]["version"]
    frame = open_model(admin, airflow_api)

    confirm(frame, f"Roll back to v{oldest}", "Roll back")

    expect(frame.get_by_role("status")).to_contain_text(f"iris now serves version {oldest}")
    expect(frame.locator("tr[aria-current='true']")).to_contain_text(f"v{oldest}")
    assert versions(rest)["current"] == oldest


def test_dag_link_opens_the_dag_in_airflow(admin: Page, airflow_api: Any) -> None:
    frame = open_models(admin, airflow_api)

    frame.get_by_role("link", name="iris__train", exact=True).click()

    admin.wait_for_url(f"{airflow_api.base_url}/dags/iris__train")
    expect(admin.get_by_role("heading", name="iris__train").first).to_be_visible()


def test_page_follows_airflow_colour_mode_as_the_user_toggles_it(
    admin: Page, airflow_api: Any, artifacts: Path
) -> None:
    frame = open_model(admin, airflow_api)
    light = background(frame)
    try:
        set_colour_mode(admin, "Dark Mode")
        expect(frame.locator("html")).to_have_class("dark")
        assert background(frame) == airflow_background(admin) != light
        admin.screenshot(path=artifacts / "model-page-dark.png")
    finally:
        set_colour_mode(admin, "Light Mode")
    expect(frame.locator("html")).not_to_have_class("dark")
    assert background(frame) == light


def test_an_unknown_model_shows_the_api_message(admin: Page, airflow_api: Any) -> None:
    frame = open_models(admin, airflow_api)

    frame.locator("body").evaluate("() => { location.hash = '#/models/no_such_model'; }")

    expect(frame.get_by_role("alert")).to_have_text("no model named 'no_such_model'")
    expect(frame.get_by_role("link", name="Back to the models")).to_be_visible()


def test_an_ended_session_tells_the_user_to_sign_in_again(
    browser: Browser, airflow_api: Any
) -> None:
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = sign_in(context.new_page(), airflow_api, "admin")
        frame = open_models(page, airflow_api)
        context.clear_cookies()  # the session ends (expired or signed out elsewhere)
        frame.get_by_role("link", name=MODEL, exact=True).click()
        expect(frame.get_by_role("alert")).to_contain_text(
            "Your Airflow session has ended (Not authenticated): reload the page to sign in again."
        )
    finally:
        context.close()


def test_a_viewer_sees_why_a_change_is_refused(
    browser: Browser, airflow_api: Any, rest: httpx.Client
) -> None:
    before = paused(rest)
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = sign_in(context.new_page(), airflow_api, "viewer")
        frame = open_model(page, airflow_api)
        confirm(frame, "Resume")
        expect(frame.get_by_role("alert")).to_contain_text(
            "You need edit permission on both of the model's DAGs to do this: user 'viewer'"
        )
    finally:
        context.close()
    assert paused(rest) == before
