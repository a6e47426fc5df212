"""Routes about a model's published versions: the list, a manifest, a card."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from model_steps.airflow.api.dependencies import DefinitionsDep, ModelDep
from model_steps.airflow.api.documents import redacted, version_summary
from model_steps.airflow.api.store_facts import open_store, require_complete
from model_steps.airflow.api_models import VersionCard, VersionList
from model_steps.store.manifest import Manifest

router = APIRouter()


@router.get("/models/{name}/versions", summary="A model's published versions, newest first")
def list_versions(model: ModelDep, definitions: DefinitionsDep) -> VersionList:
    """Every complete version with its metrics, and which one handlers serve."""
    store = open_store(model, definitions.settings)
    pointer = store.pointer()
    current = pointer.version if pointer else None
    return VersionList(
        model=model.name,
        current=current,
        versions=[version_summary(store, v, current) for v in reversed(store.versions())],
    )


@router.get("/models/{name}/versions/{version}", summary="The manifest of one version")
def get_version(model: ModelDep, version: int, definitions: DefinitionsDep) -> Manifest:
    """Everything recorded about the version: assets with checksums, metrics, lineage."""
    store = open_store(model, definitions.settings)
    if version not in store.versions():
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"model {model.name!r} has no complete version {version}",
        )
    return redacted(store.manifest(version))


@router.get("/models/{name}/versions/{version}/card", summary="The model card of one version")
def get_card(model: ModelDep, version: int, definitions: DefinitionsDep) -> VersionCard:
    """MODEL_CARD.md as written with the version: published, refused or waiting alike."""
    store = open_store(model, definitions.settings)
    require_complete(store, model.name, version)
    return VersionCard(model=model.name, version=version, card=store.card(version))
