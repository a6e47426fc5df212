"""DAG plans to Airflow DAGs: the only module that creates Airflow DAGs.

Uses the Airflow 3 authoring interface (``airflow.sdk``) only. Building is defensive per DAG: if
Airflow rejects one model's DAG, that model gets an invalid-definition placeholder carrying
Airflow's message, and every other model's DAGs still load.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
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
from model_steps.airflow.plan_cache import KeptPlans, forget_other_shards, kept_plans
from model_steps.airflow.shards import plan_shard, record_parse, touch_shards
from model_steps.definition.cache import ParseCache
from model_steps.definition.loader import (
    BrokenDefinition,
    Catalog,
    allow_list_for,
    definition_paths,
    load_and_validate,
)
from model_steps.definition.owners import NameRecord, relative_name
from model_steps.errors import Problem
from model_steps.settings import Settings, load_settings

__all__ = ["build_dag", "build_dags"]

log = logging.getLogger(__name__)


def _operator(
    plan: DagPlan,
    task: TaskPlan,
    folder: Path | None,
    built: Mapping[str, Any],
    outline: str | None,
) -> Any:
    common: dict[str, Any] = {
        "task_id": task.task_id,
        "doc_md": task.doc_md or None,
        **task.options,
    }
    if task is plan.tasks[0] and outline:
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


def _outlines(plans: Iterable[DagPlan], folder: Path) -> dict[str, str]:
    """The outline of each DAG that carries one, by DAG id."""
    return {plan.dag_id: outline for plan in plans if (outline := _outline(plan, folder))}


def build_dag(
    plan: DagPlan, folder: Path | None = None, outlines: Mapping[str, str] | None = None
) -> DAG:
    """One DAG from its plan; not auto-registered, the caller decides where it goes.

    ``folder`` is where the definition was read from (the DAG bundle's folder): its tasks take
    their own code, and keep data out, there rather than in ``[core] dags_folder``.
    ``outlines`` are the folder's outlines already made (kept plans); else it is made here.
    """
    if outlines is not None:
        outline = outlines.get(plan.dag_id)
    else:
        outline = _outline(plan, folder) if folder is not None else None
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
            operators[task.task_id] = _operator(plan, task, folder, operators, outline)
        for task in plan.tasks:
            for upstream in task.upstream:
                operators[upstream] >> operators[task.task_id]
    return dag


def _build_or_placeholder(plan: DagPlan, root: Path, outlines: Mapping[str, str]) -> DAG:
    """Build ``plan``; if Airflow rejects it, build a placeholder carrying Airflow's reason."""
    try:
        return build_dag(plan, root, outlines)
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


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No garbage collection while a DAG file's DAGs are built; it runs as usual afterwards.

    A parse makes hundreds of thousands of objects that all live as long as the parse (DAGs,
    tasks, their params and the plans they come from) and almost no garbage. The collector
    counts them all and walks the whole heap again each time it grew by a quarter: a fifth of
    a large parse's time, for nothing. Airflow's DAG processor freezes its own objects for the
    same reason before it starts a parse.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def build_dags(
    folder: Path, environ: Mapping[str, str], dag_id: str | None = None, shard: int = 0
) -> dict[str, DAG]:
    """Every DAG the definitions under ``folder`` produce for DAG file ``shard``, by DAG id.

    With ``dag_id`` (a task start's parsing context) only that DAG is built, whichever file
    asks, and for a model's DAG only the model's own file is read when it is named after the
    model. In a full parse, a large folder is spread over shard files
    (:mod:`model_steps.airflow.shards`; the loader is shard 0), definitions unchanged since an
    earlier parse come from the deployment's parse cache, and a DAG file whose folder did not
    change at all builds from the plans it kept (:mod:`model_steps.airflow.plan_cache`).
    """
    started = time.monotonic()
    settings = load_settings(environ)  # airflow.cfg's [model_steps] options count here too
    if dag_id is not None:
        return _task_start_dag(folder, settings, dag_id)
    paths = list(definition_paths(folder))  # one listing for the shard plan and the kept plans
    part = plan_shard(folder, settings, shard, definitions=len(paths))
    if not part.builds:
        return {}
    cache = ParseCache.open(settings.parse_cache, settings.parse_cache_key)
    allowed = allow_list_for([folder], settings.environ)
    count = part.shard.count if part.shard is not None else 1
    inputs = (count, repr(allowed), settings.assets_root, settings.names_record)

    def plan(environ: Mapping[str, str]) -> KeptPlans:
        if shard == 0:  # the folder changed: it may have fewer DAG files than before
            forget_other_shards(cache, folder, count)
        catalog = _load(folder, settings, environ, cache, allowed=allowed, shard=part.shard)
        plans = plan_catalog(catalog, folder)
        standing = tuple(model for model in catalog.models if model.problems)
        return KeptPlans(plans, _outlines(plans, folder), standing, catalog.changed_shards)

    with _collector_paused():
        kept = kept_plans(cache, folder, shard, inputs, settings.environ, plan, paths)
        dags = {p.dag_id: _build_or_placeholder(p, folder, kept.outlines) for p in kept.plans}
    record_standing_in(settings, folder, shard, kept.standing)
    touch_shards(folder, kept.changed_shards)
    record_parse(settings, folder, shard, time.monotonic() - started, part.definitions)
    return dags


def _task_start_dag(folder: Path, settings: Settings, dag_id: str) -> dict[str, DAG]:
    """The one DAG a task start runs, from its model's own file when it is named after it."""
    # A task start makes no cache on a worker's disk, but uses one that is there: a broken
    # file's last good definition (which the scheduler runs meanwhile) is only found in it.
    cache = ParseCache.open(settings.parse_cache, settings.parse_cache_key, create=False)
    catalog = _load(folder, settings, settings.environ, cache, only=model_name_of(dag_id))
    plans = [plan for plan in plan_catalog(catalog, folder) if plan.dag_id == dag_id]
    outlines = _outlines(plans, folder)
    return {plan.dag_id: _build_or_placeholder(plan, folder, outlines) for plan in plans}


def _load(
    folder: Path,
    settings: Settings,
    environ: Mapping[str, str],
    cache: ParseCache | None,
    **options: Any,
) -> Catalog:
    return load_and_validate(
        [folder],
        environ,
        assets_root=settings.assets_root,
        cache=cache,
        check_data=True,
        names=NameRecord(settings.names_record),
        **options,
    )
