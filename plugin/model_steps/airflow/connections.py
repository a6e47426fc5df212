"""Airflow connections to fsspec storage options, so a model's store needs no keys in YAML.

The options never reach logs, manifests or rendered task fields. Airflow is imported only when
a model names a connection, so serving processes without Airflow can use everything else.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["model_storage_options", "storage_options"]


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
    from airflow.sdk import Connection  # in tasks, the CLI and the API server alike

    conn = Connection.get(conn_id)
    return storage_options(conn.conn_type, conn.login, conn.password, conn.extra_dejson)
