"""The evaluation task: score the live version on fresh labelled data, and say if it degraded.

The live version runs through the same inference code as the infer DAG and the handlers, its
last step scored with the same metrics as in training. The record (shaped like the AIND
``ModelEvaluation``) is kept under the version it scored, and names every failed rule and every
drifted feature; a degraded version makes the evaluate DAG update the model's ``degraded``
Asset, on which training may be scheduled (``schedule.train: on degradation``).
"""

from __future__ import annotations

import logging
import resource
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from model_steps.definition.schema import Training
from model_steps.errors import PermanentError
from model_steps.runtime.context import Environment, RunInfo
from model_steps.runtime.drift import DriftJudgement, judge_drift
from model_steps.runtime.infer import version_pipeline
from model_steps.runtime.rendered import EVALUATE, Rendered
from model_steps.runtime.rules import failures, judge
from model_steps.runtime.scoring import score
from model_steps.runtime.scratch import Scratch
from model_steps.runtime.splits import split_xy
from model_steps.runtime.tables import read_table
from model_steps.store.manifest import (
    EvaluationRecord,
    PerformanceMetric,
    ResourceUsage,
    RuleResult,
)
from model_steps.store.model_store import utc_now

if TYPE_CHECKING:
    from model_steps.definition.schema import Evaluation, ModelSpec
    from model_steps.store.manifest import Manifest

__all__ = ["EVALUATE_TASK", "evaluate", "read_evaluation"]

log = logging.getLogger(__name__)

EVALUATE_TASK = "evaluate"
"""The task whose scratch record tells the degraded task which evaluation to read."""


def evaluate(spec: ModelSpec, run: RunInfo, env: Environment, rendered: Rendered) -> dict[str, Any]:
    """Score the live version on the evaluation's data; keep the record beside the version."""
    evaluation = _evaluation(spec)
    started, clock, cpu = utc_now(), time.perf_counter(), time.process_time()
    pointer = env.store.pointer()
    if pointer is None:
        raise PermanentError(
            f"model {spec.name!r} has no live version in {env.store.url()} to evaluate: "
            f"run {spec.name}__train first"
        )
    manifest = env.store.manifest(pointer.version)
    url = rendered.inputs[EVALUATE]
    frame = read_table(
        url,
        str(evaluation.input.inferred_format()),
        places=env.places,
        storage_options=env.storage_options,
        options=evaluation.input.options,
    )
    record = _record(spec, evaluation, manifest, run, frame, url, env)
    record = record.model_copy(
        update={
            "start_date_time": started,
            "end_date_time": utc_now(),
            "resources": ResourceUsage(
                wall_seconds=round(time.perf_counter() - clock, 6),
                cpu_seconds=round(time.process_time() - cpu, 6),
                peak_memory_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            ),
        }
    )
    location = env.store.write_evaluation(record)
    Scratch(env, run).finish(EVALUATE_TASK, {"version": record.version, "record": location})
    log.info(
        "evaluated %s version %d on %d rows from %s: %s",
        spec.name,
        record.version,
        record.row_count,
        url,
        "; ".join(record.reasons) or "not degraded",
    )
    return {
        "version": record.version,
        "degraded": record.degraded,
        "reasons": record.reasons,
        "metrics": {m.name: m.value for m in record.performance},
        "record": location,
    }


def read_evaluation(spec: ModelSpec, run: RunInfo, env: Environment) -> EvaluationRecord:
    """The record this run's evaluate task kept, for the task that signals degradation.

    That task is the run's last, so the run's scratch is removed once the record is read.
    """
    scratch = Scratch(env, run)
    found = scratch.record(EVALUATE_TASK)
    for record in env.store.evaluations(int(found["version"])):
        if record.run_id == run.run_id:
            scratch.clean()
            return record
    raise PermanentError(f"the evaluation of run {run.run_id} is missing from {found['record']}")


def _evaluation(spec: ModelSpec) -> Evaluation:
    if spec.evaluation is None:
        raise PermanentError(f"model {spec.name!r} defines no evaluation")
    return spec.evaluation


def _record(
    spec: ModelSpec,
    evaluation: Evaluation,
    manifest: Manifest,
    run: RunInfo,
    frame: Any,
    url: str,
    env: Environment,
) -> EvaluationRecord:
    """Metrics, rules and drift of the live version on ``frame`` (times filled in by caller)."""
    columns = manifest.steps[0].columns_in or None  # the features this version was fit on
    features, labels = split_xy(frame, Training(target=evaluation.target, features=columns))
    names = evaluation.metrics or spec.steps[-1].parameters.metrics
    pipeline = version_pipeline(manifest, env, spec)
    metrics = score(pipeline, features, labels, names, env.allow, split="evaluation")
    results = judge(evaluation.parsed, metrics, manifest.metrics.get("test", {}))
    reasons = failures(results)
    drift = DriftJudgement()
    if evaluation.drift is not None:
        watched = evaluation.drift
        drift = judge_drift(
            features, manifest.steps[0].reference, watched.threshold, watched.min_rows
        )
        reasons += drift.reasons
    return EvaluationRecord(
        name=f"{run.dag_id}/{run.run_id}",
        model=spec.name,
        version=manifest.version,
        run_id=run.run_id,
        start_date_time="",
        end_date_time="",
        performance=[PerformanceMetric(name=k, value=metrics.get(k)) for k in metrics],
        input_path=url,
        row_count=len(frame),
        resources=ResourceUsage(wall_seconds=0.0, cpu_seconds=0.0, peak_memory_bytes=0),
        degraded=bool(reasons),
        reasons=reasons,
        rules=results,
        drift={k: round(v, 6) for k, v in drift.index.items()},
        drift_rows=drift.rows,
        drift_margin={k: round(v, 6) for k, v in drift.margin.items()},
        skipped_checks=_unchecked(evaluation, manifest, results, drift),
    )


def _unchecked(
    evaluation: Evaluation,
    manifest: Manifest,
    results: Sequence[RuleResult],
    drift: DriftJudgement,
) -> list[str]:
    """What this evaluation could not check on this version, one line per check.

    Said in the record so its silence is not read as health: drift needs the training
    distributions, ``trained`` rules the version's test metrics.
    """
    notes = []
    if evaluation.drift is not None and not manifest.steps[0].reference:
        notes.append(
            f"drift not checked: version {manifest.version} recorded no training distributions "
            "(trained before the evaluation watched drift); the next version will"
        )
    if evaluation.drift is not None and drift.unjudged:
        notes.append(
            f"drift not judged: {', '.join(drift.unjudged)} (fewer than "
            f"{evaluation.drift.min_rows} fresh values, drift.min_rows; a small sample's index "
            "is mostly noise)"
        )
    skipped = [r.rule for r in results if r.passed is None]
    if skipped:
        notes.append(
            f"not applied: {', '.join(skipped)} (version {manifest.version} has no test metric "
            "to compare with)"
        )
    return notes
