"""What routes depend on: the definitions, the model named in the path, a change's guards."""

from __future__ import annotations

from typing import Annotated, Any

from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import GetUserDep
from airflow.api_fastapi.logging.decorators import action_logging
from fastapi import Depends, Request

from model_steps.airflow.api.catalog import Definitions
from model_steps.airflow.api.permissions import may, not_found, require
from model_steps.airflow.csrf import json_from_same_origin
from model_steps.airflow.outline import ModelOutline
from model_steps.airflow.plan import TRAIN_SUFFIX


def _definitions(request: Request) -> Definitions:
    definitions: Definitions = request.app.state.definitions
    return definitions


def _listed(
    name: str, definitions: DefinitionsDep, user: GetUserDep, session: SessionDep
) -> tuple[ModelOutline, str | None]:
    # Checked before the catalog is read: whether a name exists, or its file is broken, is
    # told only to who may read the DAGs it would have.
    if not may("GET", name + TRAIN_SUFFIX, user):
        raise not_found(name)
    listed = definitions.model(name, session)
    require(listed[0], user, "GET")
    return listed


def _model(listed: ListedDep) -> ModelOutline:
    return listed[0]


def change_guards(action: str) -> list[Any]:
    """A change's guards: JSON from Airflow's own pages (CSRF), then Airflow's audit log."""
    return [Depends(json_from_same_origin), Depends(action_logging(action))]


DefinitionsDep = Annotated[Definitions, Depends(_definitions)]
ListedDep = Annotated[tuple[ModelOutline, str | None], Depends(_listed)]
ModelDep = Annotated[ModelOutline, Depends(_model)]
