"""Metrics are scikit-learn's numbers: each metric gets labels, probabilities or scores as its
scorer says, for binary and multi-class, numeric and string labels.

Three models (binary on numeric labels, multi-class on string labels, a regression) are trained
through the runtime's own train tasks and each metric recorded is compared with scikit-learn
computed directly on the same split: every scorer name scikit-learn registers, and a few metrics
computed from their functions by hand, independently of the scorer machinery.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn import metrics as skm
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from model_steps.definition.data_locations import places_under
from model_steps.definition.loader import load_and_validate
from model_steps.definition.schema import MetricFunction
from model_steps.errors import StepError, UnknownMetricError
from model_steps.runtime.context import Environment, RunInfo
from model_steps.runtime.metrics import compute_metrics, metric_names, scoring
from model_steps.runtime.rendered import Rendered
from model_steps.runtime.train import train_step
from model_steps.settings import AllowList, allow_list
from model_steps.store.model_store import open_store
from tests.conftest import DATA

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.UndefinedMetricWarning", "ignore:Clustering metrics expects"
)
ALLOW = allow_list({}, [DATA / "specs" / "code"])
SEED, TEST_SIZE = 11, 0.3
WINES = {0: "barolo", 1: "grignolino", 2: "barbera"}
REGISTRY = sorted(skm.get_scorer_names())
"""Every scorer name scikit-learn registers; each is accepted as is and without ``neg_``."""


class Case(NamedTuple):
    """A model trained through the train tasks, and the same model fitted by hand."""

    recorded: dict[str, float]
    estimator: Any
    X_test: pd.DataFrame
    y_test: pd.Series


def frame_of(kind: str) -> pd.DataFrame:
    if kind == "binary":
        data = load_breast_cancer(as_frame=True)
    elif kind == "wine":
        data = load_wine(as_frame=True)
    else:
        data = load_diabetes(as_frame=True)
    frame = data.frame.rename(columns=lambda c: c.replace(" ", "_").replace("/", "_"))
    if kind == "wine":
        frame["target"] = frame["target"].map(WINES)
    return frame


def definition(kind: str, data: Path, metrics: list[str]) -> str:
    """A scaler then a linear model, on ``data``, split as :func:`by_hand` splits it."""
    classify = {"class": "LogisticRegression", "init": {"max_iter": 2000}}
    last = {"class": "Ridge"} if kind == "regression" else classify
    split = {"test_size": TEST_SIZE, "seed": SEED, "stratify": kind != "regression"}
    scale = {
        "package": "sklearn.preprocessing",
        "class": "StandardScaler",
        "input": {"train": {"url": str(data)}},
        "training": {"target": "target", "split": split},
    }
    fit = {"package": "sklearn.linear_model", **last, "metrics": metrics}
    steps = [
        {"id": "scale", "has_assets": True, "assets_identifier": "s.joblib", "parameters": scale},
        {"id": "fit", "has_assets": True, "assets_identifier": "m.joblib", "parameters": fit},
    ]
    model = {"apiVersion": "model-steps/v1", "kind": "Model", "name": f"metrics_{kind}"}
    return yaml.safe_dump({**model, "steps": steps}, sort_keys=False)


def train(tmp: Path, kind: str, metrics: list[str]) -> dict[str, float]:
    """The test metrics the train tasks record for ``kind`` (run like the train DAG)."""
    data = tmp / f"{kind}.csv"
    frame_of(kind).to_csv(data, index=False)
    path = tmp / f"metrics_{kind}.yaml"
    path.write_text(definition(kind, data, metrics))
    (model,) = load_and_validate([path], {}, allowed=ALLOW).models
    places = places_under(str(tmp), "the test's data")
    env = Environment(open_store(str(tmp / "assets" / kind)), {}, ALLOW, places=places)
    run = RunInfo(f"metrics_{kind}__train", "manual__1")
    result: dict[str, Any] = {}
    for step in model.spec.steps:
        result = train_step(model.spec, step.id, run, env, Rendered.templates(step, "train"))
    recorded: dict[str, float] = result["metrics"]["test"]
    return recorded


def by_hand(kind: str) -> tuple[Any, pd.DataFrame, pd.Series]:
    """The same model as plain scikit-learn on the same split: (estimator, X_test, y_test)."""
    frame = frame_of(kind)
    X, y = frame.drop(columns="target"), frame["target"]
    stratify = None if kind == "regression" else y
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=TEST_SIZE, random_state=SEED, stratify=stratify
    )
    scaler = StandardScaler().fit(X_train)
    last = Ridge() if kind == "regression" else LogisticRegression(max_iter=2000)
    last.fit(pd.DataFrame(scaler.transform(X_train), columns=X.columns), y_train)
    return last, pd.DataFrame(scaler.transform(X_test), columns=X.columns), y_test


def trained(tmp: Path, kind: str, names: list[str]) -> Case:
    """``names`` recorded by the train tasks, beside the model fitted by hand."""
    return Case(train(tmp, kind, names), *by_hand(kind))


def accepted(name: str) -> list[str]:
    return [name, name.removeprefix("neg_")] if name.startswith("neg_") else [name]


def computable(kind: str) -> list[str]:
    """The registry's names scikit-learn itself can compute for this model (both spellings)."""
    estimator, X_test, y_test = by_hand(kind)
    names = []
    for name in REGISTRY:
        try:
            skm.get_scorer(name)(estimator, X_test, y_test)
        except (ValueError, TypeError, AttributeError):
            continue
        names += accepted(name)
    return names


@pytest.fixture(scope="module", params=["binary", "wine", "regression"])
def case(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Case:
    kind = request.param
    return trained(tmp_path_factory.mktemp(kind), kind, computable(kind))


def test_every_metric_equals_scikit_learn_on_the_same_split(case: Case) -> None:
    assert len(case.recorded) >= 10
    for name, value in case.recorded.items():
        scorer = skm.get_scorer(name if name in REGISTRY else f"neg_{name}")
        direct = scorer(case.estimator, case.X_test, case.y_test)
        sign = -1 if f"neg_{name}" in REGISTRY else 1
        assert value == pytest.approx(sign * direct, rel=1e-9, abs=1e-12), name


def test_losses_are_recorded_as_losses(case: Case) -> None:
    for name in ("log_loss", "mean_absolute_error", "root_mean_squared_error"):
        if name in case.recorded:
            assert case.recorded[name] >= 0
            assert case.recorded[f"neg_{name}"] == -case.recorded[name]


def test_binary_probability_metrics_use_the_positive_class_probability(
    tmp_path: Path,
) -> None:
    names = ["log_loss", "brier_score_loss", "roc_auc", "average_precision", "accuracy"]
    recorded, estimator, X_test, y_test = trained(tmp_path, "binary", names)
    positive = estimator.predict_proba(X_test)[:, 1]
    assert recorded == pytest.approx(
        {
            "log_loss": skm.log_loss(y_test, positive),
            "brier_score_loss": skm.brier_score_loss(y_test, positive),
            "roc_auc": skm.roc_auc_score(y_test, positive),
            "average_precision": skm.average_precision_score(y_test, positive),
            "accuracy": skm.accuracy_score(y_test, estimator.predict(X_test)),
        }
    )
    assert recorded["log_loss"] != pytest.approx(
        skm.log_loss(y_test, estimator.predict(X_test)), rel=0.01
    )


def test_multi_class_string_labels_get_probabilities_in_the_estimators_class_order(
    tmp_path: Path,
) -> None:
    names = ["log_loss", "roc_auc_ovr", "f1_macro", "top_k_accuracy", "accuracy"]
    recorded, estimator, X_test, y_test = trained(tmp_path, "wine", names)
    proba = estimator.predict_proba(X_test)
    assert list(estimator.classes_) == sorted(WINES.values())
    assert recorded == pytest.approx(
        {
            "log_loss": skm.log_loss(y_test, proba, labels=estimator.classes_),
            "roc_auc_ovr": skm.roc_auc_score(
                y_test, proba, multi_class="ovr", labels=estimator.classes_
            ),
            "f1_macro": skm.f1_score(y_test, estimator.predict(X_test), average="macro"),
            "top_k_accuracy": skm.top_k_accuracy_score(
                y_test, proba, k=2, labels=estimator.classes_
            ),
            "accuracy": skm.accuracy_score(y_test, estimator.predict(X_test)),
        }
    )


def test_regression_metrics_by_their_function_names(tmp_path: Path) -> None:
    names = ["r2_score", "root_mean_squared_error", "mean_absolute_error", "max_error"]
    recorded, estimator, X_test, y_test = trained(tmp_path, "regression", names)
    predicted = estimator.predict(X_test)
    assert recorded == pytest.approx(
        {
            "r2_score": skm.r2_score(y_test, predicted),
            "root_mean_squared_error": skm.root_mean_squared_error(y_test, predicted),
            "mean_absolute_error": skm.mean_absolute_error(y_test, predicted),
            "max_error": skm.max_error(y_test, predicted),
        }
    )


def test_a_metric_scikit_learn_cannot_compute_names_itself_and_the_split() -> None:
    estimator, X_test, y_test = by_hand("wine")
    with pytest.raises(StepError, match=r"metric 'roc_auc' failed on the test data: ValueError"):
        compute_metrics([scoring("roc_auc", ALLOW)], estimator, X_test, y_test, split="test")


def test_every_metric_scikit_learn_refuses_for_a_model_fails_rather_than_giving_a_number() -> None:
    estimator, X_test, y_test = by_hand("wine")
    refused = set(REGISTRY) - set(computable("wine"))
    assert {"roc_auc", "f1", "neg_mean_squared_log_error"} <= refused
    for name in refused:
        with pytest.raises(StepError, match=f"metric '{name}' failed on the test data"):
            compute_metrics([scoring(name, ALLOW)], estimator, X_test, y_test, split="test")


def test_a_custom_metric_gets_what_it_asks_for() -> None:
    from tests.data.specs.code.corpus_code.metrics import mean_top_probability

    estimator, X_test, y_test = by_hand("wine")
    asks = MetricFunction.model_validate(
        {
            "function": "corpus_code.metrics:mean_top_probability",
            "response_method": "predict_proba",
            "name": "confidence",
        }
    )
    recorded = compute_metrics([scoring(asks, ALLOW)], estimator, X_test, y_test, split="test")
    assert recorded == {"confidence": mean_top_probability(y_test, estimator.predict_proba(X_test))}


def test_a_custom_metric_named_as_a_string_gets_labels_and_options_reach_it() -> None:
    estimator, X_test, y_test = by_hand("binary")
    f2 = MetricFunction.model_validate(
        {"function": "sklearn.metrics:fbeta_score", "name": "f2", "options": {"beta": 2}}
    )
    misses = "corpus_code.metrics:within_ten_percent"
    recorded = compute_metrics(
        [scoring(f2, ALLOW), scoring(misses, ALLOW)], estimator, X_test, y_test, split="test"
    )
    predicted = estimator.predict(X_test)
    assert recorded == {
        "f2": skm.fbeta_score(y_test, predicted, beta=2),
        misses: float(np.mean(np.abs(predicted - y_test) <= 0.1 * np.abs(y_test))),
    }


def test_a_model_outside_scikit_learn_is_scored_like_one() -> None:
    """A class of the DAGs folder's own (no scikit-learn base) still gets its probabilities."""
    estimator, X_test, y_test = by_hand("wine")

    class Plain:
        classes_ = estimator.classes_

        def predict(self, X: Any) -> Any:
            return estimator.predict(X)

        def predict_proba(self, X: Any) -> Any:
            return estimator.predict_proba(X)

    names = [scoring(name, ALLOW) for name in ("log_loss", "accuracy")]
    assert compute_metrics(names, Plain(), X_test, y_test, split="test") == pytest.approx(
        compute_metrics(names, estimator, X_test, y_test, split="test")
    )


def test_an_unknown_metric_suggests_the_name_it_abbreviates() -> None:
    with pytest.raises(UnknownMetricError) as caught:
        scoring("rmse", AllowList())
    assert caught.value.suggestions == ("root_mean_squared_error",)
    assert str(caught.value).endswith("(did you mean 'root_mean_squared_error'?)")


def test_metric_names_are_the_registry_without_neg() -> None:
    names = metric_names()
    assert {"log_loss", "accuracy", "root_mean_squared_error", "roc_auc_ovr"} <= set(names)
    assert not any(name.startswith("neg_") for name in names)
