"""Shaping a step's training data: features and target, then the held-out test split."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from model_steps.errors import MissingColumnsError, StepError
from model_steps.libraries import library

if TYPE_CHECKING:
    from pandas import DataFrame, Series  # type: ignore[import-untyped, unused-ignore]

    from model_steps.definition.schema import Split, Training

__all__ = ["require_columns", "split_xy", "train_test"]


def split_xy(frame: DataFrame, training: Training | None) -> tuple[DataFrame, Series | None]:
    """Features and target: ``features`` (else every other column) and the ``target`` column.

    Raises:
        MissingColumnsError: a named column is not in ``frame``.
    """
    if training is None:
        return frame, None
    target = training.target
    require_columns(frame, [*([target] if target else []), *(training.features or [])])
    y = frame[target] if target else None
    if training.features:
        return frame[training.features], y
    return (frame.drop(columns=[target]) if target else frame), y


def require_columns(frame: DataFrame, wanted: Sequence[str], purpose: str = "") -> None:
    """Refuse data without one of the ``wanted`` columns, naming those it has.

    Raises:
        MissingColumnsError: a wanted column is not in ``frame``.
    """
    available = [str(column) for column in frame.columns]
    missing = [column for column in wanted if column not in available]
    if missing:
        raise MissingColumnsError(
            f"the data has no column {', '.join(map(repr, missing))}{purpose}; "
            f"its columns are {', '.join(available)}",
            missing=missing,
            available=available,
        )


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
