"""Running one step: fit, transform and predict, whatever the step runs.

Each step kind (``class``: ``package`` + ``class``; ``callable``: ``package.module:function``)
is one implementation in :data:`STEP_KINDS`, keyed by ``StepParameters.kind``. Everything a
definition names goes through the import allow-list (:mod:`model_steps.definition.allowlist`).
Nothing here knows Airflow, and pandas and scikit-learn are imported only when a step runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from model_steps.definition.allowlist import import_object
from model_steps.definition.schema import PREDICTION_COLUMN
from model_steps.errors import StepError, did_you_mean
from model_steps.libraries import library

if TYPE_CHECKING:
    from pandas import DataFrame, Series  # type: ignore[import-untyped, unused-ignore]

    from model_steps.definition.schema import Step

__all__ = [
    "PREDICTION",
    "STEP_KINDS",
    "CallableStep",
    "ClassStep",
    "StepKind",
    "prediction_frame",
    "step_kind",
]

PREDICTION = PREDICTION_COLUMN
"""Name of the column holding a one-dimensional prediction, or a classifier's label."""


class StepKind(Protocol):
    """What the train and infer tasks call, whatever the step runs."""

    def fit(self, X: DataFrame, y: Series | None) -> Any:
        """Fit on training data; the fitted object, or None for a stateless step."""

    def transform(self, fitted: Any, X: DataFrame) -> DataFrame:
        """The step's output that the next step reads."""

    def predict(self, fitted: Any, X: DataFrame) -> DataFrame | Series:
        """The last step's predictions."""

    def scores(self, fitted: Any, X: DataFrame) -> DataFrame | None:
        """Class probabilities for metrics such as ``roc_auc``; None when there are none."""


@dataclass(frozen=True)
class ClassStep:
    """``package`` + ``class``: an estimator instantiated with ``init``, scikit-learn style."""

    step: Step
    init: Mapping[str, Any]
    allowed: Sequence[str]

    def fit(self, X: DataFrame, y: Series | None) -> Any:
        """A new estimator, fitted with ``methods.fit`` (without ``y`` when there is none)."""
        params = self.step.parameters
        factory = import_object(f"{params.package}:{params.class_}", self.allowed)
        try:
            estimator = factory(**self.init)
        except TypeError as error:
            raise StepError(
                f"step {self.step.id!r}: cannot create {params.class_} with init "
                f"{sorted(self.init)}: {error}"
            ) from error
        fit = _method(estimator, params.methods.fit, self.step)
        if y is None:
            fit(X)
        else:
            fit(X, y)
        return estimator

    def transform(self, fitted: Any, X: DataFrame) -> DataFrame:
        """``methods.transform`` as a frame, named by ``get_feature_names_out`` when offered."""
        output = _method(fitted, self.step.parameters.methods.transform, self.step)(X)
        return _as_frame(output, X, self.step.id, _feature_names(fitted))

    def predict(self, fitted: Any, X: DataFrame) -> DataFrame | Series:
        """``methods.predict``: a Series, or the label and one column per class.

        With ``predict_proba`` (or any method giving one column per class), the classes'
        columns are named by their labels, and a ``prediction`` column before them holds the
        estimator's own ``predict`` (the label a user would otherwise derive, not always the
        most probable class: ``SVC``'s Platt scaling can disagree with its decision).
        """
        output = _method(fitted, self.step.parameters.methods.predict, self.step)(X)
        predictions = _predictions(output, fitted, X, self.step.id)
        if isinstance(predictions, library("pandas").Series) or not _per_class(predictions, fitted):
            return predictions
        label = fitted.predict(X) if hasattr(fitted, "predict") else None
        if label is None:
            label = fitted.classes_[predictions.to_numpy().argmax(axis=1)]
        predictions.insert(0, PREDICTION, label)
        return predictions

    def scores(self, fitted: Any, X: DataFrame) -> DataFrame | None:
        """``predict_proba`` when the estimator has it (``SVC`` only with probability=True)."""
        if not hasattr(fitted, "predict_proba"):
            return None
        return _predictions(fitted.predict_proba(X), fitted, X, self.step.id)


@dataclass(frozen=True)
class CallableStep:
    """``callable``: ``function(X, **init)`` returns the output; nothing is fitted."""

    step: Step
    init: Mapping[str, Any]
    allowed: Sequence[str]

    def fit(self, X: DataFrame, y: Series | None) -> None:
        """Nothing to learn: the function is the whole step."""
        return None

    def transform(self, fitted: Any, X: DataFrame) -> DataFrame:
        """The function's result, as a frame."""
        return _as_frame(self._call(X), X, self.step.id, None)

    def predict(self, fitted: Any, X: DataFrame) -> DataFrame | Series:
        """The function's result, as it is when it is already a frame or series."""
        return _predictions(self._call(X), None, X, self.step.id)

    def scores(self, fitted: Any, X: DataFrame) -> DataFrame | None:
        """A function gives predictions only."""
        return None

    def _call(self, X: DataFrame) -> Any:
        function = import_object(str(self.step.parameters.callable), self.allowed)
        return function(X, **self.init)


StepKindFactory = Callable[["Step", Mapping[str, Any], Sequence[str]], StepKind]
STEP_KINDS: Mapping[str, StepKindFactory] = {"class": ClassStep, "callable": CallableStep}
"""``StepParameters.kind`` -> the implementation that runs such a step."""


def step_kind(step: Step, init: Mapping[str, Any], allowed: Sequence[str]) -> StepKind:
    """The runner of ``step``, with ``init`` as Airflow rendered it (templates filled in)."""
    return STEP_KINDS[step.parameters.kind](step, init, allowed)


def _method(obj: Any, name: str, step: Step) -> Callable[..., Any]:
    """``obj.name``, refusing private names and naming near misses when it is missing."""
    method: Callable[..., Any] | None = None
    if not name.startswith("_"):
        method = getattr(obj, name, None)
    if not callable(method):
        public = [attr for attr in dir(obj) if not attr.startswith("_")]
        suggestions = did_you_mean(name, public)
        hint = f" (did you mean {' or '.join(suggestions)}?)" if suggestions else ""
        raise StepError(
            f"step {step.id!r}: {type(obj).__name__} has no method {name!r}{hint}; "
            "set the step's 'methods'"
        )
    return method


def _feature_names(fitted: Any) -> list[str] | None:
    """The output column names the estimator gives, or None when it cannot name them.

    A ``Pipeline`` has the method but raises AttributeError when one of its steps has not.
    """
    try:
        return [str(name) for name in fitted.get_feature_names_out()]
    except AttributeError:
        return None


def _as_frame(output: Any, X: DataFrame, step_id: str, names: list[str] | None) -> DataFrame:
    """Output as a frame: frames pass as they are; arrays get ``X``'s index and ``names``.

    Without names, columns are numbered after the step (``scale_0``, ``scale_1``...).
    """
    pd = library("pandas")
    if isinstance(output, pd.DataFrame):
        return output
    if isinstance(output, pd.Series):
        return output.to_frame(name=output.name if output.name is not None else step_id)
    if hasattr(output, "toarray"):  # a scipy sparse matrix, e.g. from OneHotEncoder
        output = output.toarray()
    array = library("numpy").asarray(output)
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    columns = names or [f"{step_id}_{i}" for i in range(array.shape[1])]
    return pd.DataFrame(array, index=getattr(X, "index", None), columns=columns)


def _predictions(output: Any, fitted: Any, X: DataFrame, step_id: str) -> DataFrame | Series:
    """One-dimensional output as a ``prediction`` Series; 2-D as one column per class."""
    pd = library("pandas")
    if isinstance(output, pd.DataFrame | pd.Series):
        return output
    array = library("numpy").asarray(output)
    if array.ndim == 1:
        return pd.Series(array, index=getattr(X, "index", None), name=PREDICTION)
    classes = getattr(fitted, "classes_", None)
    names = None
    if classes is not None and len(classes) == array.shape[1]:
        names = [str(label) for label in classes]
    return _as_frame(array, X, step_id, names)


def _per_class(frame: DataFrame, fitted: Any) -> bool:
    """Whether ``frame`` holds one column per class of ``fitted``, named by the labels."""
    classes = getattr(fitted, "classes_", None)
    return classes is not None and list(frame.columns) == [str(label) for label in classes]


def prediction_frame(values: Any) -> DataFrame:
    """Predictions as a frame: a frame as it is, a series or a list as one ``prediction`` column."""
    pd = library("pandas")
    if isinstance(values, pd.DataFrame):
        return values
    if isinstance(values, pd.Series):
        return values.to_frame(PREDICTION)
    return pd.DataFrame({PREDICTION: list(values)})
