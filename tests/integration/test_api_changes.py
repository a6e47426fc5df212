"""Changes through the Models API, each recorded in Airflow's audit log of every DAG it touches.

The reason a person gives is checked (plain text, bounded) and recorded; "Train now" starts a
run with parameters the model's rules accept, and refuses a value they do not; a rollback can
start the inference that a new version would have started. All against the real API server.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

pytestmark = pytest.mark.integration

PREFIX = "/model-steps"
MODEL = "api_iris"
DAGS = (f"{MODEL}__train", f"{MODEL}__infer")


@pytest.fixture(scope="module")
def trained(run_dag: Any, example_data: Path, admin: httpx.Client) -> Iterator[int]:
    """``api_iris`` with two versions or more; the version live before the module is restored."""
    for _ in range(2):
        assert run_dag(f"{MODEL}__train").state == "success"
    live: int = admin.get(f"{PREFIX}/models/{MODEL}/versions").json()["current"]
    yield live
    admin.post(f"{PREFIX}/models/{MODEL}/rollback", json={"version": live})


def audit_entries(admin: httpx.Client, event: str, dag_id: str) -> list[dict[str, Any]]:
    response = admin.get("/api/v2/eventLogs", params={"event": event, "dag_id": dag_id})
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["event_logs"]
    return entries


def test_a_rollback_is_in_each_dags_audit_log_with_its_user_and_reason(
    admin: httpx.Client, trained: int
) -> None:
    body = {"version": trained - 1, "reason": "v2 mislabels setosa"}
    response = admin.post(f"{PREFIX}/models/{MODEL}/rollback", json=body)
    assert response.status_code == 200, response.text
    for dag_id in DAGS:
        entry = audit_entries(admin, "model_steps_rollback", dag_id)[-1]
        assert (entry["dag_id"], entry["owner"]) == (dag_id, "admin")
        assert json.loads(entry["extra"]) == {
            "model": MODEL,
            "version": trained - 1,
            "reason": "v2 mislabels setosa",
            "infer": False,
            "method": "POST",
        }


def test_a_resume_is_in_each_dags_audit_log(admin: httpx.Client) -> None:
    try:
        assert admin.post(f"{PREFIX}/models/{MODEL}/resume", json={}).status_code == 200
        owners = [audit_entries(admin, "model_steps_resume", d)[-1]["owner"] for d in DAGS]
        assert owners == ["admin", "admin"]
    finally:
        admin.post(f"{PREFIX}/models/{MODEL}/pause", json={})


def test_a_refused_change_is_not_recorded(viewer: httpx.Client, admin: httpx.Client) -> None:
    before = len(audit_entries(admin, "model_steps_resume", DAGS[0]))
    response = viewer.post(f"{PREFIX}/models/{MODEL}/resume", json={"reason": "try"})
    assert response.status_code == 403
    assert len(audit_entries(admin, "model_steps_resume", DAGS[0])) == before


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"reason": "x" * 2001}, "body.reason: String should have at most 2000 characters"),
        ({"reason": "ok\x1b[31m"}, "body.reason: Value error, must be plain text"),
        ({"reason": "fine", "run_as": "root"}, "body.run_as: Extra inputs are not permitted"),
        ({"reason": ["a"]}, "body.reason: Input should be a valid string"),
    ],
)
def test_a_bad_reason_is_refused_and_not_recorded(
    admin: httpx.Client, body: dict[str, Any], message: str
) -> None:
    before = len(audit_entries(admin, "model_steps_pause", DAGS[0]))
    response = admin.post(f"{PREFIX}/models/{MODEL}/pause", json=body)
    assert response.status_code == 422
    assert response.json()["detail"].startswith(message)
    assert len(audit_entries(admin, "model_steps_pause", DAGS[0])) == before


def test_train_now_queues_a_run_with_the_given_parameters(
    admin: httpx.Client, new_runs: list[tuple[str, str]]
) -> None:
    body = {"params": {"feature_store_token": "rotated"}, "reason": "new token"}
    response = admin.post(f"{PREFIX}/models/{MODEL}/train", json=body)
    assert response.status_code == 200, response.text
    started = response.json()
    new_runs.append((started["dag_id"], started["run_id"]))
    assert started["dag_id"] == DAGS[0]
    assert started["url"] == f"/dags/{DAGS[0]}/runs/{quote(started['run_id'], safe='')}"
    run = admin.get(f"/api/v2/dags/{DAGS[0]}/dagRuns/{started['run_id']}").json()
    assert (run["conf"], run["run_type"], run["triggering_user_name"]) == (
        {"feature_store_token": "rotated"},
        "manual",
        "admin",
    )
    entry = audit_entries(admin, "model_steps_train", DAGS[0])[-1]
    assert json.loads(entry["extra"])["reason"] == "new token"


def test_train_now_refuses_a_value_the_parameters_rules_refuse(admin: httpx.Client) -> None:
    response = admin.post(
        f"{PREFIX}/models/{MODEL}/train", json={"params": {"feature_store_token": 5}}
    )
    assert response.status_code == 422
    assert "feature_store_token" in response.json()["detail"]
    assert "5 is not of type 'string'" in response.json()["detail"]


def test_train_now_refuses_a_parameter_the_model_does_not_have(admin: httpx.Client) -> None:
    response = admin.post(f"{PREFIX}/models/{MODEL}/train", json={"params": {"C": 0.5}})
    assert response.status_code == 422
    assert response.json()["detail"] == (
        f"model '{MODEL}' has no parameter(s) C (its parameters: feature_store_token)"
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"feature_store_token": {"$where": "1"}}, "body.params.feature_store_token"),
        ({"feature_store_token": "x" * 1001}, "body.params.feature_store_token"),
        ({f"p{i}": 1 for i in range(101)}, "body.params: Dictionary should have at most 100 items"),
    ],
)
def test_train_now_refuses_a_hostile_body(
    admin: httpx.Client, params: dict[str, Any], message: str
) -> None:
    response = admin.post(f"{PREFIX}/models/{MODEL}/train", json={"params": params})
    assert response.status_code == 422
    assert response.json()["detail"].startswith(message)


def test_a_viewer_may_not_train(viewer: httpx.Client) -> None:
    assert viewer.post(f"{PREFIX}/models/{MODEL}/train", json={}).status_code == 403


def test_a_rollback_asked_to_infer_starts_the_infer_dag(
    admin: httpx.Client, trained: int, new_runs: list[tuple[str, str]]
) -> None:
    versions = admin.get(f"{PREFIX}/models/{MODEL}/versions").json()
    older = next(v["version"] for v in versions["versions"] if not v["is_current"])
    response = admin.post(
        f"{PREFIX}/models/{MODEL}/rollback", json={"version": older, "infer": True}
    )
    assert response.status_code == 200, response.text
    run = response.json()["infer_run"]
    new_runs.append((run["dag_id"], run["run_id"]))
    assert run["dag_id"] == DAGS[1]
    found = admin.get(f"/api/v2/dags/{DAGS[1]}/dagRuns/{run['run_id']}")
    assert found.status_code == 200
    assert found.json()["state"] == "queued"


def test_a_running_run_shows_how_many_of_its_tasks_are_done(
    admin: httpx.Client, new_runs: list[tuple[str, str]]
) -> None:
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState

    started = admin.post(f"{PREFIX}/models/{MODEL}/train", json={}).json()
    new_runs.append((started["dag_id"], started["run_id"]))
    with create_session() as session:
        run = session.query(DagRun).filter_by(dag_id=DAGS[0], run_id=started["run_id"]).one()
        run.state = DagRunState.RUNNING
        first = session.query(TaskInstance).filter_by(dag_id=DAGS[0], run_id=run.run_id).first()
        assert first is not None
        first.state = TaskInstanceState.SUCCESS
        total = session.query(TaskInstance).filter_by(dag_id=DAGS[0], run_id=run.run_id).count()

    listing = admin.get(f"{PREFIX}/models").json()
    model = next(m for m in listing["models"] if m["name"] == MODEL)
    last = next(d for d in model["dags"] if d["dag_id"] == DAGS[0])["last_run"]
    assert (last["run_id"], last["state"]) == (started["run_id"], "running")
    assert last["task_states"] == {"success": 1, "none": total - 1}
