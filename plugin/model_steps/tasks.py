"""What each generated task does, in plain Python that knows nothing of Airflow.

The operators in :mod:`model_steps.dags` translate Airflow's run context into a :class:`RunInfo`
and a :class:`Rendered`, and call one of these functions. Data between tasks travels through the
run's scratch prefix in the model's store, never through XCom or a worker's disk, so each task
may run on a different worker.
"""

from __future__ import annotations

import json
import logging
import platform
import resource
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from typing import TYPE_CHECKING, Any

from model_steps.cards import model_card
from model_steps.data import frame_from_bytes, frame_to_bytes, read_table, write_table
from model_steps.errors import PermanentError, StepError
from model_steps.manifest import AssetRecord, Manifest, StepRecord
from model_steps.rendered import Rendered
from model_steps.settings import Settings
from model_steps.spec import DataRef, ModelSpec, Step, spec_hash
from model_steps.steps import (
    StepKind,
    compute_metrics,
    load_fitted,
    save_fitted,
    split_xy,
    step_kind,
    train_test,
)
from model_steps.store import ModelStore, StagedAsset, open_store, utc_now

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Environment",
    "ReadyStep",
    "RunInfo",
    "environment",
    "infer_frame",
    "infer_step",
    "load_step",
    "publish",
    "ready_step",
    "train_step",
    "version_pipeline",
]

log = logging.getLogger(__name__)

TARGET = "__model_steps_target__"
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
    "lightgbm",
)


@dataclass(frozen=True)
class RunInfo:
    """The facts about the current run that a task needs (ids, dates, resolved parameters)."""

    dag_id: str
    run_id: str
    logical_date: datetime | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    try_number: int = 1


@dataclass(frozen=True)
class Environment:
    """How a task reaches storage: the model's store, credentials and the import allow-list."""

    store: ModelStore
    storage_options: Mapping[str, Any]
    allowed: tuple[str, ...]


def environment(
    spec: ModelSpec, settings: Settings, storage_options: Mapping[str, Any]
) -> Environment:
    """The store of ``spec`` (its ``assets.root`` or the deployment's default root)."""
    root = (spec.assets.root or settings.assets_root).rstrip("/")
    store = open_store(f"{root}/{spec.directory}", storage_options)
    return Environment(store, dict(storage_options), settings.allowed_imports)


class _Scratch:
    """One run's folder in the store: data between steps, step records, staged assets."""

    def __init__(self, env: Environment, run: RunInfo) -> None:
        self.env = env
        self.key = f"{run.dag_id}__{run.run_id}"

    def url(self, *parts: str) -> str:
        return self.env.store.scratch_url(self.key, *parts)

    def write_frame(self, step_id: str, split: str, frame: pd.DataFrame, y: Any) -> int:
        table = frame.copy()
        if y is not None:
            table[TARGET] = y.to_numpy() if hasattr(y, "to_numpy") else list(y)
        data = frame_to_bytes(table)
        self.env.store.write_bytes(self.url("data", step_id, f"{split}.parquet"), data)
        return len(data)

    def read_frame(self, step_id: str, split: str) -> tuple[pd.DataFrame, Any] | None:
        try:
            data = self.env.store.read_bytes(self.url("data", step_id, f"{split}.parquet"))
        except FileNotFoundError:
            return None
        table = frame_from_bytes(data)
        if TARGET not in table.columns:
            return table, None
        return table.drop(columns=TARGET), table[TARGET].rename(None)

    def write_json(self, name: str, value: Any) -> None:
        self.env.store.write_bytes(self.url(name), json.dumps(value).encode())

    def read_json(self, name: str) -> Any:
        try:
            return json.loads(self.env.store.read_bytes(self.url(name)))
        except FileNotFoundError as error:
            raise PermanentError(
                f"{self.url(name)} is missing: an earlier task of this run did not finish"
            ) from error

    def clean(self) -> None:
        self.env.store.clean_run(self.key)


def _data_ref(step: Step, direction: str, phase: str) -> DataRef:
    io = getattr(step.parameters, direction)
    ref: DataRef | None = getattr(io, phase) if io is not None else None
    if ref is None:
        raise PermanentError(f"step {step.id!r} has no {direction}.{phase}")
    return ref


def _find(spec: ModelSpec, step_id: str) -> int:
    for index, step in enumerate(spec.steps):
        if step.id == step_id:
            return index
    raise PermanentError(f"model {spec.name!r} has no step {step_id!r}")


# -- training --------------------------------------------------------------------------------


def train_step(
    spec: ModelSpec, step_id: str, run: RunInfo, env: Environment, rendered: Rendered
) -> dict[str, Any]:
    """Fit one step on the output of the steps before it; stage its asset in the run scratch."""
    index = _find(spec, step_id)
    step = spec.steps[index]
    started, clock, cpu = utc_now(), time.perf_counter(), time.process_time()
    scratch = _Scratch(env, run)
    parts, samples = _training_data(spec, index, rendered, scratch, env)
    x_train, y_train = parts["train"]
    kind = step_kind(step, rendered.init, env.allowed)
    fit_clock = time.perf_counter()
    fitted = kind.fit(x_train, y_train)
    fit_seconds = time.perf_counter() - fit_clock
    last = index == len(spec.steps) - 1
    metrics, written = _outputs(step, kind, fitted, parts, last, scratch, rendered, env)
    staged = _stage(spec, step, fitted, scratch, env) if step.has_assets else None
    rows = len(x_train) + (len(parts["test"][0]) if "test" in parts else 0)  # one out per in
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
    )
    scratch.write_json(
        f"steps/{step.id}.json",
        {
            "record": record.model_dump(mode="json"),
            "staged": staged.__dict__ if staged else None,
            "samples": samples,
        },
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


def _trained_definition(step: Step, init: Mapping[str, Any]) -> dict[str, Any]:
    """The step as JSON with ``init`` as this run rendered it (templates filled in)."""
    definition = step.model_dump(mode="json", by_alias=True, exclude_none=True)
    definition["parameters"]["init"] = json.loads(json.dumps(dict(init), default=str))
    return definition


def _outputs(
    step: Step,
    kind: StepKind,
    fitted: Any,
    parts: Mapping[str, tuple[Any, Any]],
    last: bool,
    scratch: _Scratch,
    rendered: Rendered,
    env: Environment,
) -> tuple[dict[str, dict[str, float]], int]:
    """What a fitted step hands on: metrics if it is the last, else its transformed data."""
    written = 0
    metrics: dict[str, dict[str, float]] = {}
    if last:
        metrics = _metrics(step, kind, fitted, parts, env)
    else:
        for split, (features, target) in parts.items():
            written += scratch.write_frame(step.id, split, kind.transform(fitted, features), target)
    if "train" in rendered.outputs:
        x_train = parts["train"][0]
        output = kind.predict(fitted, x_train) if last else kind.transform(fitted, x_train)
        written += _write_output(step, "train", _as_frame(output), rendered, env)
    return metrics, written


def _training_data(
    spec: ModelSpec, index: int, rendered: Rendered, scratch: _Scratch, env: Environment
) -> tuple[dict[str, tuple[Any, Any]], list[dict[str, Any]]]:
    """This step's train (and test) parts.

    A step with its own input reads and splits it; any other takes the previous step's output
    from the run scratch.
    """
    step = spec.steps[index]
    params = step.parameters
    if params.input is not None and params.input.train is not None:
        frame = read_table(
            rendered.inputs["train"],
            str(params.input.train.inferred_format()),
            storage_options=env.storage_options,
            options=params.input.train.options,
        )
        features, target = split_xy(frame, params.training)
        split = params.training.split if params.training else None
        x_train, x_test, y_train, y_test = train_test(features, target, split)
        parts = {"train": (x_train, y_train)}
        if x_test is not None:
            parts["test"] = (x_test, y_test)
        samples = json.loads(x_train.head(5).to_json(orient="records")) if index == 0 else []
        log.info(
            "read %d rows, %d columns from %s",
            len(frame),
            len(frame.columns),
            rendered.inputs["train"],
        )
        return parts, samples
    previous = spec.steps[index - 1].id
    parts = {
        split: found
        for split in ("train", "test")
        if (found := scratch.read_frame(previous, split)) is not None
    }
    if "train" not in parts:
        raise PermanentError(
            f"step {step.id!r} found no output of step {previous!r} in "
            f"{scratch.url('data', previous)}: did it run in this run?"
        )
    return parts, []


def _metrics(
    step: Step, kind: Any, fitted: Any, parts: Mapping[str, tuple[Any, Any]], env: Environment
) -> dict[str, dict[str, float]]:
    names = step.parameters.metrics
    if not names:
        return {}
    results = {}
    for split, (features, target) in parts.items():
        if target is None:
            continue
        # Metrics compare labels, even when the step's predict method is predict_proba.
        labels = (
            fitted.predict(features)
            if hasattr(fitted, "predict")
            else kind.predict(fitted, features)
        )
        needs_scores = any(name.startswith("roc_auc") for name in names)
        scores = kind.scores(fitted, features) if needs_scores else None
        results[split] = compute_metrics(names, target, labels, scores, env.allowed)
    return results


def _stage(
    spec: ModelSpec, step: Step, fitted: Any, scratch: _Scratch, env: Environment
) -> StagedAsset:
    identifier = str(step.assets_identifier)
    url = scratch.url("assets", step.id, identifier)
    size, sha256 = env.store.write_bytes(url, save_fitted(fitted, step, env.allowed))
    root = (
        f"{step.assets_root.rstrip('/')}/{spec.directory}"
        if step.assets_root
        else (env.store.url())
    )
    serializer = "custom" if step.parameters.save else step.parameters.serializer
    return StagedAsset(step.id, url, size, sha256, serializer, identifier, root)


def _peak_memory() -> int:
    """Peak resident memory of this task's process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _as_frame(values: Any) -> pd.DataFrame:
    import pandas as pd

    if isinstance(values, pd.DataFrame):
        return values
    if isinstance(values, pd.Series):
        return values.to_frame("prediction")
    return pd.DataFrame({"prediction": list(values)})


def _write_output(
    step: Step, phase: str, frame: pd.DataFrame, rendered: Rendered, env: Environment
) -> int:
    ref = _data_ref(step, "output", phase)
    url = rendered.outputs[phase]
    size = write_table(
        frame,
        url,
        str(ref.inferred_format()),
        storage_options=env.storage_options,
        options=ref.options,
    )
    log.info("wrote %d rows (%d bytes) to %s", len(frame), size, url)
    return size


# -- publishing ------------------------------------------------------------------------------


def publish(spec: ModelSpec, run: RunInfo, env: Environment) -> dict[str, Any]:
    """Publish the run's staged assets as the model's next version (the pointer moves last)."""
    scratch = _Scratch(env, run)
    entries = [scratch.read_json(f"steps/{step.id}.json") for step in spec.steps]
    staged = [StagedAsset(**entry["staged"]) for entry in entries if entry["staged"]]
    records = [StepRecord.model_validate(entry["record"]) for entry in entries]

    def manifest_for(version: int, assets: Mapping[str, AssetRecord]) -> Manifest:
        return Manifest(
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
        )

    pointer = env.store.publish(staged, manifest_for, lambda manifest: model_card(spec, manifest))
    scratch.clean()
    pruned = (
        env.store.prune(spec.assets.keep_versions, spec.assets.pinned_versions)
        if (spec.assets.keep_versions)
        else []
    )
    log.info(
        "published %s version %d (%s); pruned %s",
        spec.name,
        pointer.version,
        pointer.manifest,
        pruned or "nothing",
    )
    return {
        "version": pointer.version,
        "manifest": pointer.manifest,
        "metrics": records[-1].metrics,
        "pruned": pruned,
    }


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


# -- inference -------------------------------------------------------------------------------


def infer_step(
    spec: ModelSpec, step_id: str, run: RunInfo, env: Environment, rendered: Rendered
) -> dict[str, Any]:
    """Transform or predict with one step of the version the run started on."""
    index = _find(spec, step_id)
    step = spec.steps[index]
    scratch = _Scratch(env, run)
    version, features = _infer_input(spec, index, rendered, scratch, env)
    last = index == len(spec.steps) - 1
    ready = ready_step(step, env.store.manifest(version), env, rendered.init, last=last)
    log.info(
        "inferring step %s of %s with version %d: %d rows, %d columns",
        step.id,
        spec.name,
        version,
        len(features),
        len(features.columns),
    )
    output = ready.run(features)
    if not last:
        written = scratch.write_frame(step.id, "infer", output, None)
        return {
            "step": step.id,
            "version": version,
            "rows": len(features),
            "bytes_written": written,
        }
    written = _write_output(step, "infer", output, rendered, env)
    scratch.clean()
    return {"step": step.id, "version": version, "rows": len(features), "bytes_written": written}


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
            return _as_frame(self.kind.predict(self.fitted, features))
        return self.kind.transform(self.fitted, features)


def ready_step(
    step: Step, manifest: Manifest, env: Environment, init: Mapping[str, Any], *, last: bool
) -> ReadyStep:
    """A step of ``manifest``'s version with its fitted object loaded (checksum verified)."""
    fitted = load_step(step, manifest, env) if step.has_assets else None
    return ReadyStep(step, step_kind(step, init, env.allowed), fitted, last)


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
    last = len(steps) - 1
    return tuple(
        ready_step(step, manifest, env, step.parameters.init, last=index == last)
        for index, step in enumerate(steps)
    )


def _published_steps(manifest: Manifest, spec: ModelSpec | None) -> list[Step]:
    records = manifest.steps
    if records and all(record.definition is not None for record in records):
        return [Step.model_validate(record.definition) for record in records]
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


def load_step(step: Step, manifest: Manifest, env: Environment) -> Any:
    """A step's fitted object from a published version, verified against its checksum."""
    record = manifest.asset(step.id)
    if record is None:
        raise PermanentError(
            f"version {manifest.version} of {manifest.model} has no asset for step {step.id!r}"
        )
    with env.store.open_asset(record) as stream:
        return load_fitted(stream, step, env.allowed)


def _infer_input(
    spec: ModelSpec, index: int, rendered: Rendered, scratch: _Scratch, env: Environment
) -> tuple[int, pd.DataFrame]:
    """The version this run serves (fixed at its first step) and this step's input."""
    if index == 0:
        pointer = env.store.pointer()
        if pointer is None:
            raise PermanentError(
                f"model {spec.name!r} has no published version in "
                f"{env.store.url()}: run {spec.name}__train first"
            )
        scratch.write_json("version.json", {"version": pointer.version})
        step = spec.steps[0]
        ref = _data_ref(step, "input", "infer")
        frame = read_table(
            rendered.inputs["infer"],
            str(ref.inferred_format()),
            storage_options=env.storage_options,
            options=ref.options,
        )
        return pointer.version, features_of(frame, step)
    version = int(scratch.read_json("version.json")["version"])
    previous = spec.steps[index - 1].id
    found = scratch.read_frame(previous, "infer")
    if found is None:
        raise PermanentError(f"no output of step {previous!r} in this run's scratch")
    return version, found[0]


def features_of(frame: pd.DataFrame, step: Step) -> pd.DataFrame:
    """The columns a model reads from new data: ``features``, else all but the target."""
    training = step.parameters.training
    if training and training.features:
        return frame[training.features]
    if training and training.target and training.target in frame.columns:
        return frame.drop(columns=training.target)
    return frame
