"""The Models page as the operator's console, in a real browser on the real API server.

Reasons typed in a dialog reach Airflow's audit log; every version links to its training run in
Airflow; "Train now" takes the model's parameters and shows the server's refusal of a bad value;
a rollback offers the inference a new version would have started; the versions table keeps its
actions on a 1280 px page; two versions compare side by side; the page refreshes by itself
without closing an open dialog.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from playwright.sync_api import Browser, FrameLocator, Page, ViewportSize, expect

from tests.integration.test_broken_definition import broken
from tests.integration.test_ui_browser import (
    DAGS,
    MODEL,
    artifacts,
    browser,
    open_model,
    open_models,
    paused,
    rest,
    sign_in,
    trained_iris,
    versions,
)

pytestmark = pytest.mark.integration
__all__ = ["artifacts", "broken", "browser", "rest", "trained_iris"]  # fixtures, shared

NARROW: ViewportSize = {"width": 1280, "height": 1000}


@pytest.fixture(scope="module")
def admin(browser: Browser, airflow_api: Any, trained_iris: None) -> Iterator[Page]:
    context = browser.new_context(viewport=NARROW)
    yield sign_in(context.new_page(), airflow_api, "admin")
    context.close()


def newest_run(rest: httpx.Client, dag_id: str) -> dict[str, Any]:
    response = rest.get(f"/api/v2/dags/{dag_id}/dagRuns", params={"order_by": "-id", "limit": 1})
    assert response.status_code == 200, response.text
    run: dict[str, Any] = response.json()["dag_runs"][0]
    return run


def dialog_of(frame: FrameLocator, action: str) -> Any:
    frame.get_by_role("button", name=action, exact=True).click()
    dialog = frame.get_by_role("dialog")
    expect(dialog).to_be_visible()
    return dialog


def test_the_reason_typed_in_the_resume_dialog_is_in_each_dags_audit_log(
    admin: Page, airflow_api: Any, rest: httpx.Client
) -> None:
    frame = open_model(admin, airflow_api)
    dialog = dialog_of(frame, "Resume")
    try:
        dialog.get_by_label("Reason (optional)").fill("back from maintenance")
        dialog.get_by_role("button", name="Resume", exact=True).click()
        expect(frame.get_by_role("status")).to_have_text("Resumed iris__train and iris__infer.")
    finally:
        rest.post(f"/model-steps/models/{MODEL}/pause", json={})
    for dag_id in DAGS:
        logs = rest.get(
            "/api/v2/eventLogs", params={"event": "model_steps_resume", "dag_id": dag_id}
        )
        entry = logs.json()["event_logs"][-1]
        assert json.loads(entry["extra"])["reason"] == "back from maintenance"
        assert entry["owner"] == "admin"


def test_the_versions_actions_are_visible_at_1280_px_with_three_metrics(
    admin: Page, airflow_api: Any, rest: httpx.Client, artifacts: Path
) -> None:
    listing = versions(rest)
    frame = open_model(admin, airflow_api)
    table = frame.get_by_role("table", name="versions")
    metrics = table.locator("thead th.number")
    assert metrics.count() >= 3
    older = [v["version"] for v in listing["versions"] if not v["is_current"]]
    for version in older:  # in view across: the page may still scroll down to a row
        button = table.get_by_role("button", name=f"Roll back to v{version}")
        button.scroll_into_view_if_needed()
        box = button.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= NARROW["width"]
    assert frame.locator("body").evaluate("() => window.scrollX") == 0
    wrap = frame.locator(".table-wrap", has=table)
    assert wrap.evaluate("w => w.scrollWidth <= w.clientWidth")  # no sideways scrolling
    admin.screenshot(path=artifacts / "model-page-1280.png", full_page=True)


def test_a_versions_run_link_opens_its_training_run_in_airflow(
    admin: Page, airflow_api: Any, rest: httpx.Client
) -> None:
    version = versions(rest)["versions"][-1]
    frame = open_model(admin, airflow_api)

    frame.get_by_role("link", name=f"training run of v{version['version']}").click()

    run_path = f"/dags/iris__train/runs/{version['run_id']}"
    admin.wait_for_url(lambda url: unquote(url).endswith(run_path))
    expect(admin.get_by_text(version["run_id"]).first).to_be_visible()


def test_train_now_starts_a_run_with_the_parameter_typed_in_the_form(
    admin: Page, airflow_api: Any, rest: httpx.Client, new_runs: list[tuple[str, str]]
) -> None:
    frame = open_model(admin, airflow_api)
    dialog = dialog_of(frame, "Train now")
    dialog.get_by_label("C (number)").fill("0.5")
    dialog.get_by_role("button", name="Train", exact=True).click()

    expect(frame.get_by_role("status")).to_contain_text("Started iris__train run")
    run = newest_run(rest, "iris__train")
    new_runs.append(("iris__train", run["dag_run_id"]))
    assert (run["conf"], run["triggering_user_name"]) == ({"C": 0.5}, "admin")


def test_train_now_shows_why_a_value_is_refused_and_starts_nothing(
    admin: Page, airflow_api: Any, rest: httpx.Client
) -> None:
    before = newest_run(rest, "iris__train")["dag_run_id"]
    frame = open_model(admin, airflow_api)
    dialog = dialog_of(frame, "Train now")
    dialog.get_by_label("C (number)").fill("-1")
    dialog.get_by_role("button", name="Train", exact=True).click()

    alert = frame.get_by_role("alert")
    expect(alert).to_contain_text("C")
    expect(alert).to_contain_text("minimum")
    assert newest_run(rest, "iris__train")["dag_run_id"] == before


def test_a_running_run_shows_how_many_of_its_tasks_are_done(
    admin: Page, airflow_api: Any, rest: httpx.Client, new_runs: list[tuple[str, str]]
) -> None:
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState

    started = rest.post(f"/model-steps/models/{MODEL}/train", json={}).json()
    new_runs.append((started["dag_id"], started["run_id"]))
    with create_session() as session:
        run = session.query(DagRun).filter_by(dag_id=DAGS[0], run_id=started["run_id"]).one()
        run.state = DagRunState.RUNNING
        tasks = session.query(TaskInstance).filter_by(dag_id=DAGS[0], run_id=run.run_id).all()
        tasks[0].state = TaskInstanceState.SUCCESS

    frame = open_model(admin, airflow_api)

    running = frame.get_by_role("link", name=f"running run {started['run_id']}")
    expect(running).to_be_visible()
    expect(frame.get_by_label("progress")).to_have_text(f"1 of {len(tasks)} tasks done")


def test_a_rollback_from_the_page_can_start_inference_with_the_version(
    admin: Page, airflow_api: Any, rest: httpx.Client, new_runs: list[tuple[str, str]]
) -> None:
    listing = versions(rest)
    older = next(v["version"] for v in listing["versions"] if not v["is_current"])
    frame = open_model(admin, airflow_api)
    dialog = dialog_of(frame, f"Roll back to v{older}")
    expect(dialog).to_contain_text("inference scheduled on new versions does not start")
    dialog.get_by_label(f"Start iris__infer now with version {older}").check()
    dialog.get_by_role("button", name="Roll back", exact=True).click()

    expect(frame.get_by_role("status")).to_contain_text("Started iris__infer run")
    run = newest_run(rest, "iris__infer")
    new_runs.append(("iris__infer", run["dag_run_id"]))
    assert versions(rest)["current"] == older


def test_two_versions_compare_side_by_side_with_what_changed(
    admin: Page, airflow_api: Any, rest: httpx.Client
) -> None:
    trained = {v["parameters"].get("C"): v["version"] for v in versions(rest)["versions"]}
    first, second = trained[1.0], trained[0.02]  # trained_iris trains with both
    frame = open_model(admin, airflow_api)
    frame.get_by_label("Compare", exact=True).select_option(f"{first}")
    frame.get_by_label("with", exact=True).select_option(f"{second}")

    table = frame.get_by_role("table", name=f"v{first} compared with v{second}")
    row = table.locator("tr", has_text="parameter C")
    expect(row).to_contain_text("changed")  # iris is trained with C 1.0, then 0.02
    expect(table.locator("tr", has_text="test.accuracy")).to_be_visible()


def test_the_page_refreshes_itself_and_keeps_an_open_dialog(
    admin: Page, airflow_api: Any, rest: httpx.Client
) -> None:
    assert paused(rest) == dict.fromkeys(DAGS, True)
    frame = open_model(admin, airflow_api)
    dialog = dialog_of(frame, "Train now")
    dialog.get_by_label("Reason (optional)").fill("half typed")
    try:
        rest.post(f"/model-steps/models/{MODEL}/resume", json={})
        admin.wait_for_timeout(12_000)  # longer than the page's refresh interval
        expect(dialog.get_by_label("Reason (optional)")).to_have_value("half typed")
        dialog.get_by_role("button", name="Cancel").click()
        expect(frame.get_by_role("button", name="Pause", exact=True)).to_be_enabled(timeout=15_000)
    finally:
        rest.post(f"/model-steps/models/{MODEL}/pause", json={})


def test_a_check_an_evaluation_skipped_shows_as_a_note_on_its_version(
    admin: Page, airflow_api: Any, rest: httpx.Client
) -> None:
    from model_steps.store.manifest import EvaluationRecord, ResourceUsage
    from model_steps.store.model_store import open_store

    live = versions(rest)["current"]
    skipped = "drift not checked: version {live} recorded no training distributions"
    open_store(f"{os.environ['MODEL_STEPS_ASSETS_ROOT']}/{MODEL}").write_evaluation(
        EvaluationRecord(
            name="iris__evaluate manual__skipped",
            model=MODEL,
            version=live,
            run_id="manual__skipped",
            start_date_time="2026-12-07T06:00:00+00:00",
            end_date_time="2026-12-07T06:00:01+00:00",
            performance=[],
            input_path="fresh.csv",
            row_count=10,
            resources=ResourceUsage(wall_seconds=1, cpu_seconds=1, peak_memory_bytes=1),
            degraded=False,
            skipped_checks=[skipped.format(live=live)],
        )
    )
    frame = open_model(admin, airflow_api)

    row = frame.locator("tr[aria-current='true']")
    expect(row.get_by_role("note")).to_have_text(f"Check skipped: {skipped.format(live=live)}")


def test_a_model_whose_file_is_broken_shows_the_files_problems_and_its_versions(
    admin: Page, airflow_api: Any, broken: Any
) -> None:
    frame = open_models(admin, airflow_api)
    frame.get_by_role("link", name="typo_iris", exact=True).click()

    expect(frame.get_by_role("alert").first).to_contain_text("typo_iris.yaml is broken")
    problems = frame.get_by_role("list", name="problems of the definition file")
    expect(problems).to_contain_text("typo_iris.yaml:21")
    expect(frame.get_by_role("table", name="versions").locator("tbody tr")).to_have_count(2)
