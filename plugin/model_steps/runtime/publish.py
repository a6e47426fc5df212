"""Publishing a run: its staged assets become the model's next version, the pointer last.

The manifest and the model card are masked (:mod:`model_steps.runtime.secrets`) before they
are written: a secret Airflow knows never lands in the store in plain text.
"""

from __future__ import annotations

import json
import logging
import platform
from collections.abc import Mapping
from importlib import metadata
from typing import TYPE_CHECKING, Any

from model_steps.definition.schema import spec_hash
from model_steps.runtime.context import Environment, RunInfo
from model_steps.runtime.scratch import Scratch
from model_steps.runtime.secrets import masked
from model_steps.store.cards import model_card
from model_steps.store.manifest import AssetRecord, Manifest, StepRecord
from model_steps.store.model_store import CLAIM_GRACE_SECONDS, StagedAsset, utc_now

if TYPE_CHECKING:
    from model_steps.definition.schema import ModelSpec

__all__ = ["LIBRARIES", "claim_grace", "publish"]

log = logging.getLogger(__name__)

LIBRARIES = (
    "airflow-model-steps",
    "apache-airflow",
    "scikit-learn",
    "pandas",
    "numpy",
    "scipy",
    "joblib",
    "skops",
    "pyarrow",
    "fsspec",
    "s3fs",
    "xgboost",
    "lightgbm",
)
"""Distributions whose versions each manifest records (those installed)."""


def publish(spec: ModelSpec, run: RunInfo, env: Environment) -> dict[str, Any]:
    """Publish the run's staged assets as the model's next version (the pointer moves last)."""
    scratch = Scratch(env, run)
    entries = [scratch.record(step.id) for step in spec.steps]  # each step's successful try
    staged = [StagedAsset(**entry["staged"]) for entry in entries if entry["staged"]]
    records = [StepRecord.model_validate(entry["record"]) for entry in entries]

    def manifest_for(version: int, assets: Mapping[str, AssetRecord]) -> Manifest:
        manifest = Manifest(
            model=spec.name,
            version=version,
            definition_version=spec.version,
            spec_hash=spec_hash(spec),
            dag_id=run.dag_id,
            run_id=run.run_id,
            created_at=records[0].started_at,
            published_at=utc_now(),
            steps=[r.model_copy(update={"asset": assets.get(r.step_id)}) for r in records],
            metrics=records[-1].metrics,
            parameters=json.loads(json.dumps(dict(run.params), default=str)),
            environment=_versions(),
            comments=[c.model_dump(mode="json") for c in spec.comments],
            sample_records=entries[0]["samples"],
        )
        return Manifest.model_validate(masked(manifest.model_dump(mode="json"), env.mask))

    pointer = env.store.publish(
        staged,
        manifest_for,
        lambda manifest: env.mask(model_card(spec, manifest)),
        claim_grace(spec),
    )
    scratch.clean()
    pruned = (
        env.store.prune(spec.assets.keep_versions, spec.assets.pinned_versions)
        if (spec.assets.keep_versions)
        else []
    )
    log.info(
        "published %s version %d (%s); pruned %s",
        spec.name,
        pointer.version,
        pointer.manifest,
        pruned or "nothing",
    )
    return {
        "version": pointer.version,
        "manifest": pointer.manifest,
        "metrics": records[-1].metrics,
        "pruned": pruned,
    }


def claim_grace(spec: ModelSpec) -> float:
    """Seconds before a claim without a manifest counts as abandoned, for this model.

    Airflow stops a task at its ``execution_timeout``, even a try whose worker died, so a
    grace that long plus :data:`CLAIM_GRACE_SECONDS` outlives every try of the publish.
    """
    timeout = spec.airflow.task_defaults.execution_timeout
    return CLAIM_GRACE_SECONDS + (timeout.total_seconds() if timeout else 0.0)


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found
