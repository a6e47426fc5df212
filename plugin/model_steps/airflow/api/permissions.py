"""Who may see and change a model: Airflow's DAG-level permissions on its DAGs."""

from __future__ import annotations

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.base_auth_manager import ResourceMethod
from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails
from fastapi import HTTPException, status

from model_steps.airflow.outline import ModelOutline


def may(method: ResourceMethod, dag_id: str, user: BaseUser) -> bool:
    """Whether Airflow's auth manager lets ``user`` do ``method`` on one DAG."""
    return get_auth_manager().is_authorized_dag(
        method=method, details=DagDetails(id=dag_id), user=user
    )


def not_found(name: str) -> HTTPException:
    """The one answer for a model that does not exist and for one the user may not read."""
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no model named {name!r}")


def require(model: ModelOutline, user: BaseUser, method: ResourceMethod) -> None:
    """A model is its DAGs: seeing it needs read access to both, changing it edit access.

    A model the user may not read is not found (404), exactly as one that does not exist, so
    the answer never tells which models exist; one they may read but not change is a 403.
    """
    refused = [dag_id for dag_id in model.dags if not may(method, dag_id, user)]
    if refused and method == "GET":
        raise not_found(model.name)
    if refused:
        verb = "edit" if method == "PUT" else "read"
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"user {user.get_name()!r} may not {verb} DAG(s) {', '.join(refused)} of model "
            f"{model.name!r}",
        )
