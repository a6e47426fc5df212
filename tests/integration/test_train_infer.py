"""Models train, publish and infer for real, through dag.test() on the session's Airflow DB."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from model_steps.store.model_store import ModelStore, open_store
from tests.integration.conftest import S3_SECRET

pytestmark = pytest.mark.integration

DATA_ROOT = Path(os.environ["MODEL_STEPS_DATA_ROOT"])
ASSETS_ROOT = os.environ["MODEL_STEPS_ASSETS_ROOT"]


def local_store(name: str) -> ModelStore:
    return open_store(f"{ASSETS_ROOT}/{name}")


def latest_predictions(model: str) -> pd.DataFrame:
    """The newest predictions file (each infer run writes its own, named for its run id)."""
    path = max((DATA_ROOT / model / "predictions").glob("*"), key=lambda p: p.stat().st_mtime_ns)
    return pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)


def plain_iris_predictions(c: float = 1.0) -> list[str]:
    """The same model written as a plain scikit-learn script, for comparison."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = pd.read_csv(DATA_ROOT / "iris" / "train.csv")
    features, target = frame.drop(columns="species"), frame["species"]
    x_train, _, y_train, _ = train_test_split(
        features, target, test_size=0.25, random_state=42, stratify=target
    )
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=500))
    pipeline.fit(x_train, y_train)
    return list(pipeline.predict(pd.read_csv(DATA_ROOT / "iris" / "score.csv")))


@dataclass(frozen=True)
class Trained:
    """Two training runs of iris and the versions they should have published."""

    outcomes: list[Any]
    versions: list[int]

    @property
    def latest(self) -> int:
        return self.versions[-1]


@pytest.fixture(scope="module")
def iris_trained_twice(run_dag: Any, example_data: Path) -> Trained:
    """Other tests of the session may have trained iris already: count on from where it is."""
    before = local_store("iris").pointer()
    start = before.version if before else 0
    return Trained([run_dag("iris__train"), run_dag("iris__train")], [start + 1, start + 2])


def test_each_training_run_publishes_the_next_version(iris_trained_twice: Trained) -> None:
    assert [outcome.state for outcome in iris_trained_twice.outcomes] == ["success", "success"]
    store = local_store("iris")
    assert store.versions()[-2:] == iris_trained_twice.versions
    assert store.pointer().version == iris_trained_twice.latest


def test_the_store_holds_the_layout_handlers_rely_on(iris_trained_twice: Trained) -> None:
    root = Path(ASSETS_ROOT) / "iris"
    files = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    version = f"versions/{iris_trained_twice.latest}"
    assert {
        "current.json",
        f"{version}/manifest.json",
        f"{version}/MODEL_CARD.md",
        f"{version}/scale/scaler.joblib",
        f"{version}/classify/model.joblib",
    } <= files
    assert not any(name.startswith("runs/") for name in files), "scratch must be cleaned up"


def test_the_manifest_records_what_an_auditor_needs(iris_trained_twice: Trained) -> None:
    store = local_store("iris")
    version = iris_trained_twice.latest
    manifest = store.manifest(version)
    assert (manifest.model, manifest.version, manifest.definition_version) == (
        "iris",
        version,
        "1.0.0",
    )
    assert manifest.dag_id == "iris__train"
    assert len(manifest.spec_hash) == 64
    assert set(manifest.metrics) == {"train", "test"}
    assert manifest.metrics["test"]["accuracy"] > 0.8
    assert manifest.parameters == {"C": 1.0}
    assert "scikit-learn" in manifest.environment
    assert manifest.comments[0]["author"] == "ml-platform"
    assert len(manifest.sample_records) == 5
    for step in manifest.steps:
        assert step.cpu_seconds >= 0 and step.peak_memory_bytes > 0
        data = (Path(step.asset.url.removeprefix("file://"))).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (step.asset.size, step.asset.sha256)


def test_inference_predicts_what_the_plain_scikit_learn_pipeline_predicts(
    iris_trained_twice: Trained, run_dag: Any
) -> None:
    outcome = run_dag("iris__infer")
    assert outcome.state == "success", outcome.errors
    assert list(latest_predictions("iris")["prediction"]) == plain_iris_predictions()


def test_a_custom_callable_step_trains_and_infers(run_dag: Any, example_data: Path) -> None:
    from sklearn.linear_model import Ridge

    from model_code.features import add_interactions

    assert run_dag("diabetes__train").state == "success"
    assert run_dag("diabetes__infer").state == "success"
    frame = pd.read_parquet(DATA_ROOT / "diabetes" / "train.parquet")
    from sklearn.model_selection import train_test_split

    features, target = frame.drop(columns="progression"), frame["progression"]
    x_train, _, y_train, _ = train_test_split(features, target, test_size=0.2, random_state=7)
    pairs = [["bmi", "bp"], ["age", "s6"]]
    model = Ridge(alpha=0.5).fit(add_interactions(x_train, pairs), y_train)
    score = pd.read_parquet(DATA_ROOT / "diabetes" / "score.parquet")
    expected = model.predict(add_interactions(score, pairs))
    assert latest_predictions("diabetes")["prediction"].round(9).tolist() == list(expected.round(9))


def test_the_gated_example_evaluates_its_live_version_on_the_labelled_example_data(
    run_dag: Any, example_data: Path
) -> None:
    if local_store("diabetes").pointer() is None:
        assert run_dag("diabetes__train").state == "success"
    outcome = run_dag("diabetes__evaluate")
    assert outcome.task_states == {"evaluate": "success", "degraded": "skipped"}
    store = local_store("diabetes")
    record = store.evaluations(store.pointer().version)[-1]
    assert record.row_count == 150 and not record.degraded, record.reasons
    assert record.metric("r2") > 0.3
    assert store.manifest(store.pointer().version).gate.outcome == "accepted"


def test_a_triggered_run_can_override_a_parameter(run_dag: Any, example_data: Path) -> None:
    assert run_dag("iris__train", conf={"C": 0.05}).state == "success"
    store = local_store("iris")
    assert store.manifest(store.pointer().version).parameters == {"C": 0.05}


def test_publish_emits_an_asset_event_with_the_new_version(iris_trained_twice: Trained) -> None:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        extras = session.scalars(
            select(AssetEvent.extra)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.name == "model-steps.iris")
        ).all()
    announced = [extra["version"] for extra in extras]
    assert [v for v in announced if v in iris_trained_twice.versions] == iris_trained_twice.versions


def test_a_failing_step_leaves_the_published_version_untouched(
    run_dag: Any, example_data: Path
) -> None:
    assert run_dag("failing__train").state == "success"
    pointer = Path(ASSETS_ROOT) / "failing" / "current.json"
    before = pointer.read_bytes()
    outcome = run_dag("failing__train", conf={"fail": True})
    assert outcome.state == "failed"
    assert "the step failed on purpose" in outcome.errors["maybe_fail"]
    assert pointer.read_bytes() == before
    assert local_store("failing").versions() == [1]


def test_inference_refuses_an_asset_whose_bytes_changed(
    iris_trained_twice: Trained, run_dag: Any
) -> None:
    store = local_store("iris")
    manifest = store.manifest(store.pointer().version)
    asset = Path(manifest.asset("classify").url.removeprefix("file://"))
    original = asset.read_bytes()
    try:
        asset.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
        outcome = run_dag("iris__infer")
    finally:
        asset.write_bytes(original)
    assert outcome.state == "failed"
    assert "does not match its manifest" in outcome.errors["classify"]


def test_a_model_on_s3_trains_publishes_and_infers_with_connection_credentials(
    run_dag: Any, example_data: Path, s3_models: dict[str, Any]
) -> None:
    assert run_dag("iris_s3__train").state == "success"
    outcome = run_dag("iris_s3__infer")
    assert outcome.state == "success", outcome.errors
    store = open_store(f"{s3_models['root']}/iris", s3_models["storage_options"])
    assert store.versions() == [1]
    assert store.manifest(1).steps[1].asset.url.startswith("s3://")
    assert list(latest_predictions("iris_s3")["prediction"]) == plain_iris_predictions()


def test_connection_secrets_appear_in_no_manifest_card_log_or_rendered_field(
    run_dag: Any, example_data: Path, s3_models: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.utils.session import create_session
    from sqlalchemy import select

    assert run_dag("iris_s3__train").state == "success"
    store = open_store(f"{s3_models['root']}/iris", s3_models["storage_options"])
    version = store.pointer().version
    documents = [
        store.fs.cat_file(store.path("versions", str(version), name)).decode()
        for name in ("manifest.json", "MODEL_CARD.md")
    ]
    with create_session() as session:
        rendered = session.scalars(
            select(RenderedTaskInstanceFields.rendered_fields).where(
                RenderedTaskInstanceFields.dag_id == "iris_s3__train"
            )
        ).all()
    assert rendered, "the run stored its rendered fields"
    for text in [*documents, str(rendered), caplog.text]:
        assert S3_SECRET not in text
