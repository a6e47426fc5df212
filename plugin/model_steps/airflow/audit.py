"""Airflow's audit log for what the command line changes in a model's store.

The Models API's changes reach Airflow's audit log (the ``log`` table, each DAG's Audit Log
tab) in the request's session (:mod:`.api.audit`). ``model-steps promote``, ``reject``,
``rollback`` and ``prune`` change the same stores outside any request: they write the same
events, one row per DAG of the model so each DAG's tab shows them, owned by the OS user who ran
the command, as Airflow's own command line records its commands.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from airflow.models.log import Log

__all__ = ["audit_rows", "record_action"]


def audit_rows(event: str, dag_ids: Iterable[str], owner: str, extra: str) -> list[Log]:
    """One audit-log row per DAG, so the change shows in each DAG's Audit Log tab."""
    return [
        Log(event=event, owner=owner, owner_display_name=owner, extra=extra, dag_id=dag_id)
        for dag_id in dag_ids
    ]


def record_action(
    event: str, dag_ids: Sequence[str], owner: str, details: Mapping[str, Any]
) -> None:
    """Write ``event`` for each of ``dag_ids`` to Airflow's audit log, in a session of its own.

    Raises:
        Exception: whatever Airflow's metadata DB raises (not configured, not migrated).
    """
    from airflow.utils.session import create_session

    extra = json.dumps({"via": "model-steps", "host_name": socket.gethostname(), **details})
    with create_session() as session:
        session.add_all(audit_rows(event, dag_ids, owner, extra))
