"""Airflow's view of a model: its DAGs' pause state and last runs, and pausing them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

# The metadata DB's ORM models, read and written through the API server's own session exactly as
# Airflow's public routes do (routes/public/dags.py). They are server-side models, not the
# deprecated DAG-authoring imports: DAGs themselves are built with airflow.sdk (dags.py).
from airflow.models.dag import DagModel
from airflow.models.dagrun import DagRun
from fastapi import HTTPException, status
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from model_steps.airflow.api_models import DagKind, DagState, LastRun, ScheduleStatus
from model_steps.airflow.outline import ModelOutline


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _last_runs(session: Session, ids: Sequence[str]) -> dict[str, LastRun]:
    newest = select(func.max(DagRun.id)).where(DagRun.dag_id.in_(ids)).group_by(DagRun.dag_id)
    runs = session.scalars(select(DagRun).where(DagRun.id.in_(newest)))
    return {
        run.dag_id: LastRun(
            run_id=run.run_id,
            state=str(run.state) if run.state is not None else None,
            run_after=_iso(run.run_after),
            start_date=_iso(run.start_date),
            end_date=_iso(run.end_date),
        )
        for run in runs
    }


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
