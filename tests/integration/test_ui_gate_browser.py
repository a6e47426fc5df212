"""The gate on the Models page, in a real browser: a refused candidate with its reason, a waiting
one approved through the page's dialog, and a version's model card."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, FrameLocator, Page, expect

from model_steps.store.cards import SECTIONS
from tests.integration.test_ui_browser import (
    VIEWPORT,
    artifacts,
    browser,
    open_models,
    sign_in,
)

pytestmark = pytest.mark.integration
__all__ = ["artifacts", "browser"]  # the browser tests' fixtures, shared

MODEL = "reviewed_iris"


@pytest.fixture(scope="module")
def reviewed(run_dag: Any, example_data: Path) -> None:
    """A candidate waiting for approval (v1), then one the gate refused (v2)."""
    assert run_dag(f"{MODEL}__train").state == "success"
    assert run_dag(f"{MODEL}__train", {"C": 0.0001}).state == "failed"


@pytest.fixture(scope="module")
def page(browser: Browser, airflow_api: Any, reviewed: None) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT)
    yield sign_in(context.new_page(), airflow_api, "admin")
    context.close()


def open_reviewed(page: Page, airflow_api: Any) -> FrameLocator:
    frame = open_models(page, airflow_api)
    frame.get_by_role("link", name=MODEL, exact=True).click()
    expect(frame.get_by_role("heading", name=MODEL, exact=True)).to_be_visible()
    return frame


def version_row(frame: FrameLocator, version: int) -> Any:
    return frame.get_by_role("table", name="versions").locator("tr", has_text=f"v{version}").first


def test_a_refused_candidate_shows_its_status_and_the_rule_that_failed(
    page: Page, airflow_api: Any, artifacts: Path
) -> None:
    frame = open_reviewed(page, airflow_api)
    row = version_row(frame, 2)
    expect(row).to_contain_text("refused")
    expect(row).to_contain_text("accuracy 0.4737 < 0.8 (accuracy >= 0.8)")
    expect(row.get_by_role("button", name="Approve v2")).to_have_count(0)
    row.get_by_text("Gate: refused").click()
    gate = frame.get_by_role("table", name="gate of version 2")
    expect(gate).to_contain_text("failed")
    page.screenshot(path=artifacts / "model-page-gate.png")


def test_a_failed_run_shows_its_failed_task_and_reason_linked_to_its_log(
    page: Page, airflow_api: Any
) -> None:
    frame = open_reviewed(page, airflow_api)
    failures = frame.get_by_role("list", name=re.compile(r"^failed tasks of "))
    expect(failures).to_contain_text("accuracy 0.4737 < 0.8")
    link = failures.get_by_role("link", name=re.compile(r"^log of "))
    task = link.inner_text()

    link.click()

    page.wait_for_url(re.compile(rf"/dags/{MODEL}__train/runs/[^/]+/tasks/{task}$"))
    expect(page.get_by_text(task).first).to_be_visible()


def test_approving_a_waiting_candidate_in_the_page_makes_it_live(
    page: Page, airflow_api: Any, airflow_rest: httpx.Client
) -> None:
    frame = open_reviewed(page, airflow_api)
    row = version_row(frame, 1)
    expect(row).to_contain_text("pending")
    row.get_by_role("button", name="Approve v1").click()
    dialog = frame.get_by_role("dialog")
    expect(dialog).to_contain_text("Approve version 1 of reviewed_iris?")
    dialog.get_by_label("Reason (optional)").fill("checked by hand")
    dialog.get_by_role("button", name="Approve", exact=True).click()
    expect(frame.get_by_role("status")).to_contain_text("Version 1 approved by admin")
    listing = airflow_rest.get(f"/model-steps/models/{MODEL}/versions").json()
    assert listing["current"] == 1
    first = next(v for v in listing["versions"] if v["version"] == 1)
    assert first["reason"] == "approved by admin: checked by hand"


def test_an_approved_version_shows_who_approved_it_instead_of_pending(
    page: Page, airflow_api: Any
) -> None:
    frame = open_reviewed(page, airflow_api)  # after the approval above
    row = version_row(frame, 1)
    expect(row).to_contain_text("Gate: approved by admin")
    expect(row).not_to_contain_text("Gate: pending")


def test_each_version_card_opens_in_the_page(page: Page, airflow_api: Any) -> None:
    frame = open_reviewed(page, airflow_api)
    version_row(frame, 2).get_by_role("button", name="Card").click()
    card = frame.locator("#card")
    expect(frame.get_by_role("heading", name="Model card of version 2")).to_be_visible()
    for title in SECTIONS:
        expect(card.get_by_role("heading", name=title, exact=True)).to_be_visible()
    expect(card).to_contain_text("refused by the gate")


@pytest.fixture(scope="module")
def airflow_rest(airflow_api: Any) -> Iterator[httpx.Client]:
    with airflow_api.client("admin") as client:
        yield client
