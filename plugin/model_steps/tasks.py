"""What each generated task does, in plain Python that knows nothing of Airflow.

The operators in :mod:`model_steps.dags` translate Airflow's run context into a :class:`RunInfo`
and call one of these functions, so the train, infer and publish logic can be run and tested
without a scheduler (and by a serving process, for inference).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from model_steps.errors import NotImplementedYetError
from model_steps.spec import ModelSpec

__all__ = ["RunInfo", "infer_step", "publish", "train_step"]


@dataclass(frozen=True)
class RunInfo:
    """The facts about the current run that a task needs (ids, dates, resolved parameters)."""

    dag_id: str
    run_id: str
    logical_date: datetime | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    try_number: int = 1


def _not_yet(what: str, spec: ModelSpec) -> NotImplementedYetError:
    return NotImplementedYetError(
        f"{what} for model {spec.name!r} is not implemented yet in this release of "
        "airflow-model-steps: the DAG layout is final, step execution and publishing come next"
    )


def train_step(spec: ModelSpec, step_id: str, run: RunInfo) -> dict[str, Any]:
    """Fit one step on the output of the steps before it and save its asset to the run scratch."""
    raise _not_yet(f"training step {step_id!r}", spec)


def infer_step(spec: ModelSpec, step_id: str, run: RunInfo) -> dict[str, Any]:
    """Transform or predict with one step of the current published version."""
    raise _not_yet(f"inference step {step_id!r}", spec)


def publish(spec: ModelSpec, run: RunInfo) -> dict[str, Any]:
    """Publish the run's assets as the model's next version (pointer moves last)."""
    raise _not_yet("publishing", spec)
