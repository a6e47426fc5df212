"""Running one step: kinds, serializers and the train/test split."""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal, assert_series_equal
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from model_steps.definition.schema import Split, Step, Training
from model_steps.errors import (
    ImportRefusedError,
    MissingColumnsError,
    StepError,
    UntrustedTypeError,
)
from model_steps.runtime.serializers import load_fitted, serializer_for
from model_steps.runtime.splits import split_xy, train_test
from model_steps.runtime.steps import step_kind
from model_steps.settings import AllowList
from tests.conftest import REPO

ALLOWED = AllowList(code_folders=(REPO,), code_modules=("tests",))
"""The repository stands in for the DAGs folder: ``tests.step_code`` is its own code."""
IRIS = load_iris(as_frame=True)
X, Y = IRIS.data, IRIS.target


def step(**parameters: Any) -> Step:
    return Step.model_validate({"id": "s", "parameters": parameters})


def save_fitted(fitted: Any, definition: Step, allow: AllowList) -> bytes:
    return serializer_for(definition, allow).save(fitted)


SCALER = step(package="sklearn.preprocessing", **{"class": "StandardScaler"})
CLASSIFIER = step(package="sklearn.linear_model", **{"class": "LogisticRegression"})


def test_class_step_transforms_like_scikit_learn_and_keeps_names() -> None:
    kind = step_kind(SCALER, {}, ALLOWED, last=False)
    output = kind.transform(kind.fit(X, None), X)
    expected = pd.DataFrame(StandardScaler().fit_transform(X), columns=X.columns)
    assert_frame_equal(output, expected)


def test_class_step_predicts_like_scikit_learn_with_rendered_init() -> None:
    kind = step_kind(CLASSIFIER, {"C": 0.5, "max_iter": 500}, ALLOWED, last=True)
    predicted = kind.predict(kind.fit(X, Y), X)
    expected = LogisticRegression(C=0.5, max_iter=500).fit(X, Y).predict(X)
    assert_series_equal(predicted, pd.Series(expected, name="prediction"))


def test_predict_proba_method_gives_the_label_and_one_column_per_class() -> None:
    proba = step(
        package="sklearn.linear_model",
        methods={"predict": "predict_proba"},
        **{"class": "LogisticRegression"},
    )
    kind = step_kind(proba, {"max_iter": 500}, ALLOWED, last=True)
    predicted = kind.predict(kind.fit(X, Y), X)
    plain = LogisticRegression(max_iter=500).fit(X, Y)
    assert list(predicted.columns) == ["prediction", "0", "1", "2"]
    np.testing.assert_array_equal(predicted["prediction"], plain.predict(X))
    np.testing.assert_allclose(predicted[["0", "1", "2"]].to_numpy(), plain.predict_proba(X))


def test_predict_proba_columns_are_named_by_string_labels() -> None:
    proba = step(
        package="sklearn.linear_model",
        methods={"predict": "predict_proba"},
        **{"class": "LogisticRegression"},
    )
    species = Y.map(dict(enumerate(IRIS.target_names)))
    kind = step_kind(proba, {"max_iter": 500}, ALLOWED, last=True)
    predicted = kind.predict(kind.fit(X, species), X)
    assert list(predicted.columns) == ["prediction", "setosa", "versicolor", "virginica"]
    assert predicted["prediction"].iloc[0] == "setosa"
    assert predicted.iloc[0, 1:].astype(float).idxmax() == "setosa"


def test_unnamed_transform_output_columns_are_numbered_by_step() -> None:
    identity = step(package="sklearn.preprocessing", **{"class": "FunctionTransformer"})
    kind = step_kind(identity, {}, ALLOWED, last=False)
    output = kind.transform(kind.fit(X.to_numpy(), None), X.to_numpy()[:2])
    assert list(output.columns) == ["s_0", "s_1", "s_2", "s_3"]


def test_callable_step_is_stateless_and_calls_the_function_with_init() -> None:
    kind = step_kind(step(callable="tests.step_code:scale_by"), {"factor": 2}, ALLOWED, last=False)
    assert kind.fit(X, Y) is None
    assert_frame_equal(kind.transform(None, X), X * 2)


def test_a_method_missing_on_the_fitted_object_names_the_near_miss() -> None:
    from sklearn.svm import SVC

    svc = step(package="sklearn.svm", methods={"predict": "predict_proba"}, **{"class": "SVC"})
    kind = step_kind(svc, {}, ALLOWED, last=True)
    fitted = kind.fit(X, Y)
    assert not hasattr(fitted, "predict_proba") and isinstance(fitted, SVC)
    with pytest.raises(StepError, match=r"has no method 'predict_proba'.*set the step's 'methods'"):
        kind.predict(fitted, X)


def test_unknown_init_argument_is_a_step_error() -> None:
    with pytest.raises(StepError, match="cannot create StandardScaler"):
        step_kind(SCALER, {"wiht_mean": False}, ALLOWED, last=False).fit(X, None)


def test_a_step_kind_refuses_what_it_names_before_any_data() -> None:
    with pytest.raises(ImportRefusedError, match="is a function, not a class"):
        step_kind(
            step(package="sklearn.datasets", **{"class": "fetch_openml"}), {}, ALLOWED, last=True
        )


def test_a_rendered_init_value_that_reaches_a_file_is_refused_when_the_step_runs() -> None:
    cluster = step(package="sklearn.cluster", **{"class": "FeatureAgglomeration"})
    with pytest.raises(ImportRefusedError, match="'memory' may only be null"):
        step_kind(cluster, {"memory": "/tmp/cache"}, ALLOWED, last=False)


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
        load_fitted(io.BytesIO(data), shift, AllowList())


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
        step(package="sklearn.preprocessing", **{"class": "StandardScaler"}),
        {},
        ALLOWED,
        last=False,
    )
    scaled = scaler.transform(scaler.fit(X, None), X)
    model = step_kind(
        step(package="sklearn.linear_model", **{"class": "LinearRegression"}),
        {},
        ALLOWED,
        last=True,
    )
    fitted = model.fit(scaled, Y)
    assert not hasattr(fitted, "feature_names_in_")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        predicted = model.predict(fitted, scaled)
    assert predicted.tolist() == fitted.predict(scaled.to_numpy()).tolist()


def test_a_step_that_may_select_columns_by_name_keeps_getting_frames() -> None:
    scaler = step_kind(
        step(package="sklearn.preprocessing", **{"class": "StandardScaler"}),
        {},
        ALLOWED,
        last=False,
    )
    scaled = scaler.transform(scaler.fit(X, None), X)
    selector = step(package="sklearn.compose", **{"class": "ColumnTransformer"})
    columns = [["keep", "passthrough", list(scaled.columns[:2])]]
    kind = step_kind(selector, {"transformers": columns}, ALLOWED, last=False)
    fitted = kind.fit(scaled, None)
    assert list(fitted.feature_names_in_) == list(scaled.columns)
