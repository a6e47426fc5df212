"""Airflow connections to fsspec storage options, so a model's store needs no keys in YAML.

The options never reach logs, manifests or rendered task fields. Airflow is imported only when
a model names a connection, so serving processes without Airflow can use everything else.

Where a connection is found depends on the process. A task asks the execution API, the API
server reads the metadata DB, and any other process (``model-steps`` commands, ``serve``, the
init job of docker/compose.yaml) gets only environment variables and secrets backends from
``airflow.sdk``. A connection added in the UI or with ``airflow connections add`` lives in the
metadata DB, so outside a task the lookup falls back to that DB when it is configured.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import Connection

__all__ = ["find_connection", "model_storage_options", "storage_options"]


def storage_options(
    conn_type: str | None, login: str | None, password: str | None, extra: str | Mapping[str, Any]
) -> dict[str, Any]:
    """Fsspec options for a connection: AWS-style ones map to s3fs, others pass ``extra`` on.

    An AWS connection's ``extra`` may hold ``endpoint_url`` (MinIO, a test server) and
    ``region_name``; any other connection's ``extra`` is taken as fsspec options as they are.
    """
    details = json.loads(extra) if isinstance(extra, str) and extra else dict(extra or {})
    if conn_type not in ("aws", "s3"):
        return details
    options: dict[str, Any] = {}
    if login:
        options["key"] = login
    if password:
        options["secret"] = password
    client = {k: details[k] for k in ("endpoint_url", "region_name") if details.get(k)}
    if client:
        options["client_kwargs"] = client
    return options


def model_storage_options(conn_id: str | None) -> dict[str, Any]:
    """Options for a model's ``assets.conn_id``; none (fsspec's own credential chain) without."""
    if not conn_id:
        return {}
    conn = find_connection(conn_id)
    return storage_options(conn.conn_type, conn.login, conn.password, conn.extra_dejson)


def find_connection(conn_id: str) -> Connection:
    """The connection from Airflow's own chain, else (outside a task) from the metadata DB.

    Raises ``AirflowNotFoundException`` when neither has it, saying whether the metadata DB
    could be read at all (a missing connection and an unreachable DB are different fixes).
    """
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        found: Connection = Connection.get(conn_id)
        return found
    except AirflowNotFoundException as missing:
        if _in_task():  # a task's chain already asked the execution API, which reads the DB
            raise
        try:
            stored = _from_metadata_db(conn_id)
        except Exception as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise AirflowNotFoundException(
                f"The conn_id `{conn_id}` isn't defined in the environment or a secrets "
                f"backend, and the metadata DB could not be read ({type(error).__name__}: "
                f"{reason[:200]})"
            ) from error
        if stored is None:
            raise AirflowNotFoundException(
                f"The conn_id `{conn_id}` isn't defined in the environment, a secrets backend "
                "or the metadata DB"
            ) from missing
        return stored


def _in_task() -> bool:
    """Whether this process is a task talking to its supervisor (no direct DB access there)."""
    runner = sys.modules.get("airflow.sdk.execution_time.task_runner")
    return getattr(runner, "SUPERVISOR_COMMS", None) is not None


def _from_metadata_db(conn_id: str) -> Connection | None:
    """The connection as stored in the metadata DB, as the SDK's own class (None if absent)."""
    from airflow.sdk import Connection
    from airflow.secrets.metastore import MetastoreBackend

    stored = MetastoreBackend().get_connection(conn_id)
    if stored is None:
        return None
    return Connection(
        conn_id=conn_id,
        conn_type=stored.conn_type,
        host=stored.host,
        login=stored.login,
        password=stored.password,
        schema=stored.schema,
        port=stored.port,
        extra=stored.extra,
    )
