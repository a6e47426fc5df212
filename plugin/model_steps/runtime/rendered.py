"""A step's run-specific values: what Airflow renders before a task runs.

Kept apart from the task runtime so the DAG builder can name them at parse time without
importing the runtime (the store, the data and step libraries), which only a running task needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from model_steps.definition.schema import ModelSpec, Step

__all__ = ["EVALUATE", "Rendered"]

EVALUATE = "evaluate"
"""The key of an evaluation's labelled data among the rendered inputs."""


@dataclass(frozen=True)
class Rendered:
    """A step's run-specific values after Airflow rendered their templates."""

    init: Mapping[str, Any]
    inputs: Mapping[str, str] = field(default_factory=dict)
    outputs: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def templates(cls, step: Step, phase: str) -> Rendered:
        """The step's values as written, before rendering, for one phase (train or infer).

        Only the phase's own URLs are rendered, so a training task never fails on a template
        that only an inference run can fill.
        """
        params = step.parameters
        return cls(
            init=dict(params.init),
            inputs=_urls(params.input, phase),
            outputs=_urls(params.output, phase),
        )

    @classmethod
    def evaluation(cls, spec: ModelSpec) -> Rendered:
        """The evaluation's labelled-data URL as written, before rendering."""
        evaluation = spec.evaluation
        return cls(init={}, inputs={EVALUATE: evaluation.input.url} if evaluation else {})


def _urls(io: Any, phase: str) -> dict[str, str]:
    ref = getattr(io, phase) if io is not None else None
    return {phase: ref.url} if ref is not None else {}
