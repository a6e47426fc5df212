"""Metric functions of the corpus's own: one on labels, one on probabilities."""

from __future__ import annotations

from typing import Any

import numpy as np


def within_ten_percent(y_true: Any, y_pred: Any) -> float:
    """Share of predictions within 10 % of the truth."""
    truth, predicted = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    return float(np.mean(np.abs(predicted - truth) <= 0.1 * np.abs(truth)))


def mean_top_probability(y_true: Any, y_proba: Any) -> float:
    """How sure the model is on average: the mean of each row's highest class probability."""
    proba = np.asarray(y_proba, dtype=float)
    return float(np.mean(proba.max(axis=1) if proba.ndim == 2 else np.maximum(proba, 1 - proba)))
