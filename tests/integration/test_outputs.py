"""Outputs a user can use: carried ids, labels with probabilities, native formats, refit, S3 data.

Two models of the session's DAGs folder (``tests/data/dagbag/outputs/``) train and infer with
dag.test(): xgboost saved as its own JSON and refitted on all rows, on local data; lightgbm saved
as its own text model, with its store and its data on S3 through the model's connection, then
served by a real ``model-steps serve``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import lightgbm
import pandas as pd
import pytest
import xgboost
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_diabetes, load_wine
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from model_steps.cli import main
from model_steps.definition.data_locations import places_under
from model_steps.errors import InvalidInputError
from model_steps.runtime.tables import read_table, write_table
from model_steps.serving import ModelHandler
from model_steps.store.model_store import ModelStore, open_store
from tests.conftest import SESSION_DAGS
from tests.integration.test_serve import serving, wait_ready

pytestmark = pytest.mark.integration

DATA_ROOT = Path(os.environ["MODEL_STEPS_DATA_ROOT"])
ASSETS_ROOT = os.environ["MODEL_STEPS_ASSETS_ROOT"]
S3_DATA = "s3://model-steps-e2e/data/diabetes"
WINE_CLASSES = ["0", "1", "2"]


def wine_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Wine chemistry with an id and a harvest date per bottle; the scoring rows shuffled."""
    wine = load_wine(as_frame=True).frame.rename(columns={"target": "cultivar"})
    ids = pd.DataFrame(
        {
            "bottle_id": [f"B{1000 + i}" for i in range(len(wine))],
            "harvested": pd.date_range("2020-09-01", periods=len(wine), freq="D").strftime(
                "%Y-%m-%d"
            ),
        }
    )
    train = pd.concat([ids, wine], axis=1)
    score = train.drop(columns="cultivar").sample(25, random_state=5)
    return train, score


def diabetes_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    diabetes = load_diabetes(as_frame=True).frame.rename(columns={"target": "progression"})
    diabetes.insert(0, "patient_id", range(9000, 9000 + len(diabetes)))
    return diabetes, diabetes.drop(columns="progression").sample(20, random_state=2)


@pytest.fixture(scope="module")
def wine_trained(run_dag: Any) -> tuple[Any, Any]:
    train, score = wine_tables()
    (DATA_ROOT / "wine").mkdir(parents=True, exist_ok=True)
    train.to_csv(DATA_ROOT / "wine" / "train.csv", index=False)
    score.to_csv(DATA_ROOT / "wine" / "score.csv", index=False)
    return run_dag("wine_xgb__train"), run_dag("wine_xgb__infer")


@pytest.fixture(scope="module")
def diabetes_trained(run_dag: Any, s3_models: dict[str, Any]) -> dict[str, Any]:
    train, score = diabetes_tables()
    options = s3_models["storage_options"]
    places = places_under(S3_DATA, "the test's own tables")
    write_table(train, f"{S3_DATA}/train.csv", "csv", places=places, storage_options=options)
    write_table(score, f"{S3_DATA}/score.csv", "csv", places=places, storage_options=options)
    return {
        "train": run_dag("diabetes_lgbm_s3__train"),
        "infer": run_dag("diabetes_lgbm_s3__infer"),
    }


def wine_store() -> ModelStore:
    return open_store(f"{ASSETS_ROOT}/wine_xgb")


def newest(folder: Path) -> pd.DataFrame:
    return pd.read_csv(max(folder.glob("*.csv"), key=lambda p: p.stat().st_mtime_ns))


def plain_wine(rows: str) -> Any:
    """The same model as a plain script, fitted on the training part or on every row."""
    train, _ = wine_tables()
    features, target = train.drop(columns=["bottle_id", "harvested", "cultivar"]), train["cultivar"]
    x_train, x_test, y_train, y_test = train_test_split(
        features, target, test_size=0.25, random_state=7, stratify=target
    )
    model = make_pipeline(
        StandardScaler(), xgboost.XGBClassifier(n_estimators=20, max_depth=3, learning_rate=0.3)
    )
    if rows == "all":
        return model.fit(features, target)
    return model.fit(x_train, y_train), x_test, y_test


def test_xgboost_is_published_in_its_own_json_format(wine_trained: tuple[Any, Any]) -> None:
    assert wine_trained[0].state == "success", wine_trained[0].errors
    store = wine_store()
    manifest = store.manifest(store.pointer().version)
    asset = manifest.asset("boost")
    assert asset.serializer == "xgboost" and asset.url.endswith("/boost/model.json")
    path = asset.url.removeprefix("file://")
    assert "learner" in json.loads(Path(path).read_text())
    assert xgboost.Booster(model_file=path).num_features() == 13
    assert manifest.asset("scale").serializer == "skops"


def test_refit_publishes_steps_fitted_on_every_row_and_says_so(
    wine_trained: tuple[Any, Any],
) -> None:
    store = wine_store()
    version = store.pointer().version
    manifest = store.manifest(version)
    for record in manifest.steps:
        assert record.fitted_on == "all"
        assert record.rows == {"train": 133, "test": 45, "all": 178}
    assert manifest.class_labels == WINE_CLASSES
    assert manifest.steps[1].definition["parameters"]["init"]["n_estimators"] == 20
    # Carried columns never reached a step, and samples (the card's, a handler's warm-up) hold
    # them as a caller sends them.
    assert not {"bottle_id", "harvested"} & set(manifest.steps[0].columns_in)
    assert list(manifest.sample_records[0])[:2] == ["bottle_id", "harvested"]
    card = store.card(version)
    assert "**Published model fitted on:** all 178 rows, refitted after the test metrics" in card
    assert "133 rows (train), 45 rows (test), 178 rows (all)" in card
    assert "**Classes:** '0', '1', '2'" in card


def test_test_metrics_come_from_the_steps_fitted_on_the_training_part(
    wine_trained: tuple[Any, Any],
) -> None:
    store = wine_store()
    metrics = store.manifest(store.pointer().version).metrics
    model, x_test, y_test = plain_wine("train")
    assert metrics["test"]["accuracy"] == pytest.approx(model.score(x_test, y_test))


def test_infer_output_carries_ids_then_the_label_then_each_class_in_input_order(
    wine_trained: tuple[Any, Any],
) -> None:
    assert wine_trained[1].state == "success", wine_trained[1].errors
    output = newest(DATA_ROOT / "wine_xgb" / "predictions")
    _, score = wine_tables()
    assert list(output.columns) == ["bottle_id", "harvested", "prediction", *WINE_CLASSES]
    assert list(output["bottle_id"]) == list(score["bottle_id"])
    assert list(output["harvested"]) == list(score["harvested"])
    plain = plain_wine("all")
    features = score.drop(columns=["bottle_id", "harvested"])
    assert_array_equal(output["prediction"], plain.predict(features))
    assert_allclose(output[WINE_CLASSES].to_numpy(), plain.predict_proba(features), rtol=1e-5)


def test_train_output_carries_ids_for_the_rows_the_published_model_learnt(
    wine_trained: tuple[Any, Any],
) -> None:
    fitted = newest(DATA_ROOT / "wine_xgb" / "fitted")
    train, _ = wine_tables()
    assert list(fitted.columns[:3]) == ["bottle_id", "harvested", "prediction"]
    assert list(fitted["bottle_id"]) == list(train["bottle_id"])


def test_a_handler_returns_carried_ids_and_refuses_records_without_them(
    wine_trained: tuple[Any, Any],
) -> None:
    handler = ModelHandler.from_definition(SESSION_DAGS / "outputs" / "wine_xgb.yaml")
    handler.load()
    _, score = wine_tables()
    records = json.loads(score.head(2).to_json(orient="records"))
    values = handler.predict(records).values()
    assert [row["bottle_id"] for row in values] == list(score["bottle_id"].head(2))
    assert list(values[0]) == ["bottle_id", "harvested", "prediction", *WINE_CLASSES]
    frame = handler.predict(score.head(2)).frame
    assert list(frame["harvested"]) == list(score["harvested"].head(2))
    del records[1]["bottle_id"]
    with pytest.raises(InvalidInputError, match=r"record 1 has no 'bottle_id', carried to the"):
        handler.predict(records)
    with pytest.raises(InvalidInputError, match=r"missing column\(s\) 'bottle_id'.*carries"):
        handler.predict(score.drop(columns="bottle_id"))


def test_lightgbm_on_s3_data_reads_and_writes_with_the_models_connection(
    diabetes_trained: dict[str, Any], s3_models: dict[str, Any]
) -> None:
    assert diabetes_trained["train"].state == "success", diabetes_trained["train"].errors
    assert diabetes_trained["infer"].state == "success", diabetes_trained["infer"].errors
    options = s3_models["storage_options"]
    store = open_store(f"{s3_models['root']}/diabetes_lgbm_s3", options)
    manifest = store.manifest(store.pointer().version)
    assert manifest.asset("boost").serializer == "lightgbm"
    assert [(r.fitted_on, r.rows) for r in manifest.steps] == [
        ("train", {"train": 353, "test": 89})
    ] * 2
    assert manifest.class_labels == []
    card = store.card(manifest.version)
    assert "**Published model fitted on:** the training part (353 rows)" in card
    assert "n_estimators=30" in card
    model_text = store.fs.cat_file(manifest.asset("boost").url).decode()
    assert lightgbm.Booster(model_str=model_text).num_feature() == 10
    written = sorted(store.fs.glob(f"{S3_DATA}/predictions/*.csv", refresh=True))
    places = places_under(S3_DATA, "the test's own tables")
    output = read_table(f"s3://{written[-1]}", "csv", places=places, storage_options=options)
    train, score = diabetes_tables()
    assert list(output.columns) == ["patient_id", "prediction"]
    assert list(output["patient_id"]) == list(score["patient_id"])
    features = train.drop(columns=["patient_id", "progression"])
    x_train, *_ = train_test_split(features, train["progression"], test_size=0.2, random_state=3)
    plain = make_pipeline(
        StandardScaler(), lightgbm.LGBMRegressor(n_estimators=30, learning_rate=0.1, verbose=-1)
    ).fit(x_train, train["progression"].loc[x_train.index])
    expected = plain.predict(score.drop(columns="patient_id"))
    assert_allclose(output["prediction"], expected, rtol=1e-6)


def test_serve_answers_with_carried_ids_and_keeps_its_log_clean(
    diabetes_trained: dict[str, Any], tmp_path: Path
) -> None:
    _, score = diabetes_tables()
    records = json.loads(score.head(3).to_json(orient="records"))
    log = tmp_path / "serve.log"
    with (
        serving("diabetes_lgbm_s3", "--poll-interval", "30", log=log) as server,
        server.client() as client,
    ):
        wait_ready(server)
        answer = client.post("/predict", json=records)
        missing = client.post(
            "/predict", json=[{k: v for k, v in records[0].items() if k != "patient_id"}]
        )
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    assert [row["patient_id"] for row in predictions] == list(score["patient_id"].head(3))
    assert all(set(row) == {"patient_id", "prediction"} for row in predictions)
    assert missing.status_code == 422
    assert "'patient_id'" in missing.json()["detail"]
    text = log.read_text(errors="replace")
    assert "deprecated" not in text.lower(), text[-3000:]


def test_runs_lists_a_failed_runs_scratch(
    run_dag: Any, example_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outcome = run_dag("left_scratch__train")
    assert outcome.state == "failed"
    assert main(["runs", "left_scratch"]) == 0
    lines = capsys.readouterr().out.splitlines()
    failed = [line for line in lines if line.startswith("left_scratch__train__")]
    assert failed and "scale: try 1 finished" in failed[-1]
    assert failed[-1].endswith("keeps it 23h 59m more")
