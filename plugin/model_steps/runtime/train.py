"""Training one step: fit it on the output of the steps before it, stage its fitted asset.

Each step is fitted on its own data (the first step's input, split into train and test) or on
the previous step's output from the run's scratch; the last step's metrics are computed on
both parts. The asset waits in the try's own scratch folder until
:func:`model_steps.runtime.publish.publish` takes it from the try that succeeded.
"""

from __future__ import annotations

import json
import logging
import resource
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from model_steps.errors import PermanentError
from model_steps.runtime.carried import split_carried, with_carried
from model_steps.runtime.context import (
    Environment,
    RunInfo,
    step_folder,
    step_index,
    write_output,
)
from model_steps.runtime.drift import feature_references
from model_steps.runtime.metrics import Scoring, compute_metrics, scoring
from model_steps.runtime.rendered import Rendered
from model_steps.runtime.scratch import Scratch
from model_steps.runtime.secrets import masked
from model_steps.runtime.serializers import Serializer, serializer_for
from model_steps.runtime.splits import split_xy, train_test
from model_steps.runtime.steps import StepKind, prediction_frame, step_kind
from model_steps.runtime.tables import read_table
from model_steps.store.manifest import FeatureReference, StepRecord
from model_steps.store.model_store import StagedAsset, utc_now

if TYPE_CHECKING:
    from model_steps.definition.schema import ModelSpec, Step

__all__ = ["train_step", "training_columns"]

log = logging.getLogger(__name__)


def train_step(
    spec: ModelSpec, step_id: str, run: RunInfo, env: Environment, rendered: Rendered
) -> dict[str, Any]:
    """Fit one step on the output of the steps before it; stage its asset in the run scratch."""
    index = step_index(spec, step_id)
    step = spec.steps[index]
    started, clock, cpu = utc_now(), time.perf_counter(), time.process_time()
    scratch = Scratch(env, run)
    last = index == len(spec.steps) - 1
    # Everything the step names is resolved (or refused) before any data is read.
    kind = step_kind(step, rendered.init, env.allow, last=last)
    serializer = serializer_for(step, env.allow) if step.has_assets else None
    scorings = [scoring(metric, env.allow) for metric in step.parameters.metrics] if last else []
    parts, samples, carried = _training_data(spec, index, rendered, scratch, env)
    x_train, y_train = parts["train"]
    fit_clock = time.perf_counter()
    fitted = {TRAIN: kind.fit(x_train, y_train)}
    if ALL in parts:  # split.refit: the published step is fitted again, on every row
        fitted[ALL] = kind.fit(*parts[ALL])
    fit_seconds = time.perf_counter() - fit_clock
    fitted_on = ALL if ALL in parts else TRAIN
    published = fitted[fitted_on]
    # The test metrics come from the step fitted on the training part, refit or not.
    metrics = _metrics(scorings, kind, fitted[TRAIN], {k: v for k, v in parts.items() if k != ALL})
    written = _outputs(step, kind, fitted, parts, last, scratch)
    for split, columns in carried.items():
        written += scratch.write_carried(step.id, split, columns)
    if "train" in rendered.outputs:
        model, rows_fitted = published, parts[fitted_on][0]
        output = kind.predict(model, rows_fitted) if last else kind.transform(model, rows_fitted)
        kept = carried[fitted_on] if carried else scratch.read_carried(spec.steps[0].id, fitted_on)
        output = with_carried(prediction_frame(output), kept)
        written += write_output(step, "train", output, rendered, env)
    staged = _stage(spec, step, published, serializer, scratch, env) if serializer else None
    rows = len(x_train) + (len(parts["test"][0]) if "test" in parts else 0)  # one out per in
    reads_data = "train" in rendered.inputs
    if reads_data:
        _keep_test_input(spec, step.id, parts, scratch)
    record = StepRecord(
        step_id=step.id,
        started_at=started,
        ended_at=utc_now(),
        rows_in=rows,
        rows_out=rows,
        columns_in=[str(c) for c in x_train.columns],
        fit_seconds=round(fit_seconds, 6),
        cpu_seconds=round(time.process_time() - cpu, 6),
        peak_memory_bytes=_peak_memory(),
        metrics=metrics,
        dtypes_in={str(c): str(t) for c, t in x_train.dtypes.items()},
        definition=_trained_definition(step, rendered.init),
        rows={split: len(features) for split, (features, _) in parts.items()},
        fitted_on=fitted_on,
        inputs={"train": rendered.inputs["train"]} if reads_data else {},
        reference=_reference(spec, parts[fitted_on][0]) if reads_data else {},
    )
    document = {
        "record": record.model_dump(mode="json"),
        "samples": samples,
        "classes": _classes(published) if last else [],
    }
    scratch.finish(
        step.id,
        {**masked(document, env.mask), "staged": staged.__dict__ if staged else None},
    )
    written += staged.size if staged else 0
    log.info(
        "trained step %s of %s: %d rows, %d columns, fit %.3fs, wall %.3fs, %d bytes "
        "written, metrics %s",
        step.id,
        spec.name,
        rows,
        len(x_train.columns),
        fit_seconds,
        time.perf_counter() - clock,
        written,
        metrics or "-",
    )
    return {
        "step": step.id,
        "rows": rows,
        "fit_seconds": record.fit_seconds,
        "bytes_written": written,
        "metrics": metrics,
    }


TRAIN, TEST, ALL = "train", "test", "all"
"""The parts of the data a step hands on: the split's two, and every row when it refits."""
TEST_INPUT = "test-input"
"""Scratch name of the raw test part (beside the first step's outputs), kept for scoring the
live version on the same rows as a candidate."""


def _keep_test_input(
    spec: ModelSpec, step_id: str, parts: Mapping[str, tuple[Any, Any]], scratch: Scratch
) -> None:
    """Keep the test part as read (before any step) when the gate scores the live version.

    A relative gate rule is fair only on the same data, so the gate task runs the live version
    on exactly these rows.
    """
    if spec.gate.relative and "test" in parts:
        features, target = parts["test"]
        scratch.write_frame(step_id, TEST_INPUT, features, target)


def _reference(spec: ModelSpec, x_train: Any) -> dict[str, FeatureReference]:
    """The training part's feature distributions, when the model's evaluation watches drift."""
    evaluation = spec.evaluation
    if evaluation is None or evaluation.drift is None:
        return {}
    drift = evaluation.drift
    return feature_references(x_train, drift.bins, drift.features)


def _classes(fitted: Any) -> list[str]:
    """A classifier's labels in its own order (``classes_``); none for other estimators."""
    classes = getattr(fitted, "classes_", None)
    return [str(label) for label in classes] if classes is not None else []


def _trained_definition(step: Step, init: Mapping[str, Any]) -> dict[str, Any]:
    """The step as JSON with ``init`` as this run rendered it (templates filled in)."""
    definition = step.model_dump(mode="json", by_alias=True, exclude_none=True)
    definition["parameters"]["init"] = json.loads(json.dumps(dict(init), default=str))
    return definition


def _outputs(
    step: Step,
    kind: StepKind,
    fitted: Mapping[str, Any],
    parts: Mapping[str, tuple[Any, Any]],
    last: bool,
    scratch: Scratch,
) -> int:
    """Bytes written of the transformed data a step hands on (every step but the last).

    The train and test parts go through the step fitted on the train part, so the next steps'
    test data is honest; with ``refit``, every row also goes through the step fitted on every
    row, which is the one published.
    """
    written = 0
    if not last:
        for split, (features, target) in parts.items():
            output = kind.transform(fitted[ALL if split == ALL else TRAIN], features)
            written += scratch.write_frame(step.id, split, output, target)
    return written


def training_columns(step: Step) -> list[str] | None:
    """The columns training reads: features, target and carried ones; None for all of them.

    A step that names its ``features`` reads only those (and its target and ``carry``), so a
    wide table's other columns are never decoded; without ``features`` every column is one.
    """
    training = step.parameters.training
    if training is None or not training.features:
        return None
    wanted = [*training.features, *([training.target] if training.target else [])]
    return list(dict.fromkeys([*wanted, *step.parameters.carry]))


def _training_data(
    spec: ModelSpec, index: int, rendered: Rendered, scratch: Scratch, env: Environment
) -> tuple[dict[str, tuple[Any, Any]], list[dict[str, Any]], dict[str, Any]]:
    """This step's train (and test, and all) parts, sample records and carried columns.

    A step with its own input reads and splits it, taking its ``carry`` columns out first (by
    part, row for row); any other takes the previous step's output from the run scratch.
    """
    step = spec.steps[index]
    params = step.parameters
    if params.input is not None and params.input.train is not None:
        frame = read_table(
            rendered.inputs["train"],
            str(params.input.train.inferred_format()),
            places=env.places,
            storage_options=env.storage_options,
            options=params.input.train.options,
            columns=training_columns(step),
        )
        frame, carried = split_carried(frame, step)
        features, target = split_xy(frame, params.training)
        split = params.training.split if params.training else None
        x_train, x_test, y_train, y_test = train_test(features, target, split)
        parts = {TRAIN: (x_train, y_train)}
        if x_test is not None:
            parts[TEST] = (x_test, y_test)
            if split is not None and split.refit:
                parts[ALL] = (features, target)
        samples = _samples(x_train, carried) if index == 0 else []
        log.info(
            "read %d rows, %d columns from %s",
            len(frame),
            len(frame.columns),
            rendered.inputs["train"],
        )
        kept = {} if carried is None else {n: carried.loc[x.index] for n, (x, _) in parts.items()}
        return parts, samples, kept
    previous = spec.steps[index - 1].id
    parts = {
        split: found
        for split in (TRAIN, TEST, ALL)
        if (found := scratch.read_frame(previous, split)) is not None
    }
    if "train" not in parts:
        raise PermanentError(
            f"step {step.id!r} found no output of step {previous!r} in "
            f"{scratch.url(previous)}: did it run in this run?"
        )
    return parts, [], {}


def _samples(x_train: Any, carried: Any) -> list[dict[str, Any]]:
    """The first training records as a caller sends them: carried columns, then features."""
    head = x_train.head(5)
    if carried is not None:
        head = with_carried(head, carried.loc[head.index])
    records: list[dict[str, Any]] = json.loads(head.to_json(orient="records"))
    return records


def _metrics(
    scorings: Sequence[Scoring], kind: StepKind, fitted: Any, parts: Mapping[str, tuple[Any, Any]]
) -> dict[str, dict[str, float]]:
    """Each metric on each labelled part, from what the fitted step predicts for it."""
    if not scorings:
        return {}
    predictor = kind.predictor(fitted)
    return {
        split: compute_metrics(scorings, predictor, features, target, split=split)
        for split, (features, target) in parts.items()
        if target is not None
    }


def _stage(
    spec: ModelSpec,
    step: Step,
    fitted: Any,
    serializer: Serializer,
    scratch: Scratch,
    env: Environment,
) -> StagedAsset:
    identifier = str(step.assets_identifier)
    url = scratch.own(step.id, "assets", identifier)
    size, sha256 = env.store.write_bytes(url, serializer.save(fitted))
    root = step_folder(spec, step) or env.store.url()
    return StagedAsset(step.id, url, size, sha256, step.serializer, identifier, root)


def _peak_memory() -> int:
    """Peak resident memory of this task's process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
