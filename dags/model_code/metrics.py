"""Metric functions of the docs' examples: a metric of your own is a function in the DAGs folder.

A step lists it by reference (``model_code.metrics:within_ten_percent``); it is called with the
true values and what the scorer's response method gave (``reference/metrics.md`` in the docs).
"""

from __future__ import annotations

from typing import Any


def within_ten_percent(y_true: Any, y_pred: Any) -> float:
    """Share of predictions within 10 % of the true value (labels: share of exact matches)."""
    import numpy as np

    truth, predicted = np.asarray(y_true), np.asarray(y_pred)
    if truth.dtype.kind not in "iuf" or predicted.dtype.kind not in "iuf":
        return float(np.mean(truth == predicted))
    return float(np.mean(np.abs(predicted - truth) <= 0.1 * np.abs(truth)))


def top_decile_lift(y_true: Any, y_pred: Any, decile: int = 1) -> float:
    """How much more often the positive class occurs in the ``decile`` highest-scored tenths.

    ``y_pred`` is the positive class's probability (``response_method: predict_proba``).
    """
    import numpy as np

    truth = np.asarray(y_true) == np.unique(y_true)[-1]
    order = np.argsort(-np.asarray(y_pred, dtype=float))
    top = order[: max(1, len(order) * decile // 10)]
    base = truth.mean()
    return float(truth[top].mean() / base) if base else 0.0
