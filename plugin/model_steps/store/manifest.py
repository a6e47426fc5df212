"""What a published version promises its readers: the pointer and the manifest.

These documents are the contract between training (which writes them) and real-time handlers
(which trust nothing else): every asset is named by its full URL with size and sha256, so a
reader never recomputes a path and can refuse a corrupt file. Parsing is strict, so a malformed
pointer or manifest is reported as such instead of being half-read.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["AssetRecord", "InferenceRecord", "Manifest", "Pointer", "StepRecord"]


class _Document(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Pointer(_Document):
    """``current.json``: which complete version handlers serve. Moved last, atomically."""

    version: int = Field(ge=1)
    manifest: str
    published_at: str
    rolled_back_from: int | None = None


class AssetRecord(_Document):
    """One fitted object of one step."""

    url: str
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    serializer: str


class StepRecord(_Document):
    """What one training step did and what it cost."""

    step_id: str
    started_at: str
    ended_at: str
    rows_in: int
    rows_out: int
    columns_in: list[str]
    fit_seconds: float
    cpu_seconds: float
    peak_memory_bytes: int
    asset: AssetRecord | None = None
    metrics: dict[str, dict[str, float]] = {}
    dtypes_in: dict[str, str] = {}
    """pandas dtype of each input column in training, so a handler can refuse or convert
    records of the wrong type before they reach the model (empty in older manifests)."""
    definition: dict[str, Any] | None = None
    """The step as it was trained (its ``init`` rendered), so a handler rebuilds the pipeline
    of exactly this version without the YAML file (absent in older manifests)."""


class Manifest(_Document):
    """``versions/<N>/manifest.json``: everything needed to load, verify and audit version N."""

    model: str
    version: int = Field(ge=1)
    definition_version: str | None
    spec_hash: str
    dag_id: str
    run_id: str
    created_at: str
    published_at: str
    steps: list[StepRecord]
    metrics: dict[str, dict[str, float]]
    parameters: dict[str, Any]
    environment: dict[str, str]
    comments: list[dict[str, str]]
    sample_records: list[dict[str, Any]] = []

    def asset(self, step_id: str) -> AssetRecord | None:
        """The asset a step saved in this version, if it has one."""
        record = next((s for s in self.steps if s.step_id == step_id), None)
        return record.asset if record else None


class InferenceRecord(_Document):
    """``inferences/<run id>.json``: which version one infer run used and what it wrote.

    The pointer may move while a run infers, and an Asset-triggered run infers with the version
    of its event, so the version behind a prediction file is recorded, not inferred from dates.
    """

    model: str
    version: int = Field(ge=1)
    manifest: str
    dag_id: str
    run_id: str
    output: str
    rows: int = Field(ge=0)
    recorded_at: str
