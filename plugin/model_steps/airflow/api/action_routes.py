"""Routes that change a model: rollback, approve, reject, pause, resume."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import APIRouter, HTTPException, status
from sqlalchemy.orm import Session

from model_steps.airflow.api.catalog import Definitions
from model_steps.airflow.api.dag_state import dag_states, set_paused
from model_steps.airflow.api.dependencies import DefinitionsDep, ModelDep, change_guards
from model_steps.airflow.api.permissions import require
from model_steps.airflow.api.store_facts import open_store, require_complete
from model_steps.airflow.api_models import (
    DecisionRequest,
    DecisionResult,
    ErrorBody,
    PauseResult,
    RollbackRequest,
    RollbackResult,
)
from model_steps.airflow.events import announce_version
from model_steps.airflow.outline import ModelOutline
from model_steps.errors import DecisionConflictError, NotServableError, PublishConflictError
from model_steps.runtime.ownership import check_definition_owner
from model_steps.store.manifest import Pointer
from model_steps.store.model_store import ModelStore

router = APIRouter()


@router.post(
    "/models/{name}/rollback",
    summary="Serve an older complete version again",
    dependencies=change_guards("model_steps_rollback"),
    responses={409: {"description": "Already live, or a publish won the race", "model": ErrorBody}},
)
def rollback(
    model: ModelDep, body: RollbackRequest, user: GetUserDep, definitions: DefinitionsDep
) -> RollbackResult:
    """Moves the model's pointer back; nothing is rewritten, handlers reload on their next poll."""
    require(model, user, "PUT")
    store = open_store(model, definitions.settings)
    check_definition_owner(store, Path(model.file), None, definitions.settings)
    return rollback_to(store, model.name, body.version)


DECISION_CONFLICTS: dict[int | str, dict[str, Any]] = {
    409: {"description": "Not waiting for approval, or already decided", "model": ErrorBody}
}


@router.post(
    "/models/{name}/versions/{version}/approve",
    summary="Approve a candidate that waits for approval: it goes live",
    dependencies=change_guards("model_steps_approve"),
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
    dependencies=change_guards("model_steps_reject"),
    responses=DECISION_CONFLICTS,
)
def reject(
    model: ModelDep,
    version: int,
    body: DecisionRequest,
    user: GetUserDep,
    definitions: DefinitionsDep,
) -> DecisionResult:
    """Records the rejection and its reason; the candidate is never served."""
    reason = (body.reason or "").strip()
    if not reason:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "say why the candidate is rejected: reason"
        )
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
    """Record a person's decision on a complete version: edit rights first, 409 on a refusal."""
    require(model, user, "PUT")
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
    dependencies=change_guards("model_steps_pause"),
)
def pause(model: ModelDep, user: GetUserDep, session: SessionDep) -> PauseResult:
    """Pauses the train and infer DAGs, as the Airflow UI's toggle would."""
    return _pause_or_resume(model, user, session, paused=True)


@router.post(
    "/models/{name}/resume",
    summary="Resume the model's DAGs' schedules",
    dependencies=change_guards("model_steps_resume"),
)
def resume(model: ModelDep, user: GetUserDep, session: SessionDep) -> PauseResult:
    """Un-pauses the train and infer DAGs, as the Airflow UI's toggle would."""
    return _pause_or_resume(model, user, session, paused=False)


def _pause_or_resume(
    model: ModelOutline, user: BaseUser, session: Session, paused: bool
) -> PauseResult:
    require(model, user, "PUT")
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
