"""Batch inference in partitions: plan them, run each step on one, then write the output.

The infer DAG's first task (:func:`plan_infer`) fixes the version and splits the input
(:mod:`model_steps.runtime.partitions`); each step's mapped task instances
(:func:`infer_partition`) take one partition each, reading it a batch at a time and streaming
their output to the run's scratch, one Arrow record batch per batch; the last task
(:func:`write_infer_output`) assembles the last step's parts into the output table
(:mod:`model_steps.runtime.parts`). A partition's files live in its own try's folder, so a
retried partition rewrites only its own part.

Every batch goes through :meth:`ReadyStep.run`, the code real-time handlers, the gate and
evaluations run, so a partitioned run predicts exactly what they predict.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic_core import PydanticCustomError

from model_steps.definition.schema import parse_size
from model_steps.errors import PermanentError
from model_steps.runtime.carried import split_carried, with_carried
from model_steps.runtime.context import Environment, RunInfo, data_ref, step_index
from model_steps.runtime.infer import features_of, ready_step, run_version, version_step
from model_steps.runtime.partitions import (
    DEFAULT_PARTITION_SIZE,
    TablePlan,
    plan_table,
    read_partition,
)
from model_steps.runtime.parts import PartWriter, read_parts, write_parts
from model_steps.runtime.progress import Progress, part_key, step_progress
from model_steps.runtime.rendered import Rendered
from model_steps.runtime.scratch import Scratch
from model_steps.runtime.tables import read_options
from model_steps.settings import PARTITION_SIZE_VARS
from model_steps.store.manifest import InferenceRecord
from model_steps.store.model_store import utc_now

if TYPE_CHECKING:
    import pandas as pd

    from model_steps.definition.schema import ModelSpec

__all__ = [
    "PLAN",
    "infer_partition",
    "infer_step",
    "partition_size",
    "plan_infer",
    "read_plan",
    "run_progress",
    "write_infer_output",
]

log = logging.getLogger(__name__)

PLAN = "partitions"
"""The scratch folder of the task that plans the partitions (its record is the plan)."""
DATA, CARRIED, PART = "data.arrow", "carried.arrow", "part.arrow"


def partition_size(spec: ModelSpec, environ: Mapping[str, str]) -> int:
    """The definition's ``airflow.partition_size``, else the deployment's, else 1 GiB.

    Raises:
        PermanentError: the deployment's setting is not a size.
    """
    if spec.airflow.partition_size is not None:
        return spec.airflow.partition_size
    text = next((environ[name] for name in PARTITION_SIZE_VARS if environ.get(name)), None)
    if text is None:
        return DEFAULT_PARTITION_SIZE
    try:
        size = int(parse_size(text))
    except (ValueError, PydanticCustomError) as error:
        raise PermanentError(f"{PARTITION_SIZE_VARS[0]}: {error}") from error
    if size < 1:
        raise PermanentError(f"{PARTITION_SIZE_VARS[0]} must be at least 1 byte, got {text!r}")
    return size


def plan_infer(
    spec: ModelSpec,
    run: RunInfo,
    env: Environment,
    rendered: Rendered,
    size: int,
    *,
    limit: int = 1024,
) -> list[int]:
    """Fix the version and split the first step's input; the partitions' indexes to map over.

    Only the indexes go through XCom; the plan itself is the scratch record every mapped task
    reads.
    """
    step = spec.steps[0]
    ref = data_ref(step, "input", "infer")
    fmt = str(ref.inferred_format())
    env.places.check(rendered.inputs["infer"], "the table")
    read_options(fmt, ref.options)  # refusals first, before the store is asked anything
    version = run_version(spec, run, env)
    plan = plan_table(
        rendered.inputs["infer"],
        fmt,
        version,
        size=size,
        places=env.places,
        storage_options=env.storage_options,
        options=ref.options,
        limit=limit,
    )
    Scratch(env, run).finish(PLAN, plan.to_json())
    total = f"{plan.rows:,} rows" if plan.rows is not None else "rows counted as they are read"
    log.info(
        "inferring %s with version %d: %s in %d partition(s) of %s (%s)",
        spec.name,
        version,
        plan.url,
        len(plan.partitions),
        f"{size:,} bytes",
        total,
    )
    return [partition.index for partition in plan.partitions]


def read_plan(scratch: Scratch) -> TablePlan:
    """The run's partition plan, as its first task wrote it."""
    return TablePlan.from_json(scratch.record(PLAN))


def infer_partition(
    spec: ModelSpec, step_id: str, index: int, run: RunInfo, env: Environment, rendered: Rendered
) -> dict[str, Any]:
    """Run one step on one partition, a batch at a time; its output goes to scratch."""
    position = step_index(spec, step_id)
    step = spec.steps[position]
    scratch = Scratch(env, run)
    plan = read_plan(scratch)
    if not 0 <= index < len(plan.partitions):
        raise PermanentError(f"partition {index} is not in this run's plan")
    manifest = env.store.manifest(plan.version)
    stored, init = version_step(manifest, spec, position, rendered)
    last = position == len(spec.steps) - 1
    ready = ready_step(stored, manifest, env, init, last=last, defined=step)
    key = part_key(step.id, index)
    rows = 0
    with (
        PartWriter(scratch, scratch.own(key, PART if last else DATA)) as out,
        PartWriter(scratch, scratch.own(key, CARRIED)) as kept,
    ):
        for features, carried in _inputs(spec, position, plan, index, scratch, env):
            if position == 0:
                features = features_of(features, stored)
            output = ready.run(features)
            if last:
                out.write(with_carried(output, carried))
            else:
                out.write(output)
                if position == 0 and carried is not None:
                    kept.write(carried)
            rows += len(features)
            log.info("step %s, partition %d: %s rows done", step.id, index, f"{rows:,}")
    written = out.bytes + kept.bytes
    scratch.finish(key, {"rows": rows, "version": plan.version, "bytes": written})
    progress = step_progress(scratch, plan, step.id, spec.steps[0].id)
    log.info("step %s of %s: %s", step.id, spec.name, progress.text())
    return {"step": step.id, "partition": index, "rows": rows, "version": plan.version}


def _inputs(
    spec: ModelSpec,
    position: int,
    plan: TablePlan,
    index: int,
    scratch: Scratch,
    env: Environment,
) -> Iterator[tuple[pd.DataFrame, pd.DataFrame | None]]:
    """This step's input batches for the partition, with the carried columns beside them.

    The first step reads the user's table and takes the carried columns out; later steps read
    the step before's part, and the last one the first step's carried part, batch for batch
    (every step writes one record batch per batch, so the n-th batches are the same rows).
    """
    step = spec.steps[position]
    if position == 0:
        ref = data_ref(step, "input", "infer")
        for frame in read_partition(
            plan,
            plan.partitions[index],
            places=env.places,
            storage_options=env.storage_options,
            options=ref.options,
        ):
            if len(frame):
                yield split_carried(frame, step)
        return
    first, previous = spec.steps[0].id, spec.steps[position - 1].id
    data = read_parts(scratch, part_key(previous, index), DATA)
    last = position == len(spec.steps) - 1
    carried = read_parts(scratch, part_key(first, index), CARRIED) if last else iter(())
    for frame in data:
        yield frame, next(carried, None)


def run_progress(steps: Sequence[str], run: RunInfo, env: Environment) -> list[Progress]:
    """Each step's progress in a running infer run; empty before its partitions are planned.

    Takes the steps' ids, not the spec: the Models API knows a model by its outline only.
    """
    scratch = Scratch(env, run)
    if scratch.finished_try(PLAN) is None:
        return []
    plan = read_plan(scratch)
    return [step_progress(scratch, plan, step, steps[0]) for step in steps]


def write_infer_output(
    spec: ModelSpec, run: RunInfo, env: Environment, rendered: Rendered
) -> dict[str, Any]:
    """Assemble the last step's parts, in partition order, into the output table.

    The table appears at its URL only once complete (written beside it, then moved), so a
    reader never sees part of it, and a run that failed before this task leaves the output as
    it was. The run's scratch is removed afterwards.
    """
    last = spec.steps[-1]
    scratch = Scratch(env, run)
    plan = read_plan(scratch)
    keys = [part_key(last.id, p.index) for p in plan.partitions]
    ref = data_ref(last, "output", "infer")
    url = rendered.outputs["infer"]
    rows, size = write_parts(
        scratch,
        keys,
        PART,
        url,
        str(ref.inferred_format()),
        places=env.places,
        storage_options=env.storage_options,
        options=ref.options,
    )
    log.info("wrote %s rows (%s bytes) to %s", f"{rows:,}", f"{size:,}", url)
    env.store.record_inference(
        InferenceRecord(
            model=spec.name,
            version=plan.version,
            manifest=env.store.url("versions", str(plan.version), "manifest.json"),
            dag_id=run.dag_id,
            run_id=run.run_id,
            output=url,
            rows=rows,
            recorded_at=utc_now(),
        )
    )
    scratch.clean()
    return {"version": plan.version, "rows": rows, "bytes_written": size, "output": url}


def infer_step(
    spec: ModelSpec, step_id: str, run: RunInfo, env: Environment, rendered: Rendered
) -> dict[str, Any]:
    """One step on every partition in turn, in this process: what its mapped tasks do together.

    The first step plans the partitions (with the deployment's default size) and the last one
    writes the output, so calling it for each step in order runs the infer DAG's work.
    """
    position = step_index(spec, step_id)
    if position == 0:
        plan_infer(spec, run, env, rendered, partition_size(spec, {}))
    plan = read_plan(Scratch(env, run))
    rows = sum(
        infer_partition(spec, step_id, p.index, run, env, rendered)["rows"] for p in plan.partitions
    )
    result: dict[str, Any] = {"step": step_id, "version": plan.version, "rows": rows}
    if position == len(spec.steps) - 1:
        result.update(write_infer_output(spec, run, env, rendered))
    return result
