"""Validated models to Airflow-free DAG and task data.

The plan decides everything about the generated DAGs (ids, order, schedules, params, tags,
documentation, pass-through arguments) as plain frozen data, so it is tested in milliseconds
without a DagBag; :mod:`model_steps.airflow.dags` only turns it into Airflow objects.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from model_steps.airflow.docs import dag_doc, invalid_doc, last_good_note
from model_steps.definition.loader import BrokenDefinition, Catalog, LoadedModel
from model_steps.definition.owners import relative_name
from model_steps.definition.schema import ModelSpec, parse_duration, schedule_kind
from model_steps.errors import Problem

__all__ = [
    "INVALID_PREFIX",
    "INVALID_TAG",
    "PRODUCT_TAG",
    "AssetRef",
    "DagPlan",
    "ParamPlan",
    "TaskPlan",
    "dag_ids",
    "dag_kinds",
    "degraded_asset",
    "invalid_dag_id",
    "model_asset",
    "model_name_of",
    "plan_catalog",
]

TRAIN_SUFFIX = "__train"
INFER_SUFFIX = "__infer"
EVALUATE_SUFFIX = "__evaluate"
SUFFIXES = (TRAIN_SUFFIX, INFER_SUFFIX, EVALUATE_SUFFIX)
INVALID_PREFIX = "model_steps_invalid__"
FAILURE_XCOM = "model_steps_failure"
"""The XCom key a failing task leaves its one-line reason under, for the Models page to show."""
PRODUCT_TAG = "model-steps"
INVALID_TAG = "model-steps:invalid"
CHECK_TASK = "check"
PUBLISH_TASK = "publish"
GATE_TASK = "gate"
EVALUATE_TASK = "evaluate"
DEGRADED_TASK = "degraded"
REPORT_TASK = "report_errors"
PARTITIONS_TASK = "partitions"
OUTPUT_TASK = "output"

Action = Literal[
    "check",
    "train",
    "partition",
    "infer",
    "output",
    "gate",
    "publish",
    "evaluate",
    "degraded",
    "report",
]


@dataclass(frozen=True)
class AssetRef:
    """The Airflow Asset a model's publish task updates; infer DAGs may be scheduled on it."""

    name: str
    uri: str


@dataclass(frozen=True)
class ParamPlan:
    """A run parameter shown in the trigger form."""

    default: Any
    description: str | None
    schema: Mapping[str, Any]


@dataclass(frozen=True)
class TaskPlan:
    """One task: what it does and the operator arguments that differ from the DAG defaults."""

    task_id: str
    action: Action
    step_id: str | None = None
    upstream: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    outlets: tuple[AssetRef, ...] = ()
    doc_md: str = ""
    mapped_over: str | None = None
    """The task whose returned list this task is mapped over (one instance per partition)."""


@dataclass(frozen=True)
class DagPlan:
    """Everything Airflow needs to build one DAG."""

    dag_id: str
    source: Path
    schedule: str | timedelta | AssetRef | None
    description: str
    doc_md: str
    tags: tuple[str, ...]
    paused: bool
    start_date: datetime
    tasks: tuple[TaskPlan, ...]
    spec: ModelSpec | None = None
    problems: tuple[Problem, ...] = ()
    """A placeholder's problems; a model's, when its broken file stands as its last good one."""
    params: Mapping[str, ParamPlan] = field(default_factory=dict)
    max_active_runs: int = 1
    catchup: bool = False
    dagrun_timeout: timedelta | None = None
    default_args: Mapping[str, Any] = field(default_factory=dict)
    model_name: str | None = None
    """A placeholder's: the model its broken file names, when it names one."""


def dag_ids(spec: ModelSpec) -> tuple[str, ...]:
    """The DAG ids a model produces: train always, infer and evaluate when it defines them."""
    return (
        (spec.name + TRAIN_SUFFIX,)
        + ((spec.name + INFER_SUFFIX,) if spec.has_infer else ())
        + ((spec.name + EVALUATE_SUFFIX,) if spec.evaluation else ())
    )


def dag_kinds(spec: ModelSpec) -> dict[str, str]:
    """Each of the model's DAG ids, with what it does (train, infer, evaluate)."""
    return {dag_id: dag_id.rsplit("__", 1)[-1] for dag_id in dag_ids(spec)}


def model_name_of(dag_id: str) -> str | None:
    """The model a generated DAG id belongs to, or ``None`` for any other DAG id."""
    for suffix in SUFFIXES:
        if dag_id.endswith(suffix) and not dag_id.startswith(INVALID_PREFIX):
            return dag_id.removesuffix(suffix)
    return None


def invalid_dag_id(relative_source: str) -> str:
    """A stable, readable DAG id for the placeholder of a broken file."""
    return INVALID_PREFIX + re.sub(r"[^A-Za-z0-9_-]", "_", relative_source.replace("/", "__"))


def model_asset(name: str) -> AssetRef:
    """The Asset updated when ``name`` publishes a new version."""
    return AssetRef(name=f"model-steps.{name}", uri=f"model-steps://{name}/")


def degraded_asset(name: str) -> AssetRef:
    """The Asset updated when an evaluation finds ``name``'s live version degraded."""
    return AssetRef(name=f"model-steps.{name}.degraded", uri=f"model-steps://{name}/degraded")


def plan_catalog(catalog: Catalog, root: Path) -> list[DagPlan]:
    """Every DAG for a folder of definitions: models' DAGs and one placeholder per broken file."""
    plans = [plan for model in catalog.models for plan in plan_model(model, root)]
    plans.extend(plan_invalid(broken, root) for broken in catalog.broken)
    return plans


def plan_model(model: LoadedModel, root: Path) -> list[DagPlan]:
    """The train DAG and, when the model defines them, the infer and evaluate DAGs."""
    spec = model.spec
    source = relative_name(model.path, root)
    check = TaskPlan(
        CHECK_TASK,
        "check",
        doc_md="Checks every step before any work, as `model-steps validate --data` does: "
        "classes, methods, init arguments, metrics and the training data's columns.",
    )
    step_tasks = _step_tasks(spec, "train", first_upstream=(CHECK_TASK,))
    publish = TaskPlan(
        PUBLISH_TASK,
        "publish",
        upstream=(step_tasks[-1].task_id,),
        outlets=(model_asset(spec.name),),
        doc_md="Publishes the trained assets as the model's next version.",
    )
    if spec.gate.rules or spec.gate.approval == "manual":
        gate = TaskPlan(
            GATE_TASK,
            "gate",
            upstream=(step_tasks[-1].task_id,),
            doc_md=_gate_doc(spec),
        )
        step_tasks.append(gate)
        publish = replace(
            publish,
            upstream=(GATE_TASK,),
            doc_md="Makes the candidate the gate accepted the live version (a candidate "
            "waiting for approval is skipped: approve it on the Models page).",
        )
    train = DagPlan(
        dag_id=spec.name + TRAIN_SUFFIX,
        source=model.path,
        schedule=_schedule(spec.name, spec.schedule.train),
        description=_description(spec, "train"),
        doc_md=dag_doc(spec, source, "training"),
        tags=_tags(spec),
        paused=spec.schedule.status == "paused",
        start_date=spec.airflow.start_datetime(),
        tasks=(check, *step_tasks, publish),
        spec=spec,
        params=_params(spec),
        max_active_runs=1,
        catchup=spec.airflow.catchup,
        dagrun_timeout=spec.airflow.dagrun_timeout,
        default_args={"owner": spec.owner, **spec.airflow.task_defaults.as_kwargs()},
        problems=model.problems,
    )
    plans = [train]
    if spec.has_infer:
        plans.append(
            replace(
                train,
                dag_id=spec.name + INFER_SUFFIX,
                schedule=_schedule(spec.name, spec.schedule.infer),
                description=_description(spec, "infer"),
                doc_md=dag_doc(spec, source, "inference"),
                tasks=_infer_tasks(spec),
                max_active_runs=spec.airflow.max_active_infer_runs,
            )
        )
    if spec.evaluation is not None:
        plans.append(_evaluate_plan(spec, source, train))
    if model.problems:  # the file is broken: these plans are of its last good definition
        note = last_good_note(source, model.problems)
        return [replace(plan, doc_md=note + plan.doc_md) for plan in plans]
    return plans


def _gate_doc(spec: ModelSpec) -> str:
    rules = "\n".join(f"- `{rule}`" for rule in spec.gate.rules) or "- none"
    approval = (
        "Then a person approves it (Models page or `model-steps promote`)."
        if spec.gate.approval == "manual"
        else "A candidate that passes goes live."
    )
    head = "Decides whether the candidate may go live. Rules on its test metrics:"
    return f"{head}\n\n{rules}\n\n{approval}"


def _evaluate_plan(spec: ModelSpec, source: str, train: DagPlan) -> DagPlan:
    """Score the live version on fresh labelled data; signal degradation through an Asset."""
    assert spec.evaluation is not None
    evaluate = TaskPlan(
        EVALUATE_TASK,
        "evaluate",
        doc_md="Scores the live version on the evaluation's labelled data and keeps the record "
        "beside the version.",
    )
    degraded = TaskPlan(
        DEGRADED_TASK,
        "degraded",
        upstream=(EVALUATE_TASK,),
        outlets=(degraded_asset(spec.name),),
        doc_md="Succeeds, updating the model's degraded Asset, when the evaluation found the "
        "live version degraded; skipped otherwise.",
    )
    return replace(
        train,
        dag_id=spec.name + EVALUATE_SUFFIX,
        schedule=_schedule(spec.name, spec.evaluation.schedule),
        description=_description(spec, "evaluate"),
        doc_md=dag_doc(spec, source, "evaluation"),
        tasks=(evaluate, degraded),
        max_active_runs=1,
    )


def _infer_tasks(spec: ModelSpec) -> tuple[TaskPlan, ...]:
    """Plan the partitions, run each step mapped over them, then write the output as a whole."""
    first, last = spec.steps[0], spec.steps[-1]
    partitions = TaskPlan(
        PARTITIONS_TASK,
        "partition",
        step_id=first.id,
        doc_md="Fixes the version this run infers with and splits the input into partitions; "
        "every step then runs once per partition, on any worker.",
    )
    steps = [
        replace(task, mapped_over=PARTITIONS_TASK)
        for task in _step_tasks(spec, "infer", first_upstream=(PARTITIONS_TASK,))
    ]
    output = TaskPlan(
        OUTPUT_TASK,
        "output",
        step_id=last.id,
        upstream=(steps[-1].task_id,),
        doc_md="Writes the last step's partitions, in order, as the output table, which "
        "appears only once complete.",
    )
    return (partitions, *steps, output)


def _step_tasks(
    spec: ModelSpec, action: Literal["train", "infer"], first_upstream: tuple[str, ...] = ()
) -> list[TaskPlan]:
    tasks: list[TaskPlan] = []
    for step in spec.steps:
        tasks.append(
            TaskPlan(
                task_id=step.id,
                action=action,
                step_id=step.id,
                upstream=(tasks[-1].task_id,) if tasks else first_upstream,
                options=step.airflow.as_kwargs() if step.airflow else {},
                doc_md=step.description,
            )
        )
    return tasks


def _schedule(name: str, value: str | None) -> str | timedelta | AssetRef | None:
    if value is None:
        return None
    kind = schedule_kind(value)
    if kind == "on_new_version":
        return model_asset(name)
    if kind == "on_degradation":
        return degraded_asset(name)
    if kind == "interval":
        interval: timedelta = parse_duration(value)
        return interval
    return value


def _tags(spec: ModelSpec) -> tuple[str, ...]:
    tags = [PRODUCT_TAG, *spec.tags]
    if spec.domain:
        tags.append(spec.domain)
    return tuple(dict.fromkeys(tags))


def _description(spec: ModelSpec, purpose: str) -> str:
    summary = spec.description.strip().splitlines()[0] if spec.description.strip() else ""
    head = f"{purpose.capitalize()} {spec.name}"
    return f"{head}: {summary}"[:200] if summary else head


def _params(spec: ModelSpec) -> dict[str, ParamPlan]:
    return {
        name: ParamPlan(parameter.default, parameter.description, parameter.rules())
        for name, parameter in spec.parameters.items()
    }


def plan_invalid(broken: BrokenDefinition, root: Path) -> DagPlan:
    """A paused placeholder that shows a broken file's problems in the Airflow UI."""
    source = relative_name(broken.path, root)
    first = broken.problems[0]
    more = f" (+{len(broken.problems) - 1} more)" if len(broken.problems) > 1 else ""
    doc = invalid_doc(source, broken.problems)
    return DagPlan(
        dag_id=invalid_dag_id(source),
        source=broken.path,
        schedule=None,
        description=f"Invalid model definition {source}: line {first.line}: {first.message}{more}"[
            :200
        ],
        doc_md=doc,
        tags=(PRODUCT_TAG, INVALID_TAG),
        paused=True,
        start_date=datetime.fromisoformat("2024-01-01T00:00:00+00:00"),
        tasks=(TaskPlan(REPORT_TASK, "report", doc_md=doc),),
        problems=broken.problems,
        model_name=broken.name,
    )
