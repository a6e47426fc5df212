"""Scoring a published version on labelled data, as the gate and evaluations need it.

The version runs through the same inference code as the infer DAG and the handlers; only its
last step is scored, with the same metric definitions training used, so a number from the gate
or an evaluation compares with the version's own test metrics like for like.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from model_steps.runtime.infer import ReadyStep, infer_frame
from model_steps.runtime.metrics import Metric, step_metrics
from model_steps.settings import AllowList

if TYPE_CHECKING:
    from pandas import DataFrame  # type: ignore[import-untyped, unused-ignore]

__all__ = ["score"]


def score(
    pipeline: Sequence[ReadyStep],
    features: DataFrame,
    target: Any,
    metrics: Sequence[Metric],
    allow: AllowList,
    *,
    split: str,
) -> dict[str, float]:
    """The metrics of a loaded version on ``features`` with true labels ``target``."""
    *head, last = pipeline
    inputs = infer_frame(head, features)
    return step_metrics(last.kind, last.fitted, inputs, target, metrics, allow, split=split)
