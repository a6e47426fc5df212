"""Metrics of a trained model on its train and test data.

Names are scikit-learn's (``accuracy``, ``f1_macro``, ``roc_auc``) or ``package.module:function``
through the import allow-list; every metric must give one number.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from model_steps.definition.allowlist import import_object
from model_steps.errors import StepError, UnknownMetricError, did_you_mean
from model_steps.libraries import library
from model_steps.runtime.steps import as_fitted

if TYPE_CHECKING:
    from model_steps.runtime.steps import StepKind

__all__ = ["AVERAGES", "Metric", "compute_metrics", "step_metrics"]

AVERAGES = ("macro", "micro", "weighted")
"""Metric name suffixes that select scikit-learn's ``average=`` (``f1_macro``)."""


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


def step_metrics(
    kind: StepKind, fitted: Any, X: Any, y: Any, names: Sequence[str], allowed: Sequence[str]
) -> dict[str, float]:
    """The named metrics of a fitted last step on labelled data (its input ``X``, labels ``y``).

    Training scores its train and test parts with it, the gate the live version on the same
    test part, and an evaluation the live version on fresh data: one definition of each metric.
    """
    # Metrics compare labels, even when the step's predict method is predict_proba.
    # A step fitted on an array is given one (the caller checked the columns).
    labels = (
        fitted.predict(as_fitted(fitted, X))
        if hasattr(fitted, "predict")
        else kind.predict(fitted, X)
    )
    needs_scores = any(name.startswith("roc_auc") for name in names)
    scores = kind.scores(fitted, X) if needs_scores else None
    return compute_metrics(names, y, labels, scores, allowed)
