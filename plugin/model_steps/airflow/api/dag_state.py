"""Airflow's view of a model: its DAGs' pause state and last runs; pausing and triggering them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast
from urllib.parse import quote

# The metadata DB's ORM models, read and written through the API server's own session exactly as
# Airflow's public routes do (routes/public/dags.py). They are server-side models, not the
# deprecated DAG-authoring imports: DAGs themselves are built with airflow.sdk (dags.py).
from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.common.dagbag import get_latest_version_of_dag
from airflow.api_fastapi.core_api.datamodels.dag_run import TriggerDAGRunPostBody
from airflow.exceptions import ParamValidationError
from airflow.models.dag import DagModel
from airflow.models.dagbag import DBDagBag
from airflow.models.dagrun import DagRun
from airflow.models.taskinstance import TaskInstance as TI
from airflow.models.xcom import XComModel
from airflow.utils.state import DagRunState, TaskInstanceState
from airflow.utils.types import DagRunTriggeredByType, DagRunType
from fastapi import HTTPException, status
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from model_steps.airflow.api_models import DagKind, DagState, FailedTask, LastRun, ScheduleStatus
from model_steps.airflow.outline import ModelOutline
from model_steps.airflow.plan import FAILURE_XCOM


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _last_runs(session: Session, ids: Sequence[str]) -> dict[str, LastRun]:
    newest = select(func.max(DagRun.id)).where(DagRun.dag_id.in_(ids)).group_by(DagRun.dag_id)
    runs = list(session.scalars(select(DagRun).where(DagRun.id.in_(newest))))
    failures = _failed_tasks(session, [run for run in runs if run.state == DagRunState.FAILED])
    progress = _task_states(session, [run for run in runs if run.state == DagRunState.RUNNING])
    return {
        run.dag_id: LastRun(
            run_id=run.run_id,
            state=str(run.state) if run.state is not None else None,
            run_after=_iso(run.run_after),
            start_date=_iso(run.start_date),
            end_date=_iso(run.end_date),
            url=run_url(run.dag_id, run.run_id),
            failed_tasks=failures.get(run.id, []),
            task_states=progress.get((run.dag_id, run.run_id), {}),
        )
        for run in runs
    }


def _task_states(session: Session, runs: Sequence[DagRun]) -> dict[tuple[str, str], dict[str, int]]:
    """How far each running run is: its task instances counted by state, in one query."""
    if not runs:
        return {}
    keys = {(run.dag_id, run.run_id) for run in runs}
    rows = session.execute(
        select(TI.dag_id, TI.run_id, TI.state, func.count())
        .where(TI.dag_id.in_({d for d, _ in keys}), TI.run_id.in_({r for _, r in keys}))
        .group_by(TI.dag_id, TI.run_id, TI.state)
    ).all()
    states: dict[tuple[str, str], dict[str, int]] = {}
    for dag_id, run_id, state, count in rows:
        if (dag_id, run_id) in keys:
            states.setdefault((dag_id, run_id), {})[str(state or "none")] = count
    return states


def _failed_tasks(session: Session, runs: Sequence[DagRun]) -> dict[int, list[FailedTask]]:
    """Each failed run's failed tasks with the reason each left (two queries for them all)."""
    if not runs:
        return {}
    by_key = {(run.dag_id, run.run_id): run.id for run in runs}
    dag_ids, run_ids = {run.dag_id for run in runs}, {run.run_id for run in runs}
    failed = session.execute(
        select(TI.dag_id, TI.run_id, TI.task_id, TI.map_index).where(
            TI.dag_id.in_(dag_ids), TI.run_id.in_(run_ids), TI.state == TaskInstanceState.FAILED
        )
    ).all()
    reasons = {
        (row.dag_id, row.run_id, row.task_id, row.map_index): str(XComModel.deserialize_value(row))
        for row in session.execute(
            select(
                XComModel.dag_id,
                XComModel.run_id,
                XComModel.task_id,
                XComModel.map_index,
                XComModel.value,
            ).where(
                XComModel.key == FAILURE_XCOM,
                XComModel.dag_id.in_(dag_ids),
                XComModel.run_id.in_(run_ids),
            )
        )
    }
    tasks: dict[int, list[FailedTask]] = {}
    for row in failed:
        run_key = by_key.get((row.dag_id, row.run_id))
        if run_key is None:  # another DAG's run of the same id
            continue
        mapped = row.map_index if row.map_index >= 0 else None
        tasks.setdefault(run_key, []).append(
            FailedTask(
                task_id=row.task_id,
                map_index=mapped,
                reason=reasons.get((row.dag_id, row.run_id, row.task_id, row.map_index)),
                url=task_url(row.dag_id, row.run_id, row.task_id, mapped),
            )
        )
    return tasks


def dag_states(session: Session, models: Iterable[ModelOutline]) -> dict[str, DagState]:
    """Every model DAG's state, in two queries for the whole listing."""
    kinds: dict[str, DagKind] = {
        dag_id: cast(DagKind, kind) for model in models for dag_id, kind in model.dags.items()
    }
    ids = list(kinds)
    rows = session.execute(
        select(DagModel.dag_id, DagModel.is_paused).where(DagModel.dag_id.in_(ids))
    )
    paused = {row.dag_id: row.is_paused for row in rows}
    runs = _last_runs(session, ids)
    return {
        dag_id: DagState(
            dag_id=dag_id,
            kind=kinds[dag_id],
            paused=paused.get(dag_id),
            url=f"/dags/{dag_id}",
            last_run=runs.get(dag_id),
        )
        for dag_id in ids
    }


def schedule_status_of(dags: Sequence[DagState]) -> ScheduleStatus:
    """One word for a model's DAGs' pause states together."""
    known = [d.paused for d in dags if d.paused is not None]
    if not known:
        return "not in Airflow yet"
    if all(known):
        return "paused"
    return "active" if not any(known) else "partly paused"


def set_paused(session: Session, model: ModelOutline, paused: bool) -> None:
    """Set ``is_paused`` on both DAGs, as Airflow's own ``PATCH /api/v2/dags/{id}`` does."""
    ids = list(model.dags)
    dags = session.scalars(select(DagModel).where(DagModel.dag_id.in_(ids))).all()
    missing = sorted(set(ids) - {dag.dag_id for dag in dags})
    if missing:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"DAG(s) {', '.join(missing)} of model {model.name!r} are not in Airflow yet: "
            "wait for the DAG processor to parse the definition",
        )
    for dag in dags:
        dag.is_paused = paused
    session.flush()


def run_url(dag_id: str, run_id: str) -> str:
    """The run in Airflow 3's UI (its grid, each task's log a click away), under its base URL."""
    return f"/dags/{dag_id}/runs/{quote(run_id, safe='')}"


def task_url(dag_id: str, run_id: str, task_id: str, map_index: int | None) -> str:
    """A task instance's log in Airflow 3's UI (the task page opens on its log)."""
    url = f"{run_url(dag_id, run_id)}/tasks/{task_id}"
    return url if map_index is None else f"{url}/mapped/{map_index}"


def trigger(
    session: Session, dag_bag: DBDagBag, dag_id: str, conf: dict[str, Any], user: BaseUser
) -> DagRun:
    """Queue a manual run as Airflow's ``POST /dags/{id}/dagRuns`` does; bad params are a 422.

    Airflow checks ``conf`` against the DAG's params (type, bounds, choices) when the run is
    created, so a refused value never becomes a failed run.
    """
    dag = get_latest_version_of_dag(dag_bag, dag_id, session)
    try:
        asked = TriggerDAGRunPostBody(logical_date=None, conf=conf).validate_context(dag)
        run: DagRun = dag.create_dagrun(
            run_id=asked["run_id"],
            logical_date=asked["logical_date"],
            data_interval=asked["data_interval"],
            run_after=asked["run_after"],
            conf=asked["conf"],
            run_type=DagRunType.MANUAL,
            triggered_by=DagRunTriggeredByType.UI,
            triggering_user_name=user.get_name(),
            state=DagRunState.QUEUED,
            partition_key=asked["partition_key"],
            partition_date=asked["partition_date"],
            session=session,
        )
    except (ParamValidationError, ValueError) as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from error
    return run
