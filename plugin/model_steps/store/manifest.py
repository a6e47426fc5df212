"""What a version promises its readers: the pointer, the manifest and the records beside them.

These documents are the contract between training (which writes them) and real-time handlers
(which trust nothing else): every asset is named by its full URL with size and sha256, so a
reader never recomputes a path and can refuse a corrupt file. Parsing is strict, so a malformed
pointer or manifest is reported as such instead of being half-read. Beside the immutable
manifest, a version may hold a person's decision on it (approve or reject, written once) and the
evaluation records of later runs that scored it on fresh labelled data.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AssetRecord",
    "Decision",
    "EvaluationRecord",
    "FeatureReference",
    "GateRecord",
    "InferenceRecord",
    "Manifest",
    "PerformanceMetric",
    "Pointer",
    "ResourceUsage",
    "RuleResult",
    "StepRecord",
    "Timings",
    "VersionStatus",
    "published_time",
    "version_status",
]

VersionStatus = Literal["live", "published", "pending", "refused", "rejected"]
"""Where a version stands: served (``live``); fit to serve (``published``: it went live once, or
was approved); waiting for a person (``pending``); refused by the gate's rules (``refused``); or
turned down by a person (``rejected``)."""


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
    rows: dict[str, int] = {}
    """Rows of each part of the data: the training part (``train``), the held-out part
    (``test``) and, when the split refits, every row (``all``)."""
    fitted_on: Literal["train", "all"] = "train"
    """The rows the published step was fitted on: the training part (the test metrics come
    from this very fit), or every row, refitted after the test metrics were computed on the
    step fitted on the training part (``split.refit``)."""
    inputs: dict[str, str] = {}
    """The data URLs the step read in training, as rendered for this run."""
    reference: dict[str, FeatureReference] = {}
    """Each numeric feature's distribution in the training part (the first step, when the
    model's evaluation watches drift), for comparing fresh data with later."""


class FeatureReference(_Document):
    """A feature's training distribution: quantile bin edges and each bin's share of rows."""

    edges: list[float]
    proportions: list[float]


class RuleResult(_Document):
    """How one rule judged a metric, with the numbers on both sides."""

    rule: str
    metric: str
    op: Literal[">=", ">", "<=", "<"]
    candidate: float | None
    live: float | None = None
    """What ``live`` (the live version on the same test split) or ``trained`` (the version's
    own test metric) stood for, in a relative rule."""
    threshold: float | None
    passed: bool | None
    """None when the rule could not apply: a relative rule with nothing live yet."""


class GateRecord(_Document):
    """The gate's decision on a candidate, as the train run made it."""

    outcome: Literal["accepted", "refused", "pending"]
    reason: str
    """One line: the failed rules, "waiting for approval", or why it was accepted."""
    approval: Literal["automatic", "manual"] = "automatic"
    rules: list[RuleResult] = []
    live_version: int | None = None
    live_metrics: dict[str, float] = {}
    """The live version scored on this run's test split with the same metrics."""
    live_error: str | None = None
    """Why the live version could not be scored (its relative rules then did not apply)."""
    candidate_metrics: dict[str, float] = {}
    decided_at: str
    seconds: float = 0.0
    """What deciding cost (mostly scoring the live version)."""


class Timings(_Document):
    """What training and serving a version costs, for its card."""

    train_wall_seconds: float
    """From the first step's start to the candidate being staged."""
    train_cpu_seconds: float
    """CPU time of every step's task."""
    load_seconds: float | None = None
    """Loading the version's assets (verified) and building its pipeline, at staging."""
    predict_seconds_per_record: float | None = None
    """Warm-up prediction of the sample records, per record."""


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
    class_labels: list[str] = []
    """The classes the last step predicts, in its own order (classifiers only)."""
    gate: GateRecord | None = None
    """How the gate decided on this version (absent when the model has no gate)."""
    timings: Timings | None = None
    hardware: dict[str, str] = {}
    """Where it was trained: CPU, cores, memory, operating system."""

    def asset(self, step_id: str) -> AssetRecord | None:
        """The asset a step saved in this version, if it has one."""
        record = next((s for s in self.steps if s.step_id == step_id), None)
        return record.asset if record else None


def version_status(
    manifest: Manifest, decision: Decision | None, live: int | None
) -> VersionStatus:
    """Where a version stands, from its manifest's gate record and a person's decision."""
    if live == manifest.version:
        return "live"
    if decision is not None:
        return "published" if decision.action == "approved" else "rejected"
    gate = manifest.gate
    if gate is None or gate.outcome == "accepted":
        return "published"
    return "refused" if gate.outcome == "refused" else "pending"


def published_time(manifest: Manifest, decision: Decision | None) -> str | None:
    """When a version went live, or None if it never did.

    A candidate the gate passed goes live as it is staged (its manifest's ``published_at``);
    an approved one when a person approved it (the decision's time, which the pointer also
    records); a refused, waiting or rejected one never did, whatever its manifest says it was
    staged at.
    """
    if decision is not None:
        return decision.at if decision.action == "approved" else None
    if manifest.gate is None or manifest.gate.outcome == "accepted":
        return manifest.published_at
    return None


class Decision(_Document):
    """``versions/<N>/decision.json``: a person approved or rejected a waiting candidate.

    Written once (an exclusive create), so two reviewers acting at once cannot both decide.
    """

    action: Literal["approved", "rejected"]
    by: str
    at: str
    reason: str | None = None


class PerformanceMetric(_Document):
    """One metric's value (the AIND model schema's ``PerformanceMetric``)."""

    name: str
    value: float | None


class ResourceUsage(_Document):
    """What an evaluation run used."""

    wall_seconds: float
    cpu_seconds: float
    peak_memory_bytes: int


class EvaluationRecord(_Document):
    """One evaluation of a version on fresh labelled data, shaped like AIND's ``ModelEvaluation``.

    Kept under the version it scored (``versions/<N>/evaluations/``), one document per run.
    """

    process_type: Literal["Model evaluation"] = "Model evaluation"
    name: str
    """The evaluating DAG and run."""
    stage: Literal["Processing"] = "Processing"
    model: str
    version: int
    run_id: str
    start_date_time: str
    end_date_time: str
    performance: list[PerformanceMetric]
    input_path: str
    """The labelled data scored, as rendered for the run."""
    output_path: str | None = None
    """Where the evaluation's predictions were written, if anywhere."""
    row_count: int
    resources: ResourceUsage
    degraded: bool
    reasons: list[str] = []
    """Each failed rule and each drifted feature, in one line each."""
    rules: list[RuleResult] = []
    drift: dict[str, float] = {}
    """Population stability index of each watched feature against the training data."""
    drift_rows: dict[str, int] = {}
    """Fresh values each feature's index was computed on (its sample size)."""
    drift_margin: dict[str, float] = {}
    """Sampling margin added to the threshold for each judged feature."""
    skipped_checks: list[str] = []
    """Each check this evaluation could not apply to this version, one line each: drift on a
    version trained before drift was watched, a feature with too few fresh values, a rule that
    compares with a test metric the version lacks. Empty means every check ran."""
    notes: str | None = None
    """The same, as one text, in records written before ``skipped_checks`` existed."""

    def skipped(self) -> list[str]:
        """The checks skipped, from either form the record holds."""
        return self.skipped_checks or ([self.notes] if self.notes else [])

    def metric(self, name: str) -> float | None:
        """One performance metric's value."""
        return next((m.value for m in self.performance if m.name == name), None)


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
