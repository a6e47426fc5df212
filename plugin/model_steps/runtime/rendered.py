"""A step's run-specific values: its templates rendered for one run, in the sandbox.

Kept apart from the task runtime so the DAG builder can name them at parse time without
importing the runtime (the store, the data and step libraries), which only a running task needs.
Rendering uses :mod:`model_steps.definition.templates` (Jinja's sandbox over a small context),
never Airflow's environment; each rendered URL is checked before anything reads or writes it:
it stays where its template points, and where the deployment allows data (``places``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from model_steps.definition.schema import ModelSpec, Step
from model_steps.definition.templates import render_native, render_text, template_context
from model_steps.definition.urls import url_refusal
from model_steps.errors import UnsafeUrlError

if TYPE_CHECKING:
    from model_steps.definition.data_locations import DataPlaces
    from model_steps.runtime.context import RunInfo

__all__ = ["EVALUATE", "Rendered", "render_evaluation", "render_step"]

EVALUATE = "evaluate"
"""The key of an evaluation's labelled data among the rendered inputs."""


@dataclass(frozen=True)
class Rendered:
    """A step's run-specific values after its templates were rendered."""

    init: Mapping[str, Any]
    inputs: Mapping[str, str] = field(default_factory=dict)
    outputs: Mapping[str, str] = field(default_factory=dict)

    def fields(self) -> dict[str, Any]:
        """The values as an operator's template field holds them.

        Shallow copies, not :func:`dataclasses.asdict`'s deep ones: a parse builds thousands of
        operators, and their values are replaced whole when a run renders them, never changed.
        """
        return {"init": dict(self.init), "inputs": dict(self.inputs), "outputs": dict(self.outputs)}

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


def render_step(step: Step, phase: str, run: RunInfo, places: DataPlaces) -> Rendered:
    """The step's values for ``run``: init as native values, URLs as checked text.

    Raises:
        TemplateError: a template failed or tried what the sandbox refuses.
        UnsafeUrlError: a rendered URL leaves the place its template names (``..``, another
            scheme or bucket, an absolute path) or the places the deployment allows data in:
            nothing has been read or written yet.
    """
    written = Rendered.templates(step, phase)
    context = _context(run)
    where = f"steps[{step.id}].parameters"
    return Rendered(
        init=render_native(dict(written.init), context, f"{where}.init"),
        inputs=_checked(written.inputs, context, f"{where}.input", places),
        outputs=_checked(written.outputs, context, f"{where}.output", places),
    )


def render_evaluation(spec: ModelSpec, run: RunInfo, places: DataPlaces) -> Rendered:
    """The evaluation's labelled-data URL for ``run``, rendered and checked like a step's."""
    written = Rendered.evaluation(spec)
    inputs = _checked(written.inputs, _context(run), "evaluation.input", places)
    return Rendered(init={}, inputs=inputs)


def _context(run: RunInfo) -> dict[str, Any]:
    return template_context(
        run.params,
        run.run_id,
        run_after=run.run_after,
        logical_date=run.logical_date,
        data_interval_start=run.data_interval_start,
        data_interval_end=run.data_interval_end,
        run_type=run.run_type,
    )


def _checked(
    urls: Mapping[str, str], context: Mapping[str, Any], where: str, places: DataPlaces
) -> dict[str, str]:
    rendered = {}
    for phase, template in urls.items():
        url = render_text(template, context, f"{where}.{phase}.url")
        refusal = url_refusal(template, url)
        if refusal is not None:
            raise UnsafeUrlError(
                f"{where}.{phase}.url: {template!r} renders to {url!r}, which is refused: "
                f"{refusal}; check the run's parameters"
            )
        places.check(url, f"{where}.{phase}.url: {template!r} renders to")
        rendered[phase] = url
    return rendered


def _urls(io: Any, phase: str) -> dict[str, str]:
    ref = getattr(io, phase) if io is not None else None
    return {phase: ref.url} if ref is not None else {}
