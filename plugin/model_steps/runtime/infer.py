"""Inference with a published version: its steps loaded, run on one frame or chained.

The infer DAG runs one :class:`ReadyStep` per task on each batch of a partition
(:mod:`model_steps.runtime.partitioned`) and real-time handlers, the gate and evaluations chain
them all (:func:`infer_frame`), so all of them compute predictions with the same code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from model_steps.definition.schema import Step
from model_steps.errors import PermanentError, StepError
from model_steps.runtime.context import Environment, RunInfo
from model_steps.runtime.rendered import Rendered
from model_steps.runtime.serializers import check_loading, load_fitted
from model_steps.runtime.steps import StepKind, prediction_frame, step_kind
from model_steps.store.manifest import Manifest

if TYPE_CHECKING:
    import pandas as pd

    from model_steps.definition.schema import ModelSpec

__all__ = [
    "ReadyStep",
    "features_of",
    "infer_frame",
    "load_step",
    "ready_step",
    "run_version",
    "version_pipeline",
    "version_step",
]


@dataclass(frozen=True)
class ReadyStep:
    """One step of a published version, loaded and ready to infer.

    The infer DAG runs one per task and real-time handlers chain them all
    (:func:`infer_frame`), so both compute predictions with the same code.
    """

    step: Step
    kind: StepKind
    fitted: Any
    last: bool

    def run(self, features: pd.DataFrame) -> pd.DataFrame:
        """The next step's input, or for the last step the predictions as a frame."""
        if self.last:
            return prediction_frame(self.kind.predict(self.fitted, features))
        return self.kind.transform(self.fitted, features)


def ready_step(
    step: Step,
    manifest: Manifest,
    env: Environment,
    init: Mapping[str, Any],
    *,
    last: bool,
    defined: Step | None = None,
) -> ReadyStep:
    """A step of ``manifest``'s version with its fitted object loaded (checksum verified).

    What the step names is resolved first, so a refused name never gets its asset loaded;
    ``defined`` (the definition's step, when known) bounds the serializer that may load it.
    """
    kind = step_kind(step, init, env.allow, last=last)
    fitted = load_step(step, manifest, env, defined) if step.has_assets else None
    return ReadyStep(step, kind, fitted, last)


def infer_frame(pipeline: Sequence[ReadyStep], features: pd.DataFrame) -> pd.DataFrame:
    """Each step's output feeds the next; the last one's is the prediction."""
    for ready in pipeline:
        features = ready.run(features)
    return features


def version_pipeline(
    manifest: Manifest, env: Environment, spec: ModelSpec | None = None
) -> tuple[ReadyStep, ...]:
    """Every step of a published version, loaded: what a real-time handler runs.

    The steps are the version's own, as trained (its manifest records them with their init
    rendered), so a definition edited since cannot mix into it. Manifests written before they
    recorded steps fall back on ``spec``, whose init must then hold no Airflow template (only
    Airflow renders those).
    """
    steps = _published_steps(manifest, spec)
    defined = {step.id: step for step in spec.steps} if spec else {}
    last = len(steps) - 1
    return tuple(
        ready_step(
            step,
            manifest,
            env,
            step.parameters.init,
            last=index == last,
            defined=defined.get(step.id),
        )
        for index, step in enumerate(steps)
    )


def _recorded_steps(manifest: Manifest) -> list[Step] | None:
    """The steps as the version trained them; None for manifests that did not record them."""
    records = manifest.steps
    if records and all(record.definition is not None for record in records):
        return [Step.model_validate(record.definition) for record in records]
    return None


def _published_steps(manifest: Manifest, spec: ModelSpec | None) -> list[Step]:
    recorded = _recorded_steps(manifest)
    if recorded is not None:
        return recorded
    if spec is None:
        raise PermanentError(
            f"version {manifest.version} of {manifest.model} does not record its steps "
            "(published by an older release): serve it with its definition"
        )
    for step in spec.steps:
        if "{{" in json.dumps(step.parameters.init, default=str):
            raise StepError(
                f"step {step.id!r} has Airflow templates in its init arguments, and version "
                f"{manifest.version} does not record them rendered: train a new version"
            )
    return list(spec.steps)


def version_step(
    manifest: Manifest, spec: ModelSpec, index: int, rendered: Rendered
) -> tuple[Step, Mapping[str, Any]]:
    """The version's step at ``index`` and its init, as :func:`version_pipeline` loads it.

    Manifests written before they recorded steps fall back on the definition's step, with
    the init this run rendered.

    Raises:
        PermanentError: the version was trained with other steps than the definition has now.
    """
    recorded = _recorded_steps(manifest)
    if recorded is None:
        return spec.steps[index], rendered.init
    trained, now = [s.id for s in recorded], [s.id for s in spec.steps]
    if trained != now:
        raise PermanentError(
            f"version {manifest.version} of {manifest.model} was trained with steps {trained}, "
            f"and the definition now has {now}: infer with a version trained on these steps "
            "(train again, or pass another version)"
        )
    return recorded[index], recorded[index].parameters.init


def load_step(step: Step, manifest: Manifest, env: Environment, defined: Step | None = None) -> Any:
    """A step's fitted object from a published version, verified against its checksum.

    Raises:
        SerializerRefusedError: the version asks for a weaker serializer than ``defined``'s.
    """
    record = manifest.asset(step.id)
    if record is None:
        raise PermanentError(
            f"version {manifest.version} of {manifest.model} has no asset for step {step.id!r}"
        )
    check_loading(step, record, defined)
    with env.store.open_asset(record) as stream:
        return load_fitted(stream, step, env.allow)


def run_version(spec: ModelSpec, run: RunInfo, env: Environment) -> int:
    """The version asked for (an Asset event's), else the one the pointer names now."""
    if run.version is not None:
        return run.version
    pointer = env.store.pointer()
    if pointer is None:
        raise PermanentError(
            f"model {spec.name!r} has no published version in "
            f"{env.store.url()}: run {spec.name}__train first"
        )
    return pointer.version


def features_of(frame: pd.DataFrame, step: Step) -> pd.DataFrame:
    """The columns a model reads from new data: ``features``, else all but the target."""
    training = step.parameters.training
    if training and training.features:
        return frame[training.features]
    if training and training.target and training.target in frame.columns:
        return frame.drop(columns=training.target)
    return frame
