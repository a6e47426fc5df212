"""Running one step: fit, transform and predict, saving fitted objects, and metrics.

Each step kind (``class``: ``package`` + ``class``; ``callable``: ``package.module:function``)
is one implementation in :data:`STEP_KINDS`, keyed by ``StepParameters.kind``; serializers are
a registry the same way. Everything a definition names goes through the import allow-list
(:mod:`model_steps.imports`). Nothing here knows Airflow, and pandas and scikit-learn are
imported only when a step runs.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Protocol

from model_steps.errors import (
    MissingColumnsError,
    StepError,
    UnknownMetricError,
    UntrustedTypeError,
    did_you_mean,
)
from model_steps.imports import import_object, is_allowed, library

if TYPE_CHECKING:
    from pandas import DataFrame, Series  # type: ignore[import-untyped, unused-ignore]

    from model_steps.spec import Split, Step, Training

__all__ = [
    "AVERAGES",
    "PREDICTION",
    "SERIALIZERS",
    "STEP_KINDS",
    "CallableStep",
    "ClassStep",
    "Serializer",
    "StepKind",
    "compute_metrics",
    "load_fitted",
    "save_fitted",
    "split_xy",
    "step_kind",
    "train_test",
]

PREDICTION = "prediction"
"""Name of the column holding a one-dimensional prediction."""
AVERAGES = ("macro", "micro", "weighted")
"""Metric name suffixes that select scikit-learn's ``average=`` (``f1_macro``)."""


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
        """``methods.predict``: a Series, or one column per class (``predict_proba``)."""
        output = _method(fitted, self.step.parameters.methods.predict, self.step)(X)
        return _predictions(output, fitted, X, self.step.id)

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


class Serializer(Protocol):
    """Turns a fitted object into bytes and back."""

    def save(self, fitted: Any) -> bytes:
        """The bytes stored as the step's asset."""

    def load(self, stream: IO[bytes]) -> Any:
        """The fitted object again, read from a verified local file (never whole in memory)."""


class JoblibSerializer:
    """joblib (pickle): handles any Python object; loading runs code, so trust the store."""

    def save(self, fitted: Any) -> bytes:
        """The joblib pickle of ``fitted``."""
        buffer = io.BytesIO()
        library("joblib").dump(fitted, buffer)
        return buffer.getvalue()

    def load(self, stream: IO[bytes]) -> Any:
        """The unpickled object."""
        return library("joblib").load(stream)


@dataclass(frozen=True)
class SkopsSerializer:
    """skops: loads only types it trusts, plus those from allowed modules."""

    allowed: Sequence[str]

    def save(self, fitted: Any) -> bytes:
        """The skops archive of ``fitted``."""
        data: bytes = library("skops.io").dumps(fitted)
        return data

    def load(self, stream: IO[bytes]) -> Any:
        """The object, refusing types from modules outside the allow-list.

        Raises:
            UntrustedTypeError: the archive names types from modules that are not allowed.
        """
        sio = library("skops.io")
        unknown = list(sio.get_untrusted_types(file=stream))
        refused = [name for name in unknown if not is_allowed(name, self.allowed)]
        if refused:
            raise UntrustedTypeError(
                f"the skops file holds types from modules that are not allowed imports: "
                f"{', '.join(refused)}; add their modules to MODEL_STEPS_ALLOWED_IMPORTS "
                "if you trust them",
                types=refused,
            )
        stream.seek(0)
        return sio.load(stream, trusted=unknown)


@dataclass(frozen=True)
class CustomSerializer:
    """The step's own ``save`` (``f(obj) -> bytes``) and ``load`` (``f(bytes) -> obj``)."""

    save_ref: str
    load_ref: str
    allowed: Sequence[str]

    def save(self, fitted: Any) -> bytes:
        """What ``save`` returns, which must be bytes."""
        data = import_object(self.save_ref, self.allowed)(fitted)
        if not isinstance(data, bytes):
            raise StepError(f"{self.save_ref!r} returned {type(data).__name__}, not bytes")
        return data

    def load(self, stream: IO[bytes]) -> Any:
        """What ``load`` makes of the bytes."""
        return import_object(self.load_ref, self.allowed)(stream.read())


SERIALIZERS: Mapping[str, Callable[[Sequence[str]], Serializer]] = {
    "joblib": lambda allowed: JoblibSerializer(),
    "skops": SkopsSerializer,
}
"""``StepParameters.serializer`` -> the serializer, given the allow-list."""


def _serializer(step: Step, allowed: Sequence[str]) -> Serializer:
    params = step.parameters
    if params.save is not None and params.load is not None:
        return CustomSerializer(params.save, params.load, allowed)
    return SERIALIZERS[params.serializer](allowed)


def save_fitted(fitted: Any, step: Step, allowed: Sequence[str]) -> bytes:
    """The step's asset bytes, written by its ``save`` callable or its ``serializer``."""
    return _serializer(step, allowed).save(fitted)


def load_fitted(stream: IO[bytes], step: Step, allowed: Sequence[str]) -> Any:
    """The fitted object from the asset file :func:`save_fitted`'s bytes were stored in."""
    return _serializer(step, allowed).load(stream)


Metric = Callable[[Any, Any, Any], Any]
"""``(y_true, y_pred, y_score) -> number``."""


def compute_metrics(
    names: Sequence[str], y_true: Any, y_pred: Any, y_score: Any, allowed: Sequence[str]
) -> dict[str, float]:
    """Each named metric as a float: scikit-learn names (``f1_macro``) or ``pkg.mod:fn``.

    ``y_score`` (class probabilities, see :meth:`StepKind.scores`) is used by ``roc_auc`` only.
    """
    return {name: _number(name, _metric(name, allowed)(y_true, y_pred, y_score)) for name in names}


def _metric(name: str, allowed: Sequence[str]) -> Metric:
    if ":" in name:
        custom = import_object(name, allowed)
        return lambda y_true, y_pred, y_score: custom(y_true, y_pred)
    base, _, suffix = name.rpartition("_")
    base, average = (base, suffix) if suffix in AVERAGES else (name, None)
    kwargs = {} if average is None else {"average": average}
    if base == "roc_auc":
        return lambda y_true, y_pred, y_score: _roc_auc(y_true, y_score, kwargs)
    function = _sklearn_metric(name, base)
    return lambda y_true, y_pred, y_score: function(y_true, y_pred, **kwargs)


def _sklearn_metric(name: str, base: str) -> Callable[..., Any]:
    """``sklearn.metrics.<base>_score``, else ``sklearn.metrics.<base>``: public functions only."""
    metrics = library("sklearn.metrics")
    functions = [n for n in metrics.__all__ if n.islower()]
    for candidate in (f"{base}_score", base):
        if candidate in functions:
            function: Callable[..., Any] = getattr(metrics, candidate)
            return function
    choices = functions + [n.removesuffix("_score") for n in functions if n.endswith("_score")]
    suggestions = did_you_mean(name, choices)
    hint = f" (did you mean {' or '.join(suggestions)}?)" if suggestions else ""
    raise UnknownMetricError(
        f"unknown metric {name!r}{hint}: expected a scikit-learn metric such as 'accuracy', "
        "'f1_macro' or 'mean_absolute_error', or 'package.module:function'",
        suggestions=suggestions,
    )


def _roc_auc(y_true: Any, y_score: Any, kwargs: Mapping[str, Any]) -> Any:
    """ROC AUC from probabilities: the positive class's column, or one-vs-rest for many."""
    if y_score is None:
        raise StepError(
            "'roc_auc' needs class probabilities, and the step's estimator has no predict_proba"
        )
    scores = library("numpy").asarray(y_score)
    if scores.ndim == 2 and scores.shape[1] <= 2:
        scores = scores[:, -1]
    multi = {"multi_class": "ovr"} if scores.ndim == 2 else {}
    return library("sklearn.metrics").roc_auc_score(y_true, scores, **kwargs, **multi)


def _number(name: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError) as error:
        raise StepError(
            f"metric {name!r} gave {type(value).__name__}, not one number: "
            "a metric must return a single number"
        ) from error


def split_xy(frame: DataFrame, training: Training | None) -> tuple[DataFrame, Series | None]:
    """Features and target: ``features`` (else every other column) and the ``target`` column.

    Raises:
        MissingColumnsError: a named column is not in ``frame``.
    """
    if training is None:
        return frame, None
    target = training.target
    wanted = [*([target] if target else []), *(training.features or [])]
    available = [str(column) for column in frame.columns]
    missing = [column for column in wanted if column not in available]
    if missing:
        raise MissingColumnsError(
            f"the data has no column {', '.join(map(repr, missing))}; "
            f"its columns are {', '.join(available)}",
            missing=missing,
            available=available,
        )
    y = frame[target] if target else None
    if training.features:
        return frame[training.features], y
    return (frame.drop(columns=[target]) if target else frame), y


def train_test(
    X: DataFrame, y: Series | None, split: Split | None
) -> tuple[DataFrame, DataFrame | None, Series | None, Series | None]:
    """``(X_train, X_test, y_train, y_test)``; without a split the test parts are None."""
    if split is None:
        return X, None, y, None
    if split.stratify and y is None:
        raise StepError("'stratify' keeps the target's class proportions, so it needs a 'target'")
    train_test_split = library("sklearn.model_selection").train_test_split
    options = {"test_size": split.test_size, "random_state": split.seed}
    if y is None:
        X_train, X_test = train_test_split(X, **options)
        return X_train, X_test, None, None
    try:
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, stratify=y if split.stratify else None, **options
        )
    except ValueError as error:
        raise StepError(f"cannot split the data as 'split' asks: {error}") from error
    return X_train, X_test, y_train, y_test
