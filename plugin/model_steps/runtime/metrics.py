"""Metrics of a trained model on its train and test data, computed by scikit-learn's scorers.

A scorer knows what its metric needs from the model (labels, the probability of each class in
the estimator's ``classes_`` order, decision scores) and which class is the positive one, so
``log_loss`` gets probabilities and ``f1_macro`` labels, for numeric and string labels alike,
exactly as ``cross_validate`` would compute them. Names are scikit-learn's scorer names with the
``neg_`` prefix optional (``log_loss`` is recorded as the loss itself, ``neg_log_loss`` as its
negation), or the function's own name (``brier_score_loss``, ``accuracy_score``). A metric
function of the definition's own is wrapped in a scorer with the response method it asks for.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from model_steps.definition.schema import MetricFunction, metric_key
from model_steps.errors import StepError, UnknownMetricError, closest
from model_steps.libraries import library
from model_steps.runtime.resolution import resolve_function
from model_steps.runtime.steps import as_fitted
from model_steps.settings import AllowList

if TYPE_CHECKING:
    from model_steps.runtime.steps import StepKind

__all__ = ["Metric", "Scoring", "compute_metrics", "metric_names", "scoring", "step_metrics"]

Metric = str | MetricFunction
"""A metric as a step lists it: a scorer name, ``pkg.mod:fn``, or a function with its needs."""


@dataclass(frozen=True)
class Scoring:
    """A metric ready to compute: scikit-learn's scorer and how to read its value."""

    key: str
    """What the value is recorded under (the name as written, or the function's name)."""
    scorer: Any
    """``scorer(estimator, X, y) -> number``, calling the estimator's response method itself."""
    sign: float
    """1, or -1 to turn a ``neg_`` scorer's value back into the metric (a loss stays > 0)."""
    responses: tuple[str, ...]
    """The estimator methods the scorer may use; it needs one of them (empty: unknown)."""


def metric_names() -> list[str]:
    """Every metric name scikit-learn's registry offers, as users write them (no ``neg_``)."""
    names = library("sklearn.metrics").get_scorer_names()
    return sorted({name.removeprefix("neg_") for name in names})


def scoring(metric: Metric, allow: AllowList) -> Scoring:
    """The scorer behind ``metric``: a registry name, or a function wrapped in a scorer.

    Raises:
        UnknownMetricError: the name is not a scorer (with near misses: ``rmse`` suggests
            ``root_mean_squared_error``).
        ImportRefusedError: a metric function the allow-list refuses.
    """
    if isinstance(metric, str) and ":" not in metric:
        return _named(metric)
    function = MetricFunction(function=metric) if isinstance(metric, str) else metric
    make_scorer = library("sklearn.metrics").make_scorer
    score = resolve_function(function.function, "metric", allow)
    scorer = make_scorer(score, response_method=function.response_method, **function.options)
    return Scoring(metric_key(metric), scorer, 1.0, (function.response_method,))


def _named(name: str) -> Scoring:
    metrics = library("sklearn.metrics")
    registry = set(metrics.get_scorer_names())
    found = next((c for c in _candidates(name) if c in registry), None)
    if found is None:
        raise UnknownMetricError(
            f"unknown metric {name!r}: expected a scikit-learn scorer name such as 'accuracy', "
            "'f1_macro', 'log_loss' or 'root_mean_squared_error' (the 'neg_' prefix is "
            "optional), or 'package.module:function'",
            suggestions=closest(name, metric_names()),
        )
    scorer = metrics.get_scorer(found)
    negated = found.startswith("neg_") and not name.startswith("neg_")
    return Scoring(name, scorer, -1.0 if negated else 1.0, _responses(scorer))


def _candidates(name: str) -> Iterator[str]:
    """Registry names ``name`` may mean: itself, its ``neg_`` form, its function's name."""
    yield name
    yield f"neg_{name}"
    yield name.removesuffix("_score")  # accuracy_score -> accuracy
    yield f"neg_{name.removesuffix('_loss')}"  # brier_score_loss -> neg_brier_score


def _responses(scorer: Any) -> tuple[str, ...]:
    """The response methods a registry scorer tries, in order.

    scikit-learn shows them only in the scorer's repr and its ``_response_method``; when a
    release renames that attribute the estimator check is skipped, not the metric.
    """
    method = getattr(scorer, "_response_method", None)
    if isinstance(method, str):
        return (method,)
    if isinstance(method, list | tuple):
        return tuple(str(m) for m in method)
    return ()


def compute_metrics(
    scorings: Sequence[Scoring], predictor: Any, X: Any, y: Any, *, split: str
) -> dict[str, float]:
    """Each metric of ``predictor`` on ``X`` against ``y``, as a float, keyed as recorded.

    ``scorings`` come from :func:`scoring` (resolved before the step fits, so a bad name
    never costs a fit); ``predictor`` is what :meth:`StepKind.predictor` gives: a fitted
    estimator, or an object with the ``predict`` of a callable step.

    Raises:
        StepError: a metric cannot be computed (the message names it, the split and why).
    """
    estimator = _scoring_estimator(predictor)
    X = as_fitted(predictor, X)  # a step fitted on an array is scored on one
    results: dict[str, float] = {}
    for found in scorings:
        try:
            value = found.scorer(estimator, X, y)
        except Exception as error:  # any failure is this metric's, and the user must know which
            raise StepError(
                f"metric {found.key!r} failed on the {split} data: {type(error).__name__}: {error}"
            ) from error
        results[found.key] = _number(found.key, value) * found.sign
    return results


def step_metrics(
    kind: StepKind,
    fitted: Any,
    X: Any,
    y: Any,
    metrics: Sequence[Metric],
    allow: AllowList,
    *,
    split: str,
) -> dict[str, float]:
    """The metrics of a fitted last step on labelled data (its input ``X``, labels ``y``).

    Training scores its train and test parts this way (resolving the scorers before the fit),
    the gate the live version on the same test part, and an evaluation the live version on
    fresh data: one definition of each metric.
    """
    scorings = [scoring(metric, allow) for metric in metrics]
    return compute_metrics(scorings, kind.predictor(fitted), X, y, split=split)


def _scoring_estimator(predictor: Any) -> Any:
    """``predictor`` as scikit-learn's scorers need it: an estimator that declares its type.

    scikit-learn, xgboost and lightgbm models are used as they are. Anything else (a class of
    the DAGs folder's, a callable step) is wrapped in an estimator that offers the same
    methods and says it is a classifier when it has ``classes_``.
    """
    if hasattr(predictor, "__sklearn_tags__"):
        return predictor
    return _scored_class()(predictor)


@functools.cache
def _scored_class() -> type:
    """The wrapper class, made on first use so scikit-learn is imported only by a scoring task."""
    base = library("sklearn.base")
    available_if = library("sklearn.utils.metaestimators").available_if

    def offers(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Offer a method only when the wrapped object has it, as scorers probe with hasattr."""
        decorator: Callable[[Callable[..., Any]], Callable[..., Any]] = available_if(
            lambda self: hasattr(self.predictor, name)
        )
        return decorator

    class Scored(base.BaseEstimator):  # type: ignore[misc, name-defined]
        """A fitted object that is not a scikit-learn estimator, as scorers see one."""

        def __init__(self, predictor: Any = None) -> None:
            self.predictor = predictor

        def __sklearn_tags__(self) -> Any:
            tags = super().__sklearn_tags__()
            tags.estimator_type = (
                "classifier" if hasattr(self.predictor, "classes_") else "regressor"
            )
            return tags

        @property
        def classes_(self) -> Any:
            return self.predictor.classes_

        def predict(self, X: Any) -> Any:
            return self.predictor.predict(X)

        @offers("predict_proba")
        def predict_proba(self, X: Any) -> Any:
            return self.predictor.predict_proba(X)

        @offers("predict_log_proba")
        def predict_log_proba(self, X: Any) -> Any:
            return self.predictor.predict_log_proba(X)

        @offers("decision_function")
        def decision_function(self, X: Any) -> Any:
            return self.predictor.decision_function(X)

    return Scored


def _number(name: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError) as error:
        raise StepError(
            f"metric {name!r} gave {type(value).__name__}, not one number: "
            "a metric must return a single number"
        ) from error
