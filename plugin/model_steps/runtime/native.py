"""Estimators saved in their own library's format: xgboost's JSON/UBJSON, lightgbm's text.

Such a file is readable by the library itself in any language it supports, and loading it runs
no pickle. Loading needs the class the step names (resolved through the import allow-list),
since the file holds a model, not a Python object: xgboost rebuilds its scikit-learn estimator
from it (``XGBClassifier().load_model``); lightgbm only loads a ``Booster`` (its maintainers do
not support rebuilding ``LGBMClassifier`` from one), which :class:`LightGBMModel` wraps with the
scikit-learn methods steps and metrics call.

Both formats record the number of classes, not the labels, so a classifier saved in one must
predict labels ``0 .. n-1`` (xgboost requires them anyway); other labels are refused at save.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from model_steps.errors import StepError
from model_steps.libraries import library
from model_steps.runtime.resolution import resolve_class
from model_steps.settings import AllowList

if TYPE_CHECKING:
    from model_steps.definition.schema import Step

__all__ = [
    "NATIVE_BASES",
    "LightGBMClassifierModel",
    "LightGBMModel",
    "LightGBMSerializer",
    "XGBoostSerializer",
    "native_problem",
]


NATIVE_BASES = {
    "xgboost": ("xgboost.sklearn", "XGBModel"),
    "lightgbm": ("lightgbm.sklearn", "LGBMModel"),
}
"""Each native serializer -> the base class of the estimators that can be saved in its format."""


def native_problem(step: Step, cls: type) -> str | None:
    """Why ``cls`` cannot be saved in the step's native format, or None when it can.

    ``validate`` and the ``check`` task ask this of a class of the DAGs folder's own code,
    which the definition alone cannot judge.
    """
    module, base = NATIVE_BASES[step.serializer]
    if issubclass(cls, getattr(library(module), base)):
        return None
    params = step.parameters
    return (
        f"{params.package}.{params.class_} is not a {module}.{base}, so it cannot be saved "
        f"in {step.serializer}'s own format ({step.assets_identifier}): use serializer joblib "
        "or skops"
    )


def _estimator_class(step: Step, allow: AllowList) -> type[Any]:
    """The step's class, which must be one of the native format's library's estimators."""
    params = step.parameters
    found = resolve_class(str(params.package), str(params.class_), (), allow)
    problem = native_problem(step, found)
    if problem is not None:
        raise StepError(f"step {step.id!r}: {problem}")
    return found


def _check_labels(step: Step, fitted: Any, library_name: str) -> None:
    """Refuse a classifier whose labels the library's format would lose."""
    classes = getattr(fitted, "classes_", None)
    if classes is None:
        return
    labels = list(classes)
    if labels != list(range(len(labels))):
        raise StepError(
            f"step {step.id!r}: {library_name}'s own format records the number of classes, "
            f"not the labels {labels[:5]}: train on labels 0..{len(labels) - 1}, or save it "
            "with serializer joblib or skops"
        )


@dataclass(frozen=True)
class XGBoostSerializer:
    """xgboost's ``save_model`` / ``load_model``: JSON, or UBJSON for a ``.ubj`` identifier."""

    step: Step
    allow: AllowList

    def save(self, fitted: Any) -> bytes:
        """The model file xgboost writes for the fitted estimator."""
        _estimator_class(self.step, self.allow)
        _check_labels(self.step, fitted, "xgboost")
        suffix = ".ubj" if str(self.step.assets_identifier).lower().endswith(".ubj") else ".json"
        with tempfile.TemporaryDirectory(prefix="model-steps-") as folder:
            path = Path(folder) / f"model{suffix}"
            fitted.save_model(str(path))
            return path.read_bytes()

    def load(self, stream: IO[bytes]) -> Any:
        """A new estimator of the step's class with the model loaded into it."""
        estimator = _estimator_class(self.step, self.allow)()
        estimator.load_model(bytearray(stream.read()))
        return estimator


@dataclass(frozen=True)
class LightGBMSerializer:
    """lightgbm's text model (``Booster.model_to_string``), loaded as a ``Booster``."""

    step: Step
    allow: AllowList

    def save(self, fitted: Any) -> bytes:
        """The text model of the fitted estimator's booster."""
        _estimator_class(self.step, self.allow)
        _check_labels(self.step, fitted, "lightgbm")
        text: str = fitted.booster_.model_to_string()
        return text.encode()

    def load(self, stream: IO[bytes]) -> LightGBMModel:
        """The booster, with a classifier's methods when the step's class is a classifier."""
        cls = _estimator_class(self.step, self.allow)
        lightgbm = library("lightgbm")
        booster = lightgbm.Booster(model_str=stream.read().decode())
        if issubclass(cls, lightgbm.LGBMClassifier):
            return LightGBMClassifierModel(booster)
        return LightGBMModel(booster)


class LightGBMModel:
    """A loaded lightgbm text model: ``predict`` as the scikit-learn regressor gives it."""

    def __init__(self, booster: Any) -> None:
        self.booster_ = booster
        self.n_features_in_ = booster.num_feature()

    def predict(self, X: Any) -> Any:
        """The booster's prediction."""
        return self.booster_.predict(X)


class LightGBMClassifierModel(LightGBMModel):
    """A loaded lightgbm classifier: labels ``0 .. n-1``, probabilities per class."""

    def __init__(self, booster: Any) -> None:
        super().__init__(booster)
        per_iteration = booster.num_model_per_iteration()
        self.classes_ = library("numpy").arange(max(per_iteration, 2))

    def predict_proba(self, X: Any) -> Any:
        """One column per class, as ``LGBMClassifier.predict_proba``."""
        np = library("numpy")
        scores = np.asarray(self.booster_.predict(X))
        if scores.ndim == 1:  # binary: the positive class's probability
            return np.column_stack([1.0 - scores, scores])
        return scores

    def predict(self, X: Any) -> Any:
        """The most probable class, as ``LGBMClassifier.predict``."""
        return self.classes_[self.predict_proba(X).argmax(axis=1)]
