"""Airflow's audit log for the Models API's changes: one entry per DAG of the model.

Airflow's own ``action_logging`` writes one entry with no DAG id for a plugin route (it reads
the id from a ``dag_id`` path parameter the plugin's routes do not have), so a pause, approval
or rollback was missing from each DAG's Audit Log tab. An entry is written for every DAG of the
model, by the authenticated user, with what was asked (the reason included), once the request
is valid and allowed; it is committed at once, so a change that then fails is still recorded,
as Airflow's own routes record theirs.
"""

from __future__ import annotations

import json
from typing import Any, cast

from airflow._shared.secrets_masker import redact
from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from sqlalchemy.orm import Session

from model_steps.airflow.api.permissions import require
from model_steps.airflow.audit import audit_rows
from model_steps.airflow.outline import ModelOutline


def allow(
    session: Session, event: str, model: ModelOutline, user: BaseUser, asked: dict[str, Any]
) -> None:
    """Check ``user`` may edit the model's DAGs, then record the change they asked for.

    One ``Log`` row per DAG of ``model`` is added and committed; values named like secrets are
    masked. A refused request is not recorded, as Airflow's routes check access first.
    """
    require(model, user, "PUT")
    extra = {"model": model.name, **{k: v for k, v in asked.items() if v is not None}}
    details = json.dumps({**cast(dict[str, Any], redact(extra)), "method": "POST"})
    session.add_all(audit_rows(event, model.dags, user.get_name(), details))
    session.commit()
