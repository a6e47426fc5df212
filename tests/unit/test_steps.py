"""Running one step: kinds, serializers, metrics and the train/test split."""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal, assert_series_equal
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from model_steps.definition.schema import Split, Step, Training
from model_steps.errors import (
    MissingColumnsError,
    StepError,
    UnknownMetricError,
    UntrustedTypeError,
)
from model_steps.runtime.metrics import compute_metrics
from model_steps.runtime.serializers import load_fitted, save_fitted
from model_steps.runtime.splits import split_xy, train_test
from model_steps.runtime.steps import step_kind
from model_steps.settings import DEFAULT_ALLOWED

ALLOWED = (*DEFAULT_ALLOWED, "tests.step_code")
IRIS = load_iris(as_frame=True)
X, Y = IRIS.data, IRIS.target


def step(**parameters: Any) -> Step:
    return Step.model_validate({"id": "s", "parameters": parameters})


SCALER = step(package="sklearn.preprocessing", **{"class": "StandardScaler"})
CLASSIFIER = step(package="sklearn.linear_model", **{"class": "LogisticRegression"})


def test_class_step_transforms_like_scikit_learn_and_keeps_names() -> None:
    kind = step_kind(SCALER, {}, ALLOWED)
    output = kind.transform(kind.fit(X, None), X)
    expected = pd.DataFrame(StandardScaler().fit_transform(X), columns=X.columns)
    assert_frame_equal(output, expected)


def test_class_step_predicts_like_scikit_learn_with_rendered_init() -> None:
    kind = step_kind(CLASSIFIER, {"C": 0.5, "max_iter": 500}, ALLOWED)
    predicted = kind.predict(kind.fit(X, Y), X)
    expected = LogisticRegression(C=0.5, max_iter=500).fit(X, Y).predict(X)
    assert_series_equal(predicted, pd.Series(expected, name="prediction"))


def test_predict_proba_method_gives_one_column_per_class() -> None:
    proba = step(
        package="sklearn.linear_model",
        methods={"predict": "predict_proba"},
        **{"class": "LogisticRegression"},
    )
    kind = step_kind(proba, {"max_iter": 500}, ALLOWED)
    predicted = kind.predict(kind.fit(X, Y), X)
    expected = LogisticRegression(max_iter=500).fit(X, Y).predict_proba(X)
    assert list(predicted.columns) == ["0", "1", "2"]
    np.testing.assert_allclose(predicted.to_numpy(), expected)


def test_unnamed_transform_output_columns_are_numbered_by_step() -> None:
    identity = step(package="sklearn.preprocessing", **{"class": "FunctionTransformer"})
    kind = step_kind(identity, {}, ALLOWED)
    output = kind.transform(kind.fit(X.to_numpy(), None), X.to_numpy()[:2])
    assert list(output.columns) == ["s_0", "s_1", "s_2", "s_3"]


def test_callable_step_is_stateless_and_calls_the_function_with_init() -> None:
    kind = step_kind(step(callable="tests.step_code:scale_by"), {"factor": 2}, ALLOWED)
    assert kind.fit(X, Y) is None
    assert_frame_equal(kind.transform(None, X), X * 2)


def test_misspelt_method_names_the_near_miss() -> None:
    typo = step(
        package="sklearn.preprocessing",
        methods={"transform": "transfrom"},
        **{"class": "StandardScaler"},
    )
    kind = step_kind(typo, {}, ALLOWED)
    with pytest.raises(StepError, match="did you mean transform"):
        kind.transform(kind.fit(X, None), X)


def test_unknown_init_argument_is_a_step_error() -> None:
    with pytest.raises(StepError, match="cannot create StandardScaler"):
        step_kind(SCALER, {"wiht_mean": False}, ALLOWED).fit(X, None)


@pytest.mark.parametrize("serializer", ["joblib", "skops"])
def test_serializer_round_trips_a_fitted_estimator(serializer: str) -> None:
    scaler = step(
        package="sklearn.preprocessing", serializer=serializer, **{"class": "StandardScaler"}
    )
    fitted = StandardScaler().fit(X)
    loaded = load_fitted(io.BytesIO(save_fitted(fitted, scaler, ALLOWED)), scaler, ALLOWED)
    np.testing.assert_array_equal(loaded.transform(X), fitted.transform(X))


def test_skops_refuses_a_type_from_a_module_not_allowed() -> None:
    from tests.step_code import Shift

    shift = step(package="tests.step_code", serializer="skops", **{"class": "Shift"})
    data = save_fitted(Shift().fit(X), shift, ALLOWED)
    with pytest.raises(UntrustedTypeError, match=r"tests\.step_code\.Shift"):
        load_fitted(io.BytesIO(data), shift, DEFAULT_ALLOWED)


def test_custom_save_and_load_round_trip() -> None:
    from tests.step_code import Shift

    shift = step(
        package="tests.step_code",
        save="tests.step_code:save_shift",
        load="tests.step_code:load_shift",
        **{"class": "Shift"},
    )
    data = save_fitted(Shift().fit(X), shift, ALLOWED)
    assert data.startswith(b"[")
    np.testing.assert_allclose(load_fitted(io.BytesIO(data), shift, ALLOWED).means_, X.mean())


def classification(binary: bool) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    y = (Y == 2).astype(int) if binary else Y
    model = LogisticRegression(max_iter=500).fit(X, y)
    return y, model.predict(X), model.predict_proba(X)


def test_classification_metric_names() -> None:
    from sklearn.metrics import accuracy_score, f1_score

    y, predicted, scores = classification(binary=False)
    metrics = compute_metrics(["accuracy", "f1_macro"], y, predicted, scores, ALLOWED)
    assert metrics == {
        "accuracy": accuracy_score(y, predicted),
        "f1_macro": f1_score(y, predicted, average="macro"),
    }


@pytest.mark.parametrize("binary", [True, False])
def test_roc_auc_uses_probabilities(binary: bool) -> None:
    from sklearn.metrics import roc_auc_score

    y, predicted, scores = classification(binary)
    expected = (
        roc_auc_score(y, scores[:, 1]) if binary else roc_auc_score(y, scores, multi_class="ovr")
    )
    assert compute_metrics(["roc_auc"], y, predicted, pd.DataFrame(scores), ALLOWED) == {
        "roc_auc": expected
    }


def test_roc_auc_without_probabilities_says_why() -> None:
    y, predicted, _ = classification(binary=True)
    with pytest.raises(StepError, match="needs class probabilities"):
        compute_metrics(["roc_auc"], y, predicted, None, ALLOWED)


def test_regression_metric_names() -> None:
    from sklearn.metrics import mean_absolute_error, r2_score

    y = load_diabetes(as_frame=True).target
    predicted = y * 0.9 + 10
    metrics = compute_metrics(["r2", "mean_absolute_error"], y, predicted, None, ALLOWED)
    assert metrics == {
        "r2": r2_score(y, predicted),
        "mean_absolute_error": mean_absolute_error(y, predicted),
    }
    assert all(type(value) is float for value in metrics.values())


def test_custom_metric_is_called_with_truth_and_predictions() -> None:
    y = pd.Series([1, 0, 1])
    assert compute_metrics(["tests.step_code:misses"], y, pd.Series([1, 1, 0]), None, ALLOWED) == {
        "tests.step_code:misses": 2.0
    }


def test_unknown_metric_suggests_close_names() -> None:
    with pytest.raises(UnknownMetricError, match="did you mean accuracy"):
        compute_metrics(["acuracy"], Y, Y, None, ALLOWED)


def test_split_xy_separates_the_target_and_selects_features() -> None:
    frame = IRIS.frame
    features, target = split_xy(frame, Training(target="target", features=["sepal length (cm)"]))
    assert list(features.columns) == ["sepal length (cm)"]
    assert_series_equal(target, frame["target"])
    everything, _ = split_xy(frame, Training(target="target"))
    assert list(everything.columns) == list(X.columns)


def test_split_xy_names_missing_and_available_columns() -> None:
    with pytest.raises(MissingColumnsError, match=r"no column 'species'.*sepal length") as caught:
        split_xy(IRIS.frame, Training(target="species"))
    assert caught.value.missing == ("species",)


def test_no_training_section_means_no_target() -> None:
    features, target = split_xy(X, None)
    assert features is X
    assert target is None


def test_stratified_split_keeps_class_proportions() -> None:
    X_train, X_test, y_train, y_test = train_test(X, Y, Split(test_size=0.2, seed=1, stratify=True))
    assert (len(X_train), len(X_test)) == (120, 30)
    assert y_test.value_counts().tolist() == [10, 10, 10]
    assert list(y_train.index) == list(X_train.index)


def test_no_split_leaves_test_parts_empty() -> None:
    assert train_test(X, Y, None) == (X, None, Y, None)


def test_a_scikit_learn_step_after_an_array_output_is_fitted_and_run_on_arrays() -> None:
    """As in scikit-learn's Pipeline: no column-name checks on every call after the first step."""
    scaler = step_kind(
        step(package="sklearn.preprocessing", **{"class": "StandardScaler"}), {}, ALLOWED
    )
    scaled = scaler.transform(scaler.fit(X, None), X)
    model = step_kind(
        step(package="sklearn.linear_model", **{"class": "LinearRegression"}), {}, ALLOWED
    )
    fitted = model.fit(scaled, Y)
    assert not hasattr(fitted, "feature_names_in_")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        predicted = model.predict(fitted, scaled)
    assert predicted.tolist() == fitted.predict(scaled.to_numpy()).tolist()


def test_a_step_that_may_select_columns_by_name_keeps_getting_frames() -> None:
    scaler = step_kind(
        step(package="sklearn.preprocessing", **{"class": "StandardScaler"}), {}, ALLOWED
    )
    scaled = scaler.transform(scaler.fit(X, None), X)
    selector = step(package="sklearn.compose", **{"class": "ColumnTransformer"})
    columns = [("keep", "passthrough", list(scaled.columns[:2]))]
    fitted = step_kind(selector, {"transformers": columns}, ALLOWED).fit(scaled, None)
    assert list(fitted.feature_names_in_) == list(scaled.columns)
