"""A run's trained steps as a candidate version: claimed, promoted, described, not yet live.

Staging happens once per run: the gate task stages the candidate it decided on (refused ones
too, so a reviewer can see what was turned away and why), or the publish task stages it when
the model has no gate. The staging task's record in the run's scratch remembers the version,
the decision and which try of each step it was built from: a retried task never claims a second
number nor decides again, while a run cleared and trained again (new tries) is decided anew.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from model_steps.definition.schema import Step, spec_hash
from model_steps.libraries import library
from model_steps.runtime.carried import split_carried
from model_steps.runtime.context import Environment, RunInfo
from model_steps.runtime.infer import ReadyStep, infer_frame
from model_steps.runtime.scratch import Scratch
from model_steps.runtime.secrets import masked
from model_steps.runtime.serializers import check_loading, load_fitted
from model_steps.runtime.steps import step_kind
from model_steps.store.cards import model_card
from model_steps.store.manifest import AssetRecord, GateRecord, Manifest, StepRecord, Timings
from model_steps.store.model_store import StagedAsset, utc_now

if TYPE_CHECKING:
    from model_steps.definition.schema import ModelSpec

__all__ = [
    "GATE_TASK",
    "LIBRARIES",
    "PUBLISH_TASK",
    "Candidate",
    "read_candidate",
    "stage_candidate",
]

GATE_TASK = "gate"
"""The task that stages (and decides on) a gated model's candidate."""
PUBLISH_TASK = "publish"
"""The task that stages an ungated model's candidate, then makes it live."""
LIBRARIES = (
    "airflow-model-steps",
    "apache-airflow",
    "scikit-learn",
    "pandas",
    "numpy",
    "scipy",
    "joblib",
    "skops",
    "pyarrow",
    "fsspec",
    "s3fs",
    "xgboost",
    "xgboost-cpu",
    "lightgbm",
)
"""Distributions whose versions each manifest records (those installed)."""


@dataclass(frozen=True)
class Candidate:
    """The version a run staged, and what the gate decided about it."""

    version: int
    outcome: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for the task's return value."""
        return {"version": self.version, "outcome": self.outcome, "reason": self.reason}


def read_candidate(scratch: Scratch, task: str, spec: ModelSpec) -> Candidate | None:
    """The candidate ``task`` staged from the steps' current tries, if one of its tries did.

    A candidate staged from older tries (the run was cleared and its steps trained again) is
    not this run's candidate any more: None, so the caller decides and stages anew.
    """
    if scratch.finished_try(task) is None:
        return None
    found = scratch.record(task)
    if "candidate" not in found or found.get("trained_from") != _step_tries(scratch, spec):
        return None
    return Candidate(**found["candidate"])


def _step_tries(scratch: Scratch, spec: ModelSpec) -> dict[str, int | None]:
    """The try of each step that the run's next task reads (the newest finished one)."""
    return {step.id: scratch.finished_try(step.id) for step in spec.steps}


def stage_candidate(
    spec: ModelSpec, run: RunInfo, env: Environment, gate: GateRecord | None
) -> Candidate:
    """Stage the run's assets as the model's next version, recording the gate's decision.

    The record is the staging task's own (the gate's, or publish's without a gate): its next
    try reads it back instead of staging again.
    """
    scratch = Scratch(env, run)
    entries = [scratch.record(step.id) for step in spec.steps]  # each step's successful try
    staged = [StagedAsset(**entry["staged"]) for entry in entries if entry["staged"]]
    records = [StepRecord.model_validate(entry["record"]) for entry in entries]
    load_seconds, per_record = _serving_cost(spec, entries, env)
    timings = Timings(
        train_wall_seconds=_seconds_since(records[0].started_at),
        train_cpu_seconds=round(sum(r.cpu_seconds for r in records), 6),
        load_seconds=load_seconds,
        predict_seconds_per_record=per_record,
    )

    def manifest_for(version: int, assets: Mapping[str, AssetRecord]) -> Manifest:
        """The version's manifest, with every secret Airflow knows masked (:mod:`.secrets`)."""
        manifest = Manifest(
            model=spec.name,
            version=version,
            definition_version=spec.version,
            spec_hash=spec_hash(spec),
            dag_id=run.dag_id,
            run_id=run.run_id,
            created_at=records[0].started_at,
            published_at=utc_now(),
            steps=[r.model_copy(update={"asset": assets.get(r.step_id)}) for r in records],
            metrics=records[-1].metrics,
            parameters=json.loads(json.dumps(dict(run.params), default=str)),
            environment=_versions(),
            comments=[c.model_dump(mode="json") for c in spec.comments],
            sample_records=entries[0]["samples"],
            class_labels=entries[-1].get("classes") or [],
            gate=gate,
            timings=timings,
            hardware=_hardware(),
        )
        return Manifest.model_validate(masked(manifest.model_dump(mode="json"), env.mask))

    manifest = env.store.stage(staged, manifest_for, lambda m: env.mask(model_card(spec, m)))
    candidate = Candidate(
        manifest.version,
        gate.outcome if gate else "accepted",
        gate.reason if gate else "no gate",
    )
    scratch.finish(
        GATE_TASK if gate else PUBLISH_TASK,
        {"candidate": candidate.as_dict(), "trained_from": _step_tries(scratch, spec)},
    )
    return candidate


def _serving_cost(
    spec: ModelSpec, entries: Sequence[Mapping[str, Any]], env: Environment
) -> tuple[float | None, float | None]:
    """Seconds to load the trained steps, and per record to predict the sample records.

    Measured on the staged assets (the very bytes the version will hold, checksums verified)
    the way a handler loads and warms up a version, so the card states what serving it costs.
    """
    samples = entries[0].get("samples") or []
    if not samples:
        return None, None
    clock = time.perf_counter()
    last = len(entries) - 1
    pipeline = [
        _staged_step(spec, entry, env, last=index == last) for index, entry in enumerate(entries)
    ]
    loaded = time.perf_counter() - clock
    frame, _ = split_carried(library("pandas").DataFrame(samples), pipeline[0].step)
    clock = time.perf_counter()
    infer_frame(pipeline, frame)
    per_record = (time.perf_counter() - clock) / len(frame)
    return round(loaded, 6), round(per_record, 9)


def _staged_step(
    spec: ModelSpec, entry: Mapping[str, Any], env: Environment, *, last: bool
) -> ReadyStep:
    """A trained step loaded from the run's scratch, as it was trained (init rendered)."""
    record = StepRecord.model_validate(entry["record"])
    defined = next(s for s in spec.steps if s.id == record.step_id)
    step = Step.model_validate(record.definition) if record.definition else defined
    kind = step_kind(step, step.parameters.init, env.allow, last=last)  # before any unpickling
    fitted = None
    if entry["staged"]:
        staged = StagedAsset(**entry["staged"])
        asset = AssetRecord(
            url=staged.url, size=staged.size, sha256=staged.sha256, serializer=staged.serializer
        )
        check_loading(step, asset, defined)
        with env.store.open_asset(asset) as stream:
            fitted = load_fitted(stream, step, env.allow)
    return ReadyStep(step, kind, fitted, last)


def _seconds_since(stamp: str) -> float:
    started = datetime.fromisoformat(stamp)
    return round((datetime.now(started.tzinfo) - started).total_seconds(), 3)


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def _hardware() -> dict[str, str]:
    """The machine the candidate was staged on: CPU model, cores, memory, system."""
    found = {"system": f"{platform.system()} {platform.release()}", "machine": platform.machine()}
    cpu = _cpu_model()
    if cpu:
        found["cpu"] = cpu
    found["cores"] = str(os.cpu_count() or 1)
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        found["memory"] = f"{memory / 2**30:.1f} GiB"
    except (ValueError, OSError, AttributeError):
        pass
    return found


def _cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor()
    found = next((line for line in lines if line.startswith("model name")), None)
    return found.split(":", 1)[1].strip() if found else platform.processor()
