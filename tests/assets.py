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


def publish_fitted(
    store: Any, *, run_id: str = "run", metrics: dict[str, Any] | None = None, card: str = "card"
) -> None:
    """Publish a version of model ``churn`` holding one small asset, with a minimal manifest."""
    from model_steps.store.manifest import Manifest
    from model_steps.store.model_store import StagedAsset, utc_now

    url = store.scratch_url("run", "model.joblib")
    size, sha256 = store.write_bytes(url, b"fitted")
    staged = [StagedAsset("fit", url, size, sha256, "joblib", "model.joblib", store.url())]

    def manifest_for(version: int, assets: object) -> Manifest:
        return Manifest(
            model="churn",
            version=version,
            definition_version="1",
            spec_hash="0" * 64,
            dag_id="churn__train",
            run_id=run_id.format(version=version),
            created_at=utc_now(),
            published_at=utc_now(),
            steps=[],
            metrics=metrics or {},
            parameters={},
            environment={},
            comments=[],
        )

    store.publish(staged, manifest_for, lambda manifest: card)
