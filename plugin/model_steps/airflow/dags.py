"""DAG plans to Airflow DAGs: the only module that creates Airflow DAGs.

Uses the Airflow 3 authoring interface (``airflow.sdk``) only. Building is defensive per DAG: if
Airflow rejects one model's DAG, that model gets an invalid-definition placeholder carrying
Airflow's message, and every other model's DAGs still load.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Param

from model_steps.airflow.broken_files import record_standing_in
from model_steps.airflow.operators import (
    InvalidDefinitionOperator,
    MappedStepOperator,
    ModelStepOperator,
    airflow_asset,
)
from model_steps.airflow.outline import invalid_outline, model_outline, outline_json
from model_steps.airflow.plan import (
    AssetRef,
    DagPlan,
    TaskPlan,
    dag_ids,
    model_name_of,
    plan_catalog,
    plan_invalid,
)
from model_steps.airflow.shards import plan_shard, record_parse, touch_shards
from model_steps.definition.cache import ParseCache
from model_steps.definition.loader import BrokenDefinition, load_and_validate
from model_steps.definition.owners import NameRecord, relative_name
from model_steps.errors import Problem
from model_steps.settings import load_settings

__all__ = ["build_dag", "build_dags"]

log = logging.getLogger(__name__)


def _operator(plan: DagPlan, task: TaskPlan, folder: Path | None, built: Mapping[str, Any]) -> Any:
    common: dict[str, Any] = {
        "task_id": task.task_id,
        "doc_md": task.doc_md or None,
        **task.options,
    }
    if task is plan.tasks[0] and folder is not None and (outline := _outline(plan, folder)):
        common["doc_json"] = outline
    if task.outlets:
        common["outlets"] = [airflow_asset(ref) for ref in task.outlets]
    if task.action == "report":
        return InvalidDefinitionOperator(problems=plan.problems, **common)
    assert plan.spec is not None, "model tasks are planned from a valid spec"
    common["source"] = str(plan.source)  # the check locates problems; every task checks owner
    if folder is not None:
        common["folder"] = str(folder)
        common["definition"] = relative_name(plan.source, folder)
    if task.mapped_over is not None:  # one task instance per partition, on any worker
        partial = MappedStepOperator.partial(
            action=task.action, spec=plan.spec, step_id=task.step_id, **common
        )
        return partial.expand(partition=built[task.mapped_over].output)
    return ModelStepOperator(action=task.action, spec=plan.spec, step_id=task.step_id, **common)


def _outline(plan: DagPlan, folder: Path) -> str | None:
    """The outline the Models API reads from the DB: on a model's train DAG, on a placeholder."""
    file = relative_name(plan.source, folder)
    if plan.spec is None:
        return outline_json(invalid_outline(file, plan.model_name, plan.problems))
    if plan.dag_id != dag_ids(plan.spec)[0]:
        return None
    return outline_json(model_outline(plan.spec, file, plan.problems))


def _schedule(plan: DagPlan) -> Any:
    return airflow_asset(plan.schedule) if isinstance(plan.schedule, AssetRef) else plan.schedule


def build_dag(plan: DagPlan, folder: Path | None = None) -> DAG:
    """One DAG from its plan; not auto-registered, the caller decides where it goes.

    ``folder`` is where the definition was read from (the DAG bundle's folder): its tasks take
    their own code, and keep data out, there rather than in ``[core] dags_folder``.
    """
    with DAG(
        dag_id=plan.dag_id,
        schedule=_schedule(plan),
        description=plan.description,
        doc_md=plan.doc_md,
        tags=set(plan.tags),
        is_paused_upon_creation=plan.paused,
        start_date=plan.start_date,
        catchup=plan.catchup,
        dagrun_timeout=plan.dagrun_timeout,
        max_active_runs=plan.max_active_runs,
        default_args=dict(plan.default_args),
        params={
            name: Param(p.default, description=p.description, **p.schema)
            for name, p in plan.params.items()
        },
        auto_register=False,
    ) as dag:
        operators: dict[str, Any] = {}
        for task in plan.tasks:  # planned in order: a mapped task's source is built before it
            operators[task.task_id] = _operator(plan, task, folder, operators)
        for task in plan.tasks:
            for upstream in task.upstream:
                operators[upstream] >> operators[task.task_id]
    return dag


def _build_or_placeholder(plan: DagPlan, root: Path) -> DAG:
    """Build ``plan``; if Airflow rejects it, build a placeholder carrying Airflow's reason."""
    try:
        return build_dag(plan, root)
    except Exception as error:  # one model's rejection must not hide the others' DAGs
        log.exception("Airflow rejected DAG %s from %s", plan.dag_id, plan.source)
        problem = Problem(
            str(plan.source),
            1,
            1,
            "",
            "airflow_rejected",
            f"Airflow rejected DAG {plan.dag_id!r}: {error}",
        )
        name = plan.spec.name if plan.spec is not None else plan.model_name
        return build_dag(plan_invalid(BrokenDefinition(plan.source, (problem,), name), root), root)


def build_dags(
    folder: Path, environ: Mapping[str, str], dag_id: str | None = None, shard: int = 0
) -> dict[str, DAG]:
    """Every DAG the definitions under ``folder`` produce for DAG file ``shard``, by DAG id.

    With ``dag_id`` (a task start's parsing context) only that DAG is built, whichever file
    asks, and for a model's DAG only the model's own file is read when it is named after the
    model. In a full parse, a large folder is spread over shard files
    (:mod:`model_steps.airflow.shards`; the loader is shard 0), and definitions unchanged since
    an earlier parse come from the deployment's parse cache.
    """
    started = time.monotonic()
    settings = load_settings(environ)  # airflow.cfg's [model_steps] options count here too
    part = None if dag_id else plan_shard(folder, settings, shard)
    if part is not None and not part.builds:
        return {}
    # A task start makes no cache on a worker's disk, but uses one that is there: a broken
    # file's last good definition (which the scheduler runs meanwhile) is only found in it.
    cache = ParseCache.open(settings.parse_cache, settings.parse_cache_key, create=not dag_id)
    catalog = load_and_validate(
        [folder],
        settings.environ,
        only=model_name_of(dag_id or ""),
        assets_root=settings.assets_root,
        cache=cache,
        check_data=True,
        names=NameRecord(settings.names_record),
        shard=None if part is None else part.shard,
    )
    plans = plan_catalog(catalog, folder)
    if dag_id is not None:
        plans = [plan for plan in plans if plan.dag_id == dag_id]
    dags = {dag.dag_id: dag for dag in (_build_or_placeholder(p, folder) for p in plans)}
    if part is not None:
        record_standing_in(settings, folder, shard, catalog.models)
        touch_shards(folder, catalog.changed_shards)
        record_parse(settings, folder, shard, time.monotonic() - started, part.definitions)
    return dags
