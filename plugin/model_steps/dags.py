"""DAG plans to Airflow DAGs: the only module that creates Airflow objects.

Uses the Airflow 3 authoring interface (``airflow.sdk``) only. Building is defensive per DAG: if
Airflow rejects one model's DAG, that model gets an invalid-definition placeholder carrying
Airflow's message, and every other model's DAGs still load.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import DAG, Asset, BaseOperator, Param

from model_steps.errors import DefinitionError, PermanentError, Problem
from model_steps.loader import BrokenDefinition, load_and_validate
from model_steps.plan import (
    AssetRef,
    DagPlan,
    TaskPlan,
    model_asset,
    model_name_of,
    plan_catalog,
    plan_invalid,
)
from model_steps.rendered import Rendered

if TYPE_CHECKING:
    from airflow.sdk import Context

    from model_steps.spec import ModelSpec
    from model_steps.tasks import RunInfo

__all__ = ["InvalidDefinitionOperator", "ModelStepOperator", "build_dag", "build_dags"]

log = logging.getLogger(__name__)

ASSET_GROUP = "model-steps"


def _run_info(context: Context) -> RunInfo:
    from model_steps.tasks import RunInfo

    dag_run = context["dag_run"]
    return RunInfo(
        dag_id=dag_run.dag_id,
        run_id=dag_run.run_id,
        logical_date=dag_run.logical_date,
        params=dict(context["params"]),
        try_number=context["ti"].try_number,
    )


class ModelStepOperator(BaseOperator):
    """Runs one train, infer or publish action of a model definition.

    ``rendered`` (the step's init arguments and data URLs) is a template field: Airflow renders
    ``{{ params.C }}`` or ``{{ dag_run.run_after | ds }}`` in it before the task runs, as native
    Python values.
    """

    template_fields = ("rendered",)
    ui_color = "#dbeafe"

    def __init__(
        self, *, action: str, spec: ModelSpec, step_id: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.action = action
        self.spec = spec
        self.step_id = step_id
        step = next((s for s in spec.steps if s.id == step_id), None)
        self.rendered = asdict(Rendered.templates(step, action)) if step else {}

    def execute(self, context: Context) -> Any:
        """Hand the run's facts to the Airflow-free task function.

        Failures that a retry cannot fix skip the remaining retries.
        """
        # The runtime is imported here, not at parse time: only a running task needs it.
        from airflow.sdk.exceptions import AirflowFailException

        from model_steps import tasks
        from model_steps.credentials import model_storage_options
        from model_steps.settings import load_settings

        env = tasks.environment(
            self.spec, load_settings(), model_storage_options(self.spec.assets.conn_id)
        )
        run = _run_info(context)
        try:
            if self.action == "publish":
                result = tasks.publish(self.spec, run, env)
                outlet = _asset(model_asset(self.spec.name))
                context["outlet_events"][outlet].extra = {
                    "model": self.spec.name,
                    "version": result["version"],
                    "manifest": result["manifest"],
                }
                return result
            step = tasks.train_step if self.action == "train" else tasks.infer_step
            return step(self.spec, str(self.step_id), run, env, Rendered(**self.rendered))
        except PermanentError as error:
            raise AirflowFailException(str(error)) from error


class InvalidDefinitionOperator(BaseOperator):
    """Fails with the problems of a broken definition, so they show in the task log too."""

    ui_color = "#fee2e2"

    def __init__(self, *, problems: tuple[Problem, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.problems = problems

    def execute(self, context: Context) -> Any:
        """Raise the definition's problems: there is nothing to run until the file is fixed."""
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(str(DefinitionError(self.problems)))


def _asset(ref: AssetRef) -> Asset:
    return Asset(name=ref.name, uri=ref.uri, group=ASSET_GROUP)


def _operator(plan: DagPlan, task: TaskPlan) -> BaseOperator:
    common: dict[str, Any] = {
        "task_id": task.task_id,
        "doc_md": task.doc_md or None,
        **task.options,
    }
    if task.outlets:
        common["outlets"] = [_asset(ref) for ref in task.outlets]
    if task.action == "report":
        return InvalidDefinitionOperator(problems=plan.problems, **common)
    assert plan.spec is not None, "model tasks are planned from a valid spec"
    return ModelStepOperator(action=task.action, spec=plan.spec, step_id=task.step_id, **common)


def _schedule(plan: DagPlan) -> Any:
    return _asset(plan.schedule) if isinstance(plan.schedule, AssetRef) else plan.schedule


def build_dag(plan: DagPlan) -> DAG:
    """One DAG from its plan; not auto-registered, the caller decides where it goes."""
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
        render_template_as_native_obj=True,
        auto_register=False,
    ) as dag:
        operators = {task.task_id: _operator(plan, task) for task in plan.tasks}
        for task in plan.tasks:
            for upstream in task.upstream:
                operators[upstream] >> operators[task.task_id]
    return dag


def _build_or_placeholder(plan: DagPlan, root: Path) -> DAG:
    """Build ``plan``; if Airflow rejects it, build a placeholder carrying Airflow's reason."""
    try:
        return build_dag(plan)
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
        return build_dag(plan_invalid(BrokenDefinition(plan.source, (problem,)), root))


def build_dags(
    folder: Path, environ: Mapping[str, str], dag_id: str | None = None
) -> dict[str, DAG]:
    """Every DAG the definitions under ``folder`` produce, keyed by DAG id.

    With ``dag_id`` (a task start's parsing context) only that DAG is built, and for a model's
    DAG only the model's own file is read when it is named after the model.
    """
    catalog = load_and_validate([folder], environ, only=model_name_of(dag_id or ""))
    plans = plan_catalog(catalog, folder)
    if dag_id is not None:
        plans = [plan for plan in plans if plan.dag_id == dag_id]
    dags = (_build_or_placeholder(plan, folder) for plan in plans)
    return {dag.dag_id: dag for dag in dags}
