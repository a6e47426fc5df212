"""Routes that change a model: rollback, train, approve, reject, pause, resume; each audited."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import APIRouter, HTTPException, status
from sqlalchemy.orm import Session

from model_steps.airflow.api.audit import allow
from model_steps.airflow.api.catalog import Definitions
from model_steps.airflow.api.dag_state import dag_states, run_url, set_paused, trigger
from model_steps.airflow.api.dependencies import CHANGE_GUARDS, DagBagDep, DefinitionsDep, ModelDep
from model_steps.airflow.api.store_facts import open_store, require_complete
from model_steps.airflow.api_models import (
    ChangeRequest,
    DecisionRequest,
    DecisionResult,
    ErrorBody,
    PauseResult,
    RollbackRequest,
    RollbackResult,
    TrainRequest,
    TriggeredRun,
)
from model_steps.airflow.events import announce_version
from model_steps.airflow.outline import ModelOutline
from model_steps.airflow.plan import TRAIN_SUFFIX
from model_steps.errors import DecisionConflictError, NotServableError, PublishConflictError
from model_steps.runtime.ownership import check_definition_owner
from model_steps.store.manifest import Pointer
from model_steps.store.model_store import ModelStore

router = APIRouter()
NO_REASON = ChangeRequest()
"""Pause and resume take no arguments: an API client may send ``{}``."""


@router.post(
    "/models/{name}/rollback",
    summary="Serve an older complete version again",
    dependencies=CHANGE_GUARDS,
    responses={409: {"description": "Already live, or a publish won the race", "model": ErrorBody}},
)
def rollback(
    model: ModelDep,
    body: RollbackRequest,
    user: GetUserDep,
    definitions: DefinitionsDep,
    session: SessionDep,
    dag_bag: DagBagDep,
) -> RollbackResult:
    """Moves the model's pointer back; nothing is rewritten, handlers reload on their next poll.

    A rollback sends no new-version event, so inference scheduled "on new version" does not
    start by itself: ``infer`` starts the model's infer DAG with the version now live.
    """
    allow(session, "model_steps_rollback", model, user, body.model_dump())
    store = open_store(model, definitions.settings)
    check_definition_owner(store, Path(model.file), None, definitions.settings)
    result = rollback_to(store, model.name, body.version)
    infer = next((d for d, kind in model.dags.items() if kind == "infer"), None)
    if body.infer and infer is not None:
        run = trigger(session, dag_bag, infer, {}, user)
        result.infer_run = TriggeredRun(
            dag_id=infer, run_id=run.run_id, url=run_url(infer, run.run_id)
        )
    return result


@router.post(
    "/models/{name}/train",
    summary="Start a training run now, with some of the model's parameters set",
    dependencies=CHANGE_GUARDS,
    responses={422: {"description": "Unknown parameter or a value its rules refuse"}},
)
def train(
    model: ModelDep, body: TrainRequest, user: GetUserDep, session: SessionDep, dag_bag: DagBagDep
) -> TriggeredRun:
    """Queues a manual run of the train DAG; Airflow checks each value against its param."""
    unknown = sorted(set(body.params) - set(model.parameters))
    if unknown:
        known = ", ".join(sorted(model.parameters)) or "none"
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"model {model.name!r} has no parameter(s) {', '.join(unknown)} (its parameters: "
            f"{known})",
        )
    allow(session, "model_steps_train", model, user, body.model_dump())
    dag_id = model.name + TRAIN_SUFFIX
    run = trigger(session, dag_bag, dag_id, dict(body.params), user)
    return TriggeredRun(dag_id=dag_id, run_id=run.run_id, url=run_url(dag_id, run.run_id))


DECISION_CONFLICTS: dict[int | str, dict[str, Any]] = {
    409: {"description": "Not waiting for approval, or already decided", "model": ErrorBody}
}


@router.post(
    "/models/{name}/versions/{version}/approve",
    summary="Approve a candidate that waits for approval: it goes live",
    dependencies=CHANGE_GUARDS,
    responses=DECISION_CONFLICTS,
)
def approve(
    model: ModelDep,
    version: int,
    body: DecisionRequest,
    user: GetUserDep,
    definitions: DefinitionsDep,
    session: SessionDep,
) -> DecisionResult:
    """Records the approval, moves the pointer and sends the model's Asset event."""
    allow(session, "model_steps_approve", model, user, {"version": version, **body.model_dump()})
    store, by = _decision(
        model, version, user, definitions, lambda s, by: s.approve(version, by, body.reason)
    )
    live = store.pointer()
    announced = (
        live is not None
        and live.version == version
        and announce_version(session, model.name, version, live.manifest, by)
    )
    return _decided(model, version, "approved", by, live, announced)


@router.post(
    "/models/{name}/versions/{version}/reject",
    summary="Turn down a candidate that waits for approval",
    dependencies=CHANGE_GUARDS,
    responses=DECISION_CONFLICTS,
)
def reject(
    model: ModelDep,
    version: int,
    body: DecisionRequest,
    user: GetUserDep,
    definitions: DefinitionsDep,
    session: SessionDep,
) -> DecisionResult:
    """Records the rejection and its reason; the candidate is never served."""
    reason = body.reason
    if not reason:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "say why the candidate is rejected: reason"
        )
    allow(session, "model_steps_reject", model, user, {"version": version, **body.model_dump()})
    store, by = _decision(
        model, version, user, definitions, lambda s, by: s.reject(version, by, reason)
    )
    return _decided(model, version, "rejected", by, store.pointer(), announced=False)


def _decision(
    model: ModelOutline,
    version: int,
    user: BaseUser,
    definitions: Definitions,
    act: Callable[[ModelStore, str], Any],
) -> tuple[ModelStore, str]:
    """Record a person's decision on a complete version (edit rights checked): 409 on a refusal."""
    store = open_store(model, definitions.settings)
    check_definition_owner(store, Path(model.file), None, definitions.settings)
    require_complete(store, model.name, version)
    by = user.get_name()
    try:
        act(store, by)
    except (NotServableError, DecisionConflictError, PublishConflictError) as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error
    return store, by


def _decided(
    model: ModelOutline,
    version: int,
    action: Literal["approved", "rejected"],
    by: str,
    live: Pointer | None,
    announced: bool,
) -> DecisionResult:
    return DecisionResult(
        model=model.name,
        version=version,
        action=action,
        by=by,
        live_version=live.version if live else None,
        announced=announced,
    )


@router.post(
    "/models/{name}/pause",
    summary="Pause the model's DAGs' schedules",
    dependencies=CHANGE_GUARDS,
)
def pause(
    model: ModelDep, user: GetUserDep, session: SessionDep, body: ChangeRequest = NO_REASON
) -> PauseResult:
    """Pauses the model's DAGs, as the Airflow UI's toggle would."""
    allow(session, "model_steps_pause", model, user, body.model_dump())
    return _pause_or_resume(model, session, paused=True)


@router.post(
    "/models/{name}/resume",
    summary="Resume the model's DAGs' schedules",
    dependencies=CHANGE_GUARDS,
)
def resume(
    model: ModelDep, user: GetUserDep, session: SessionDep, body: ChangeRequest = NO_REASON
) -> PauseResult:
    """Un-pauses the model's DAGs, as the Airflow UI's toggle would."""
    allow(session, "model_steps_resume", model, user, body.model_dump())
    return _pause_or_resume(model, session, paused=False)


def _pause_or_resume(model: ModelOutline, session: Session, paused: bool) -> PauseResult:
    set_paused(session, model, paused)
    return PauseResult(model=model.name, dags=list(dag_states(session, [model]).values()))


def rollback_to(store: ModelStore, name: str, version: int) -> RollbackResult:
    """Point the model at a complete, older version; a live or unservable one is a 409."""
    store.check_owner()
    require_complete(store, name, version)
    current = store.pointer()
    if current is not None and current.version == version:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"version {version} of {name!r} is already the live version"
        )
    try:
        pointer = store.rollback(version)
    except (PublishConflictError, NotServableError) as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error
    return RollbackResult(
        model=name, version=pointer.version, previous=current.version if current else None
    )
