"""Telling Airflow a person made a version live: the model's Asset event, as publish sends it.

A candidate that waited for approval goes live outside any task run, so nothing emits the
``model-steps.<name>`` Asset event that ``schedule.infer: on new version`` waits on. The Models
API (on the API server) and ``model-steps promote`` (where Airflow and its metadata DB are
reachable) register the same event through Airflow's asset manager, as its own REST API does.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from model_steps.airflow.plan import model_asset

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["announce_version", "announce_version_in_new_session"]

log = logging.getLogger(__name__)


def announce_version(
    session: Session, model: str, version: int, manifest: str, approved_by: str
) -> bool:
    """Register the model's Asset event for ``version``; False when Airflow has no such Asset.

    The Asset exists once Airflow has parsed the model's train DAG (its publish task updates
    it); before that, nothing can be scheduled on it either.
    """
    from airflow.assets.manager import asset_manager
    from airflow.models.asset import AssetModel
    from sqlalchemy import select

    ref = model_asset(model)
    asset = session.scalar(
        select(AssetModel).where(AssetModel.name == ref.name, AssetModel.uri == ref.uri).limit(1)
    )
    if asset is None:
        log.warning("Airflow knows no Asset %s yet: no event for version %d", ref.name, version)
        return False
    extra: dict[str, Any] = {
        "model": model,
        "version": version,
        "manifest": manifest,
        "approved_by": approved_by,
    }
    asset_manager.register_asset_change(
        asset=asset, extra=extra, source_is_api=True, session=session
    )
    return True


def announce_version_in_new_session(
    model: str, version: int, manifest: str, approved_by: str
) -> bool:
    """:func:`announce_version` in a session of its own (the command line's case)."""
    from airflow.utils.session import create_session

    with create_session() as session:
        return announce_version(session, model, version, manifest, approved_by)
