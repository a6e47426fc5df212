"""The definitions Airflow knows, read from its metadata DB (no DAG file needed).

The DAG processor serializes every DAG it parses, from whichever DAG bundle holds it, and the
DAG builder puts a definition's outline (:mod:`.outline`) in each model's train DAG and in each
broken file's placeholder DAG. This reads the outlines of the latest version of every current
model DAG: what Airflow would run next, in the API server of the official Helm chart, which has
no DAG files at all. A serialized DAG is read once per version (its ``dag_hash``); a listing
otherwise costs three small queries.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# The metadata DB's ORM models, read through the API server's own session as Airflow's public
# routes read them; DAGs themselves are built with airflow.sdk (dags.py).
from airflow.models.dag import DagModel, DagTag
from airflow.models.dag_version import DagVersion
from airflow.models.errors import ParseImportError
from airflow.models.serialized_dag import SerializedDagModel
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from model_steps.airflow.outline import InvalidOutline, ModelOutline, ProblemOutline, read_outline
from model_steps.airflow.plan import INVALID_PREFIX, PRODUCT_TAG, TRAIN_SUFFIX

__all__ = ["Stored", "StoredOutlines", "loader_errors"]

Outline = ModelOutline | InvalidOutline
LOADER_PREFIX = "model_steps"
"""The DAG files of this package (the loader ``model_steps_loader.py`` and any beside it)."""
MESSAGE_CHARACTERS = 1000


@dataclass(frozen=True)
class Stored:
    """An outline as Airflow holds it: the DAG carrying it and the bundle it was read from."""

    outline: Outline
    dag_id: str
    bundle: str


class StoredOutlines:
    """The outlines of the current model DAGs, with each serialized version read only once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_hash: dict[str, Outline | None] = {}

    def read(self, session: Session) -> list[Stored]:
        """Every current (not stale) model train DAG's and placeholder DAG's outline."""
        bundles = _carriers(session)
        if not bundles:
            return []
        heads = _latest(session, bundles)
        with self._lock:
            known = dict(self._by_hash)
        missing = {row_id: dag_hash for row_id, _, dag_hash in heads if dag_hash not in known}
        known.update(_outlines(session, missing))
        with self._lock:  # keep only the versions now current: the cache cannot grow unbounded
            self._by_hash = {dag_hash: known.get(dag_hash) for _, _, dag_hash in heads}
        return [
            Stored(outline, dag_id, bundles[dag_id])
            for _, dag_id, dag_hash in heads
            if (outline := known.get(dag_hash)) is not None
        ]


def _carriers(session: Session) -> dict[str, str]:
    """The current DAGs that carry an outline, with their bundles: train DAGs, placeholders."""
    rows = session.execute(
        select(DagModel.dag_id, DagModel.bundle_name)
        .join(DagTag, DagTag.dag_id == DagModel.dag_id)
        .where(DagTag.name == PRODUCT_TAG, DagModel.is_stale.is_(False))
    )
    return {
        dag_id: bundle
        for dag_id, bundle in rows
        if dag_id.endswith(TRAIN_SUFFIX) or dag_id.startswith(INVALID_PREFIX)
    }


def _latest(session: Session, dag_ids: Iterable[str]) -> list[tuple[Any, str, str]]:
    """Each DAG's newest serialized version: row id, DAG id and hash, without its data."""
    newest = (
        select(DagVersion.dag_id, func.max(DagVersion.version_number).label("number"))
        .where(DagVersion.dag_id.in_(list(dag_ids)))
        .group_by(DagVersion.dag_id)
        .subquery()
    )
    rows = session.execute(
        select(SerializedDagModel.id, SerializedDagModel.dag_id, SerializedDagModel.dag_hash)
        .join(DagVersion, SerializedDagModel.dag_version_id == DagVersion.id)
        .join(
            newest,
            and_(
                DagVersion.dag_id == newest.c.dag_id, DagVersion.version_number == newest.c.number
            ),
        )
        .order_by(SerializedDagModel.dag_id)
    )
    return [(row_id, dag_id, dag_hash) for row_id, dag_id, dag_hash in rows]


def _outlines(session: Session, rows: Mapping[Any, str]) -> dict[str, Outline | None]:
    """The outline in each of these serialized DAGs, by hash (None: it carries none)."""
    if not rows:
        return {}
    found: dict[str, Outline | None] = {}
    for serialized in session.scalars(
        select(SerializedDagModel).where(SerializedDagModel.id.in_(list(rows)))
    ):
        found[rows[serialized.id]] = _outline_in(serialized.data)
    return found


def _outline_in(data: Any) -> Outline | None:
    """The outline in a serialized DAG's first task that carries one."""
    dag = data.get("dag") if isinstance(data, dict) else None
    tasks = dag.get("tasks", []) if isinstance(dag, dict) else []
    for task in tasks:
        fields = task.get("__var", task) if isinstance(task, dict) else None
        outline = read_outline(fields.get("doc_json")) if isinstance(fields, dict) else None
        if outline is not None:
            return outline
    return None


def loader_errors(session: Session) -> list[Stored]:
    """The import errors Airflow recorded for this package's DAG files, one broken file each.

    When the loader itself cannot run (the package is missing from the DAG processor's image,
    a version mismatch), no model has a DAG, and this is the only sign of why. The message is
    the error's last line, as the last line of a Python traceback says what failed.
    """
    rows = session.execute(
        select(ParseImportError.filename, ParseImportError.bundle_name, ParseImportError.stacktrace)
    )
    found = []
    for filename, bundle, stacktrace in rows:
        if not filename or not filename.rpartition("/")[2].startswith(LOADER_PREFIX):
            continue
        lines = [line.strip() for line in (stacktrace or "").splitlines() if line.strip()]
        message = (lines[-1] if lines else "the file failed to import")[:MESSAGE_CHARACTERS]
        outline = InvalidOutline(
            file=filename,
            problems=(ProblemOutline(code="import_error", message=message),),
        )
        found.append(Stored(outline, "", bundle or ""))
    return found
