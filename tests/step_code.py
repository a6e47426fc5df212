"""Custom code that test definitions name: a callable step, an estimator, a serializer, a metric."""

from __future__ import annotations

import json
from typing import Any

import numpy as np


def scale_by(data: Any, factor: float) -> Any:
    """A callable step: every value times ``factor``."""
    return data * factor


class Shift:
    """An estimator from a module outside the default allow-list: subtracts the column means."""

    def fit(self, X: Any, y: Any = None) -> Shift:
        self.means_ = np.asarray(X).mean(axis=0)
        return self

    def transform(self, X: Any) -> Any:
        return X - self.means_


def save_shift(shift: Shift) -> bytes:
    """A custom save: the means as JSON."""
    return json.dumps(shift.means_.tolist()).encode()


def load_shift(data: bytes) -> Shift:
    """The custom load that goes with :func:`save_shift`."""
    shift = Shift()
    shift.means_ = np.array(json.loads(data))
    return shift


def misses(y_true: Any, y_pred: Any) -> int:
    """A custom metric: how many predictions are wrong."""
    return int((y_true != y_pred).sum())
