"""Running one step: fit, transform and predict, whatever the step runs.

Each step kind (``class``: ``package`` + ``class``; ``callable``: ``package.module:function``)
is one implementation in :data:`STEP_KINDS`, keyed by ``StepParameters.kind``. What a step names
is resolved when its kind is built (:mod:`model_steps.runtime.resolution`), before any data is
read, so a refused or misspelt name fails a task in its first second. Nothing here knows Airflow,
and pandas and scikit-learn are imported only when a step runs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from model_steps.definition.schema import PREDICTION_COLUMN
from model_steps.errors import StepError, closest, hint
from model_steps.libraries import library
from model_steps.runtime.resolution import refuse_init, resolve_class, resolve_function
from model_steps.settings import AllowList

if TYPE_CHECKING:
    from pandas import DataFrame, Index, Series  # type: ignore[import-untyped, unused-ignore]

    from model_steps.definition.schema import Step

__all__ = [
    "FROM_ARRAY",
    "PREDICTION",
    "STEP_KINDS",
    "CallableStep",
    "ClassStep",
    "StepKind",
    "as_fitted",
    "calls",
    "column_index",
    "prediction_frame",
    "step_kind",
]

PREDICTION = PREDICTION_COLUMN
"""Name of the column holding a one-dimensional prediction, or a classifier's label."""
FROM_ARRAY = "model_steps.from_array"
"""Marks (in ``DataFrame.attrs``, which parquet keeps) a frame built from a step's array output."""
NAMED_INPUTS = ("sklearn.compose", "sklearn.pipeline")
"""scikit-learn packages whose estimators may select columns by name: always given frames."""


class StepKind(Protocol):
    """What the train and infer tasks call, whatever the step runs."""

    def fit(self, X: DataFrame, y: Series | None) -> Any:
        """Fit on training data; the fitted object, or None for a stateless step."""

    def transform(self, fitted: Any, X: DataFrame) -> DataFrame:
        """The step's output that the next step reads."""

    def predict(self, fitted: Any, X: DataFrame) -> DataFrame | Series:
        """The last step's predictions."""

    def predictor(self, fitted: Any) -> Any:
        """What metrics score: an object with ``predict`` (and ``predict_proba``... if any)."""


def calls(step: Step, *, last: bool) -> tuple[str, ...]:
    """The method names a class step's object must have: fit, then predict or transform."""
    methods = step.parameters.methods
    return (methods.fit, methods.predict if last else methods.transform)


@dataclass(frozen=True)
class ClassStep:
    """``package`` + ``class``: an estimator instantiated with ``init``, scikit-learn style."""

    step: Step
    init: Mapping[str, Any]
    factory: type

    def fit(self, X: DataFrame, y: Series | None) -> Any:
        """A new estimator, fitted with ``methods.fit`` (without ``y`` when there is none)."""
        try:
            estimator = self.factory(**self.init)
        except TypeError as error:
            raise StepError(
                f"step {self.step.id!r}: cannot create {self.factory.__name__} with init "
                f"{sorted(self.init)}: {error}"
            ) from error
        fit = _method(estimator, self.step.parameters.methods.fit, self.step)
        data = X.to_numpy() if self._fits_on_arrays(X) else X
        if y is None:
            fit(data)
        else:
            fit(data, y)
        return estimator

    def transform(self, fitted: Any, X: DataFrame) -> DataFrame:
        """``methods.transform`` as a frame, named by ``get_feature_names_out`` when offered."""
        method = _method(fitted, self.step.parameters.methods.transform, self.step)
        return _as_frame(method(as_fitted(fitted, X)), X, self.step.id, _feature_names(fitted))

    def predict(self, fitted: Any, X: DataFrame) -> DataFrame | Series:
        """``methods.predict``: a Series, or the label and one column per class.

        With ``predict_proba`` (or any method giving one column per class), the classes'
        columns are named by their labels, and a ``prediction`` column before them holds the
        estimator's own ``predict`` (the label a user would otherwise derive, not always the
        most probable class: ``SVC``'s Platt scaling can disagree with its decision).
        """
        method = _method(fitted, self.step.parameters.methods.predict, self.step)
        data = as_fitted(fitted, X)
        predictions = _predictions(method(data), fitted, X, self.step.id)
        if isinstance(predictions, library("pandas").Series) or not _per_class(predictions, fitted):
            return predictions
        label = fitted.predict(data) if hasattr(fitted, "predict") else None
        if label is None:
            label = fitted.classes_[predictions.to_numpy().argmax(axis=1)]
        predictions.insert(0, PREDICTION, label)
        return predictions

    def predictor(self, fitted: Any) -> Any:
        """The fitted estimator: scorers call its own predict, predict_proba..."""
        return fitted

    def _fits_on_arrays(self, X: DataFrame) -> bool:
        """Whether to fit on an array, as scikit-learn's ``Pipeline`` would.

        A scikit-learn estimator after a step whose output was an array gets that array, so it
        is fitted without column names and predicts on arrays, skipping the name checks of
        every call (a fifth of a one-record prediction). Other code, and estimators that may
        select columns by name, keep getting frames.
        """
        package = str(self.step.parameters.package)
        return (
            bool(getattr(X, "attrs", {}).get(FROM_ARRAY))
            and package.split(".")[0] == "sklearn"
            and not package.startswith(NAMED_INPUTS)
            and self.step.parameters.class_ != "FunctionTransformer"
        )


@dataclass(frozen=True)
class CallableStep:
    """``callable``: ``function(X, **init)`` returns the output; nothing is fitted."""

    step: Step
    init: Mapping[str, Any]
    function: Callable[..., Any]

    def fit(self, X: DataFrame, y: Series | None) -> None:
        """Nothing to learn: the function is the whole step."""
        return None

    def transform(self, fitted: Any, X: DataFrame) -> DataFrame:
        """The function's result, as a frame."""
        return _as_frame(self.function(X, **self.init), X, self.step.id, None)

    def predict(self, fitted: Any, X: DataFrame) -> DataFrame | Series:
        """The function's result, as it is when it is already a frame or series."""
        return _predictions(self.function(X, **self.init), None, X, self.step.id)

    def predictor(self, fitted: Any) -> Any:
        """An object whose ``predict`` is the function: a function gives predictions only."""
        return _FunctionPredictor(self)


@dataclass(frozen=True)
class _FunctionPredictor:
    kind: CallableStep

    def predict(self, X: DataFrame) -> Any:
        return library("numpy").asarray(self.kind.predict(None, X))


def _class_step(step: Step, init: Mapping[str, Any], allow: AllowList, last: bool) -> StepKind:
    params = step.parameters
    refuse_init(str(params.package), init, allow)  # before the library is even imported
    factory = resolve_class(str(params.package), str(params.class_), calls(step, last=last), allow)
    refuse_init(factory.__module__, init, allow)
    return ClassStep(step, init, factory)


def _callable_step(step: Step, init: Mapping[str, Any], allow: AllowList, last: bool) -> StepKind:
    return CallableStep(
        step, init, resolve_function(str(step.parameters.callable), "callable", allow)
    )


StepKindFactory = Callable[["Step", Mapping[str, Any], AllowList, bool], StepKind]
STEP_KINDS: Mapping[str, StepKindFactory] = {"class": _class_step, "callable": _callable_step}
"""``StepParameters.kind`` -> what builds the implementation that runs such a step."""


def step_kind(step: Step, init: Mapping[str, Any], allow: AllowList, *, last: bool) -> StepKind:
    """The runner of ``step``, with ``init`` as Airflow rendered it (templates filled in).

    What the step names is imported and checked here, before any data is read.

    Raises:
        ImportRefusedError: the step names something it may not (see the allow-list).
        MissingModuleError: a module it names is not installed.
        MissingAttributeError: a class, function or method it names does not exist.
    """
    return STEP_KINDS[step.parameters.kind](step, init, allow, last)


def as_fitted(fitted: Any, X: Any) -> Any:
    """``X`` as ``fitted`` was fitted: an array if it saw no column names, else as it is.

    scikit-learn records ``n_features_in_`` on every fit and ``feature_names_in_`` only on a
    fit on a frame; the columns were checked where the data came in, so nothing is lost.
    """
    unnamed = hasattr(fitted, "n_features_in_") and not hasattr(fitted, "feature_names_in_")
    return X.to_numpy() if unnamed and hasattr(X, "to_numpy") else X


def _method(obj: Any, name: str, step: Step) -> Callable[..., Any]:
    """``obj.name``, refusing private names and naming near misses when it is missing."""
    method: Callable[..., Any] | None = None
    if not name.startswith("_"):
        method = getattr(obj, name, None)
    if not callable(method):
        public = [attr for attr in dir(obj) if not attr.startswith("_")]
        raise StepError(
            f"step {step.id!r}: {type(obj).__name__} has no method {name!r}"
            f"{hint(closest(name, public))}; set the step's 'methods'"
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
    index = getattr(X, "index", None)
    frame = pd.DataFrame(array, index=index, columns=column_index(tuple(columns)))
    frame.attrs[FROM_ARRAY] = True
    return frame


@functools.lru_cache(maxsize=256)
def column_index(names: tuple[str, ...]) -> Index:
    """Columns as an Index, built once per tuple of names and shared by the frames using it.

    Building an Index from a list infers its type from every name (about 90 us for 30 names
    on the dev VM), which a one-record request would pay for each frame it makes: more than
    its share of the prediction. An Index is immutable, so sharing one is safe.
    """
    return library("pandas").Index(names)


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
