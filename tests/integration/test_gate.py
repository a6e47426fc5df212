"""Only better models reach the handlers: the gate, approval, cards and evaluations, for real.

Each model here is the tests' own (tests/data/dagbag/gate/), trained with dag.test() on the
session's Airflow DB: the gate's refusals leave the pointer and a running handler's version as
they were; approval goes through the command line and the Models API with their permission
checks; an evaluation that finds the live version degraded makes the scheduler due to retrain.
"""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from model_steps.cli import main
from model_steps.serving import ModelHandler
from model_steps.store.cards import NOT_PROVIDED, SECTIONS
from model_steps.store.model_store import ModelStore, open_store
from tests.integration.conftest import AirflowApi

pytestmark = pytest.mark.integration

DATA_ROOT = Path(os.environ["MODEL_STEPS_DATA_ROOT"])
ASSETS_ROOT = os.environ["MODEL_STEPS_ASSETS_ROOT"]
RECORD = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


def store_of(name: str) -> ModelStore:
    return open_store(f"{ASSETS_ROOT}/{name}")


def asset_events(name: str) -> list[dict[str, Any]]:
    """The extra of every event of an Airflow Asset, oldest first."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(AssetEvent.extra)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.name == name)
            .order_by(AssetEvent.id)
        )
        return [dict(extra or {}) for extra in rows]


# -- the gate's rules --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gated(run_dag: Any, example_data: Path, session_dags: Path) -> Iterator[dict[str, Any]]:
    """gated_iris: a good first version, a running handler, then two worse candidates."""
    first = run_dag("gated_iris__train")
    handler = ModelHandler.from_definition(
        session_dags / "gate" / "gated_iris.yaml", storage_options={}, poll_interval=0.05
    ).start()
    try:
        absolute = run_dag("gated_iris__train", {"C": 0.0001})  # accuracy 0.47 < 0.8
        relative = run_dag("gated_iris__train", {"C": 0.1})  # f1 0.845 < live 0.923 - 0.01
        handler.poll_once()
        yield {"first": first, "absolute": absolute, "relative": relative, "handler": handler}
    finally:
        handler.stop()


def test_a_candidate_that_passes_every_rule_goes_live(gated: dict[str, Any]) -> None:
    assert gated["first"].state == "success"
    assert gated["first"].task_states == {
        "check": "success",
        "scale": "success",
        "classify": "success",
        "gate": "success",
        "publish": "success",
    }
    manifest = store_of("gated_iris").manifest(1)
    assert manifest.gate is not None and manifest.gate.outcome == "accepted"
    relative = next(r for r in manifest.gate.rules if "live" in r.rule)
    assert relative.passed is None  # nothing was live to compare with


def test_a_candidate_below_an_absolute_rule_is_refused_and_the_run_fails_saying_why(
    gated: dict[str, Any],
) -> None:
    outcome = gated["absolute"]
    assert outcome.state == "failed"
    assert outcome.task_states["gate"] == "failed"
    assert outcome.task_states["publish"] == "upstream_failed"
    assert (
        "version 2 refused by the gate: accuracy 0.4737 < 0.8 (accuracy >= 0.8)"
        in (outcome.errors["gate"])
    )


def test_a_candidate_worse_than_live_on_the_same_test_split_is_refused(
    gated: dict[str, Any],
) -> None:
    outcome = gated["relative"]
    assert outcome.state == "failed"
    assert "f1_macro 0.8452 < 0.913 (f1_macro >= live - 0.01)" in outcome.errors["gate"]
    store = store_of("gated_iris")
    gate = store.manifest(3).gate
    assert gate is not None and gate.live_version == 1
    # The live version was scored on this run's test split: the same rows it was tested on.
    assert gate.live_metrics == store.manifest(1).metrics["test"]
    assert gate.candidate_metrics == store.manifest(3).metrics["test"]


def test_refused_candidates_are_kept_with_their_reason_and_never_move_the_pointer(
    gated: dict[str, Any],
) -> None:
    store = store_of("gated_iris")
    assert store.pointer().version == 1
    assert store.versions() == [1, 2, 3]
    assert [store.status(v, 1) for v in (1, 2, 3)] == ["live", "refused", "refused"]
    assert "accuracy 0.4737 < 0.8" in store.manifest(2).gate.reason
    assert "# Model Details" in store.card(2)


def test_a_running_handler_keeps_serving_the_live_version_through_refusals(
    gated: dict[str, Any],
) -> None:
    handler: ModelHandler = gated["handler"]
    assert handler.predict(RECORD).version == 1
    assert handler.status.reload_failures == 0


def test_a_refused_version_cannot_be_rolled_back_to(gated: dict[str, Any], capsys: Any) -> None:
    assert main(["rollback", "gated_iris", "--to", "2"]) == 1
    assert "version 2 is refused, not published" in capsys.readouterr().err
    assert store_of("gated_iris").pointer().version == 1


def test_versions_lists_each_candidate_with_its_status_and_reason(
    gated: dict[str, Any], capsys: Any
) -> None:
    assert main(["versions", "gated_iris"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "STATUS" in lines[0] and "NOTE" in lines[0]
    assert lines[1].split()[:3] == ["*", "1", "live"]
    assert "refused by the gate: accuracy 0.4737 < 0.8" in lines[2]
    assert "f1_macro 0.8452 < 0.913" in lines[3]


# -- the model card ----------------------------------------------------------------------------


def test_the_card_of_a_published_version_has_every_section_with_its_manifest_numbers(
    gated: dict[str, Any], capsys: Any
) -> None:
    assert main(["card", "gated_iris", "--version", "1"]) == 0
    card = capsys.readouterr().out
    manifest = store_of("gated_iris").manifest(1)
    for title in SECTIONS:
        assert f"\n# {title}\n" in card
    assert f"{manifest.metrics['test']['accuracy']:.4g}" in card
    assert "112 rows (train), 38 rows (test)" in card
    assert "'setosa', 'versicolor', 'virginica'" in card
    assert "C=1.0, max_iter=500" in card  # hyperparameters as rendered for the run
    assert f"{manifest.timings.train_cpu_seconds:.4g} s CPU" in card
    assert "ms per record at warm-up" in card
    assert "**Developed by:** The model-steps gate tests" in card
    assert f"**Funded by:** {NOT_PROVIDED}" in card  # a gap the reviewer sees
    assert "curl -s localhost:8000/predict" in card
    assert "| `f1_macro >= live - 0.01` |" in card


# -- approval ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def waiting(run_dag: Any, example_data: Path) -> Any:
    """approved_iris trained once: its candidate waits for a person."""
    return run_dag("approved_iris__train")


def test_a_candidate_that_needs_approval_waits_and_nothing_goes_live(waiting: Any) -> None:
    assert waiting.state == "success"
    assert waiting.task_states["gate"] == "success"
    assert waiting.task_states["publish"] == "skipped"
    store = store_of("approved_iris")
    assert store.pointer() is None
    assert store.status(1, None) == "pending"
    assert asset_events("model-steps.approved_iris") == []


def test_a_run_whose_candidate_waits_leaves_no_scratch_and_runs_lists_nothing(
    waiting: Any, capsys: Any
) -> None:
    store = store_of("approved_iris")
    assert store.runs() == []
    assert store.fs.exists(store.path("versions", "1", "manifest.json"))
    assert main(["runs", "approved_iris"]) == 0
    assert capsys.readouterr().out.startswith("approved_iris: no run left scratch in ")


def audit_rows(event: str) -> list[tuple[str | None, str | None, dict[str, Any]]]:
    """Airflow's audit log rows of ``event``: DAG id, owner and extra, oldest first."""
    from airflow.models.log import Log
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(Log.dag_id, Log.owner, Log.extra).where(Log.event == event).order_by(Log.id)
        )
        return [(dag_id, owner, json.loads(extra or "{}")) for dag_id, owner, extra in rows]


def test_promote_refuses_a_by_that_is_not_the_user_running_it(waiting: Any, capsys: Any) -> None:
    assert main(["promote", "approved_iris", "--version", "1", "--by", "mallory"]) == 1
    assert "--by 'mallory' is not you" in capsys.readouterr().err
    assert store_of("approved_iris").status(1, None) == "pending"


def test_promote_on_the_command_line_makes_it_live_and_tells_airflow(
    waiting: Any, capsys: Any
) -> None:
    user = getpass.getuser()
    assert main(["promote", "approved_iris", "--version", "1", "--by", user]) == 0
    assert f"version 1 approved by {user}; the live version is now 1" in capsys.readouterr().out
    store = store_of("approved_iris")
    assert store.pointer().version == 1
    assert store.decision(1).by == user
    assert asset_events("model-steps.approved_iris")[-1]["version"] == 1


def test_promote_on_the_command_line_is_in_each_dags_audit_log_under_the_os_user(
    waiting: Any,
) -> None:
    rows = [row for row in audit_rows("model_steps_approve") if row[2].get("via")]
    assert [(dag_id, owner) for dag_id, owner, _ in rows] == [
        ("approved_iris__train", getpass.getuser())
    ]
    assert rows[0][2] | {"host_name": "h"} == {
        "via": "model-steps",
        "host_name": "h",
        "model": "approved_iris",
        "version": 1,
        "reason": None,
    }


def test_a_second_decision_on_the_same_candidate_is_refused(waiting: Any, capsys: Any) -> None:
    assert main(["reject", "approved_iris", "--version", "1", "--reason", "late"]) == 1
    assert "not waiting for approval" in capsys.readouterr().err


@pytest.fixture(scope="module")
def two_more_waiting(run_dag: Any, waiting: Any) -> list[Any]:
    return [run_dag("approved_iris__train"), run_dag("approved_iris__train")]


def test_a_viewer_cannot_approve_through_the_api(
    airflow_api: AirflowApi, two_more_waiting: list[Any]
) -> None:
    with airflow_api.client("viewer") as viewer:
        response = viewer.post("/model-steps/models/approved_iris/versions/2/approve", json={})
    assert response.status_code == 403
    assert store_of("approved_iris").status(2, 1) == "pending"


def test_an_editor_approves_through_the_api_and_it_is_audited(
    airflow_api: AirflowApi, two_more_waiting: list[Any]
) -> None:

    with airflow_api.client("admin") as admin:
        response = admin.post(
            "/model-steps/models/approved_iris/versions/2/approve", json={"reason": "looks good"}
        )
        again = admin.post("/model-steps/models/approved_iris/versions/2/approve", json={})
    assert response.status_code == 200, response.text
    assert response.json() | {"by": "admin"} == {
        "model": "approved_iris",
        "version": 2,
        "action": "approved",
        "by": "admin",
        "live_version": 2,
        "announced": True,
    }
    assert again.status_code == 409
    assert store_of("approved_iris").pointer().version == 2
    assert asset_events("model-steps.approved_iris")[-1]["approved_by"] == "admin"
    approval = {"model": "approved_iris", "version": 2, "reason": "looks good", "method": "POST"}
    attempt = {"model": "approved_iris", "version": 2, "method": "POST"}  # the 409 is audited too
    assert audit_rows("model_steps_approve")[-2:] == [
        ("approved_iris__train", "admin", approval),  # its only DAG: it has no infer step
        ("approved_iris__train", "admin", attempt),
    ]


def test_a_rejection_needs_a_reason_and_keeps_the_candidate_out_of_service(
    airflow_api: AirflowApi, two_more_waiting: list[Any]
) -> None:
    with airflow_api.client("admin") as admin:
        bare = admin.post("/model-steps/models/approved_iris/versions/3/reject", json={})
        rejected = admin.post(
            "/model-steps/models/approved_iris/versions/3/reject", json={"reason": "drifted"}
        )
        listing = admin.get("/model-steps/models/approved_iris/versions").json()
    assert bare.status_code == 422
    assert rejected.status_code == 200
    third = next(v for v in listing["versions"] if v["version"] == 3)
    assert (third["status"], third["reason"]) == ("rejected", "rejected by admin: drifted")
    assert store_of("approved_iris").pointer().version == 2


# -- evaluations -------------------------------------------------------------------------------


def write_fresh(rows: pd.DataFrame) -> None:
    folder = DATA_ROOT / "watched_iris"
    folder.mkdir(parents=True, exist_ok=True)
    rows.to_csv(folder / "fresh.csv", index=False)


@pytest.fixture(scope="module")
def watched(run_dag: Any, example_data: Path) -> dict[str, Any]:
    """watched_iris trained, then evaluated on good data and on degraded, drifted data."""
    trained = run_dag("watched_iris__train")
    labelled = pd.read_csv(example_data / "iris" / "train.csv")
    write_fresh(labelled)
    healthy = run_dag("watched_iris__evaluate")
    events_before = len(asset_events("model-steps.watched_iris.degraded"))
    worse = labelled.assign(
        species=labelled["species"].sample(frac=1, random_state=0).to_numpy(),
        petal_length=labelled["petal_length"] + 3.0,
    )
    write_fresh(worse)
    degraded = run_dag("watched_iris__evaluate")
    return {
        "trained": trained,
        "healthy": healthy,
        "degraded": degraded,
        "events_before": events_before,
    }


def test_an_evaluation_on_good_data_is_recorded_and_signals_nothing(
    watched: dict[str, Any],
) -> None:
    assert watched["healthy"].state == "success"
    assert watched["healthy"].task_states == {"evaluate": "success", "degraded": "skipped"}
    first = store_of("watched_iris").evaluations(1)[0]
    assert not first.degraded
    assert first.row_count == 150
    assert first.input_path == str(DATA_ROOT / "watched_iris" / "fresh.csv")  # {{ params.fresh }}
    assert first.drift_rows == dict.fromkeys(first.drift, 150)
    assert first.metric("accuracy") > 0.9
    assert watched["events_before"] == 0


def test_an_evaluation_that_finds_degradation_records_why_and_updates_the_degraded_asset(
    watched: dict[str, Any],
) -> None:
    assert watched["degraded"].task_states == {"evaluate": "success", "degraded": "success"}
    record = store_of("watched_iris").evaluations(1)[-1]
    assert record.degraded
    assert record.process_type == "Model evaluation"
    assert any(r.startswith("accuracy ") and "(accuracy >= 0.8)" in r for r in record.reasons)
    assert any(r.startswith("petal_length drifted") for r in record.reasons)
    assert record.drift["petal_length"] > 0.25 > record.drift["sepal_width"]
    [event] = asset_events("model-steps.watched_iris.degraded")
    assert event["version"] == 1 and event["reasons"] == record.reasons


def test_degradation_queues_a_training_run_that_publishes_the_next_version(
    watched: dict[str, Any], run_dag: Any
) -> None:
    from airflow.models.asset import AssetDagRunQueue, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:  # what the scheduler turns into an asset-triggered run
        queued = session.scalars(
            select(AssetDagRunQueue.target_dag_id)
            .join(AssetModel, AssetDagRunQueue.asset_id == AssetModel.id)
            .where(AssetModel.name == "model-steps.watched_iris.degraded")
        )
        assert list(queued) == ["watched_iris__train"]
    retrained = run_dag("watched_iris__train")
    assert retrained.state == "success"
    assert store_of("watched_iris").pointer().version == 2


def test_versions_shows_the_latest_evaluation(watched: dict[str, Any], capsys: Any) -> None:
    assert main(["versions", "watched_iris"]) == 0
    out = capsys.readouterr().out
    assert "(2 in all)" in out and "degraded: accuracy" in out
