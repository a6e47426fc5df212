"""The Models API's response models: the contract the Models page and API clients build on.

Kept apart from the routes (``api``) so the shapes can be read, imported and documented without
Airflow: the routes need Airflow's API server, the shapes do not.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from model_steps.store.manifest import Decision, GateRecord, VersionStatus


class ErrorBody(BaseModel):
    """Every error: a message that says what went wrong."""

    detail: str


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"description": text, "model": ErrorBody}
    for code, text in (
        (401, "Not authenticated"),
        (403, "Invalid token, or no permission to change the model's DAGs"),
        (404, "Unknown model or version"),
        (503, "The model's store is unavailable"),
    )
}


DagKind = Literal["train", "infer", "evaluate"]
"""What a model's DAG does (:func:`~model_steps.airflow.plan.dag_kinds`)."""


class LastRun(BaseModel):
    """The newest run of one DAG."""

    run_id: str
    state: str | None
    run_after: str | None
    start_date: str | None
    end_date: str | None


class DagState(BaseModel):
    """One of the model's DAGs as Airflow sees it right now."""

    dag_id: str
    kind: DagKind
    paused: bool | None = Field(description="null when Airflow has not parsed the DAG yet")
    url: str = Field(description="The DAG's page in the Airflow UI, as a path under its base URL")
    last_run: LastRun | None


class ScheduleText(BaseModel):
    """The schedules as written: cron, preset, interval, "on new version", or null (manual)."""

    train: str | None
    infer: str | None
    evaluate: str | None = None


ScheduleStatus = Literal["active", "paused", "partly paused", "not in Airflow yet"]


class ModelSummary(BaseModel):
    """One model in the listing."""

    name: str
    description: str
    tags: list[str]
    domain: str | None
    status: Literal["deployed", "undeployed"]
    definition_version: str | None
    file: str = Field(description="Path relative to the folder (DAG bundle) it was read from")
    bundle: str | None = Field(
        default=None,
        description="The DAG bundle Airflow read it from; null for a file of this server's "
        "own DAGs folder",
    )
    schedule: ScheduleText
    schedule_status: ScheduleStatus
    dags: list[DagState] = Field(
        description="Train first, then infer and evaluate if the model defines them"
    )
    live_version: int | None
    published_at: str | None
    versions: int = Field(description="How many complete versions the store holds")
    metrics: dict[str, dict[str, float]] = Field(description="The live version's, by split")
    store_error: str | None = Field(description="Why this model's store could not be read")
    definition_problems: list[ProblemOut] = Field(
        default=[],
        description="The definition file's problems while it is broken: the model shows (and "
        "Airflow runs) its last good definition until the file is fixed; empty when it loads",
    )


class ProblemOut(BaseModel):
    """One problem of a broken definition file, located."""

    line: int | None
    column: int | None
    field: str | None
    message: str
    text: str = Field(description='The whole formatted "path:line:col: field: message"')


class InvalidFile(BaseModel):
    """A definition file that does not load, and the placeholder DAG showing it in Airflow."""

    file: str
    bundle: str | None = None
    dag_id: str
    problems: list[ProblemOut]


class ModelList(BaseModel):
    """Every model in the DAGs folder and every file that failed to load."""

    models: list[ModelSummary]
    invalid: list[InvalidFile]
    parse_warnings: list[str] = []
    """DAG files whose last parse used more than half of Airflow's import timeout."""


class CommentOut(BaseModel):
    """One entry of a model's change history."""

    date: str
    author: str
    text: str


class StepOut(BaseModel):
    """One ordered step of a model."""

    id: str
    name: str
    description: str


class ModelDetail(ModelSummary):
    """One model with its documentation, parameters, steps and the live version's card."""

    comments: list[CommentOut]
    intended_use: str | None
    limitations: str | None
    license: str | None
    metadata: dict[str, Any]
    parameters: dict[str, Any]
    steps: list[StepOut]
    card: str | None = Field(description="MODEL_CARD.md of the live version")


class EvaluationSummary(BaseModel):
    """One evaluation of a version on fresh labelled data."""

    run_id: str
    evaluated_at: str = Field(description="When the evaluation ended")
    metrics: dict[str, float | None]
    row_count: int
    degraded: bool
    reasons: list[str]
    drift: dict[str, float]
    skipped_checks: list[str] = Field(
        default=[],
        description="Checks this evaluation could not apply to the version, one line each "
        "(e.g. drift watched only after the version was trained); empty when every check ran",
    )


class VersionSummary(BaseModel):
    """One version: published, or a candidate the gate refused or that waits for approval."""

    version: int
    published_at: str | None
    """When the version went live (its approval, for one a person approved); None for a version
    refused, rejected or waiting, which never did."""
    run_id: str
    definition_version: str | None
    spec_hash: str
    metrics: dict[str, dict[str, float]]
    comments: list[dict[str, str]]
    is_current: bool
    status: VersionStatus
    reason: str | None = Field(description="Why it stands there: the gate's or a person's words")
    gate: GateRecord | None = Field(description="The gate's decision, with every rule's numbers")
    decision: Decision | None = Field(description="A person's approval or rejection")
    evaluations: list[EvaluationSummary] = Field(description="Oldest first")


class VersionList(BaseModel):
    """A model's versions, newest first."""

    model: str
    current: int | None
    versions: list[VersionSummary]


class RollbackRequest(BaseModel):
    """Which complete version handlers should serve again."""

    version: int = Field(ge=1)


class DecisionRequest(BaseModel):
    """Why a person approves or rejects a candidate (a rejection needs a reason)."""

    reason: str | None = Field(None, max_length=2000)


class DecisionResult(BaseModel):
    """A recorded decision and where the pointer stands after it."""

    model: str
    version: int
    action: Literal["approved", "rejected"]
    by: str
    live_version: int | None
    announced: bool = Field(
        description="Whether Airflow got the model's Asset event (approvals that went live)"
    )


class VersionCard(BaseModel):
    """One version's MODEL_CARD.md."""

    model: str
    version: int
    card: str


class RollbackResult(BaseModel):
    """Where the pointer moved."""

    model: str
    version: int
    previous: int | None


class PauseResult(BaseModel):
    """Both of the model's DAGs after a pause or resume."""

    model: str
    dags: list[DagState]


class StepProgress(BaseModel):
    """One step of a running infer run: partitions and rows done, of the totals."""

    step: str
    partitions_done: int
    partitions: int
    rows_done: int
    rows_total: int | None = Field(
        description="None until known: a csv or JSON-lines table's first step has not read it all"
    )


class RunProgress(BaseModel):
    """A running infer run and how far each of its steps is."""

    run_id: str
    steps: list[StepProgress]


class InferProgress(BaseModel):
    """The model's running infer runs (oldest first), with their progress from the store."""

    runs: list[RunProgress]
