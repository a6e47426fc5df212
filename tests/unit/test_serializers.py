"""Serializers: which one a step uses, and estimators saved in their own library's format."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import lightgbm
import pytest
import xgboost
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_diabetes, load_iris

from model_steps.definition.schema import Step
from model_steps.errors import StepError
from model_steps.runtime.serializers import load_fitted, serializer_for
from model_steps.settings import AllowList
from tests.conftest import REPO

ALLOWED = AllowList(code_folders=(REPO,), code_modules=("tests",))
IRIS = load_iris(as_frame=True)
X, Y = IRIS.data, IRIS.target
BINARY = (Y == 2).astype(int)
DIABETES = load_diabetes(as_frame=True)


def asset_step(identifier: str, package: str, cls: str, **parameters: Any) -> Step:
    return Step.model_validate(
        {
            "id": "model",
            "has_assets": True,
            "assets_identifier": identifier,
            "parameters": {"package": package, "class": cls, **parameters},
        }
    )


def save_fitted(fitted: Any, step: Step, allow: AllowList) -> bytes:
    return serializer_for(step, allow).save(fitted)


def round_trip(fitted: Any, step: Step) -> tuple[bytes, Any]:
    data = save_fitted(fitted, step, ALLOWED)
    return data, load_fitted(io.BytesIO(data), step, ALLOWED)


@pytest.mark.parametrize(
    ("identifier", "serializer"),
    [
        ("model.joblib", "joblib"),
        ("model.pkl", "joblib"),
        ("model.bin", "joblib"),
        ("model", "joblib"),
        ("model.skops", "skops"),
        ("model.json", "xgboost"),
        ("model.ubj", "xgboost"),
        ("model.txt", "lightgbm"),
    ],
)
def test_the_identifiers_extension_picks_the_serializer(identifier: str, serializer: str) -> None:
    assert asset_step(identifier, "xgboost", "XGBClassifier").serializer == serializer


def test_a_named_serializer_wins_over_the_extension() -> None:
    step = asset_step("model.bin", "sklearn.linear_model", "LogisticRegression", serializer="skops")
    assert step.serializer == "skops"


def test_own_save_and_load_are_the_custom_serializer() -> None:
    step = asset_step(
        "model.bin",
        "sklearn.linear_model",
        "LogisticRegression",
        save="tests.step_code:save_shift",
        load="tests.step_code:load_shift",
    )
    assert step.serializer == "custom"


@pytest.mark.parametrize("identifier", ["model.json", "model.ubj"])
def test_xgboost_classifier_is_saved_as_xgboosts_own_model(identifier: str, tmp_path: Path) -> None:
    fitted = xgboost.XGBClassifier(n_estimators=10, max_depth=3).fit(X, Y)
    data, loaded = round_trip(fitted, asset_step(identifier, "xgboost", "XGBClassifier"))
    assert type(loaded) is xgboost.XGBClassifier
    assert_array_equal(loaded.predict(X), fitted.predict(X))
    assert_allclose(loaded.predict_proba(X), fitted.predict_proba(X))
    assert_array_equal(loaded.classes_, [0, 1, 2])
    # Plain xgboost reads the file, and a JSON model is JSON, not a pickle.
    (tmp_path / identifier).write_bytes(data)
    plain = xgboost.Booster(model_file=str(tmp_path / identifier))
    assert plain.num_features() == 4
    if identifier.endswith(".json"):
        assert "learner" in json.loads(data)


def test_xgboost_regressor_round_trips() -> None:
    fitted = xgboost.XGBRegressor(n_estimators=10).fit(DIABETES.data, DIABETES.target)
    _, loaded = round_trip(fitted, asset_step("model.json", "xgboost", "XGBRegressor"))
    assert_allclose(loaded.predict(DIABETES.data), fitted.predict(DIABETES.data), rtol=1e-6)


@pytest.mark.parametrize("labels", [Y, BINARY], ids=["multiclass", "binary"])
def test_lightgbm_classifier_is_saved_as_lightgbms_text_model(labels: Any, tmp_path: Path) -> None:
    fitted = lightgbm.LGBMClassifier(n_estimators=20, verbose=-1).fit(X, labels)
    data, loaded = round_trip(fitted, asset_step("model.txt", "lightgbm", "LGBMClassifier"))
    assert_array_equal(loaded.predict(X), fitted.predict(X))
    assert_allclose(loaded.predict_proba(X), fitted.predict_proba(X))
    assert_array_equal(loaded.classes_, fitted.classes_)
    (tmp_path / "model.txt").write_bytes(data)
    plain = lightgbm.Booster(model_file=str(tmp_path / "model.txt"))
    assert plain.num_feature() == 4


def test_lightgbm_regressor_round_trips_without_class_methods() -> None:
    fitted = lightgbm.LGBMRegressor(n_estimators=20, verbose=-1).fit(DIABETES.data, DIABETES.target)
    _, loaded = round_trip(fitted, asset_step("model.txt", "lightgbm", "LGBMRegressor"))
    assert_allclose(loaded.predict(DIABETES.data), fitted.predict(DIABETES.data))
    assert not hasattr(loaded, "predict_proba")


def test_a_native_format_refuses_labels_it_would_lose() -> None:
    named = Y.map(dict(enumerate(IRIS.target_names)))
    fitted = lightgbm.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, named)
    step = asset_step("model.txt", "lightgbm", "LGBMClassifier")
    with pytest.raises(StepError, match=r"records the number of classes, not the labels"):
        save_fitted(fitted, step, ALLOWED)


def test_a_native_format_refuses_a_class_of_another_library() -> None:
    # A class from the deployment's own code cannot be told apart by name at validation; it is
    # refused when training saves it, naming what it must be.
    fitted = xgboost.XGBClassifier(n_estimators=2).fit(X, Y)
    step = asset_step("model.json", "tests.step_code", "Shift")
    with pytest.raises(StepError, match=r"is not a xgboost.sklearn.XGBModel"):
        save_fitted(fitted, step, ALLOWED)


def test_loading_a_native_model_instantiates_only_allowed_classes() -> None:
    fitted = xgboost.XGBClassifier(n_estimators=2).fit(X, Y)
    data = save_fitted(fitted, asset_step("model.json", "xgboost", "XGBClassifier"), ALLOWED)
    elsewhere = asset_step("model.json", "xgboost", "XGBClassifier")
    with pytest.raises(Exception, match=r"not (an )?allowed"):
        load_fitted(io.BytesIO(data), elsewhere, AllowList(packages=("sklearn",)))


def test_skops_loads_quietly_where_airflow_is_imported_and_real_warnings_still_show() -> None:
    script = """
import io, warnings
import airflow.sdk
import numpy as np
from sklearn.linear_model import LogisticRegression
from model_steps.definition.schema import Step
from model_steps.runtime.serializers import load_fitted, serializer_for
from model_steps.settings import AllowList
step = Step.model_validate({"id": "m", "has_assets": True, "assets_identifier": "m.skops",
    "parameters": {"package": "sklearn.linear_model", "class": "LogisticRegression"}})
fitted = LogisticRegression().fit(np.arange(20.0).reshape(10, 2), [0, 1] * 5)
data = serializer_for(step, AllowList()).save(fitted)
load_fitted(io.BytesIO(data), step, AllowList())
warnings.warn("a warning of our own", FutureWarning)
"""
    done = subprocess.run(
        [sys.executable, "-W", "default", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    output = done.stdout + done.stderr
    assert "a warning of our own" in output
    assert "deprecated" not in output.lower(), output[:2000]
