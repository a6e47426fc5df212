"""Published assets as loaders read them, and the hostile ones an attacker would plant."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any


def asset_bytes(store: Any, record: Any) -> bytes:
    """The bytes of ``record``'s asset, refused unless they match the manifest."""
    with store.open_asset(record) as stream:
        data: bytes = stream.read()
    return data


class _Touch:
    """A pickle that creates a file when it is loaded: proof that loading ran its code."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.path,))


def touching_pickle(marker: Path) -> bytes:
    """A pickle (joblib reads it too) whose loading creates ``marker``."""
    return pickle.dumps(_Touch(marker))


def _churn_version(
    store: Any, run_id: str, metrics: dict[str, Any] | None, at: str | None, gate: Any
) -> tuple[list[Any], Any]:
    """One small staged asset of model ``churn`` and the minimal manifest for its version."""
    from model_steps.store.manifest import Manifest
    from model_steps.store.model_store import StagedAsset, utc_now

    url = store.scratch_url("run", "model.joblib")
    size, sha256 = store.write_bytes(url, b"fitted")
    staged = [StagedAsset("fit", url, size, sha256, "joblib", "model.joblib", store.url())]
    made = at or utc_now()

    def manifest_for(version: int, assets: object) -> Manifest:
        return Manifest(
            model="churn",
            version=version,
            definition_version="1",
            spec_hash="0" * 64,
            dag_id="churn__train",
            run_id=run_id.format(version=version),
            created_at=made,
            published_at=made,
            steps=[],
            metrics=metrics or {},
            parameters={},
            environment={},
            comments=[],
            gate=gate,
        )

    return staged, manifest_for


def stage_fitted(
    store: Any,
    *,
    metrics: dict[str, Any] | None = None,
    at: str | None = None,
    gate: Any = None,
) -> Any:
    """Stage one more version of model ``churn`` (complete, not yet live); its manifest."""
    staged, manifest_for = _churn_version(store, "run{version}", metrics, at, gate)
    return store.stage(staged, manifest_for, lambda manifest: "card")


def publish_fitted(
    store: Any, *, run_id: str = "run", metrics: dict[str, Any] | None = None, card: str = "card"
) -> None:
    """Publish a version of model ``churn`` holding one small asset, with a minimal manifest.

    ``run_id`` may name ``{version}``.
    """
    staged, manifest_for = _churn_version(store, run_id, metrics, None, None)
    store.publish(staged, manifest_for, lambda manifest: card)
