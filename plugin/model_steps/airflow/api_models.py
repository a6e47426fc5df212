"""The Models API's response models: the contract the Models page and API clients build on.

Kept apart from the routes (``api``) so the shapes can be read, imported and documented without
Airflow: the routes need Airflow's API server, the shapes do not.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
)

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


class FailedTask(BaseModel):
    """A task that failed in a run: where its log is, and the first line of why."""

    task_id: str
    map_index: int | None = Field(description="Which instance of a mapped task; null otherwise")
    reason: str | None = Field(description="The failure's first line, when the task left one")
    url: str = Field(description="The task's log in Airflow's UI, a path under its base URL")


class LastRun(BaseModel):
    """The newest run of one DAG."""

    run_id: str
    state: str | None
    run_after: str | None
    start_date: str | None
    end_date: str | None
    url: str = Field(description="The run in Airflow's UI (its grid), a path under its base URL")
    failed_tasks: list[FailedTask] = Field(
        default_factory=list, description="For a failed run: its failed tasks, with reasons"
    )
    task_states: dict[str, int] = Field(
        default_factory=dict,
        description="For a running run: how many of its task instances are in each state",
    )


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
    url: str = Field(description="The evaluation's run in Airflow's UI")


class VersionSummary(BaseModel):
    """One version: published, or a candidate the gate refused or that waits for approval."""

    version: int
    published_at: str | None
    """When the version went live (its approval, for one a person approved); None for a version
    refused, rejected or waiting, which never did."""
    run_id: str
    run_url: str = Field(description="The training run in Airflow's UI (its grid and task logs)")
    definition_version: str | None
    spec_hash: str
    parameters: dict[str, Any] = Field(
        description="The parameters the version was trained with (values named like secrets masked)"
    )
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


REASON_MAX = 2000
"""The longest reason a change records: a paragraph, not a document."""


def _plain_text(value: str) -> str:
    """Refuse control and format characters: a reason is read in Airflow's audit log as text."""
    hidden = sorted(
        {f"U+{ord(c):04X}" for c in value if unicodedata.category(c)[0] == "C" and c not in "\n\t"}
    )
    if hidden:
        raise ValueError(f"must be plain text, without control characters ({', '.join(hidden)})")
    return value


Reason = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=REASON_MAX),
    AfterValidator(_plain_text),
]
"""Why a person made a change: recorded with it and in Airflow's audit log."""


class ChangeRequest(BaseModel):
    """A change with the reason the person gives for it (optional unless the route says)."""

    model_config = ConfigDict(extra="forbid")

    reason: Reason | None = None


class RollbackRequest(ChangeRequest):
    """Which complete version handlers should serve again, and whether to infer with it."""

    version: int = Field(ge=1)
    infer: bool = Field(
        False,
        description="Also start the model's infer DAG now: a rollback sends no new-version "
        "event, so inference scheduled on new versions does not run by itself",
    )


class DecisionRequest(ChangeRequest):
    """Why a person approves or rejects a candidate (a rejection needs a reason)."""


ParamScalar = Annotated[str, StringConstraints(max_length=1000)] | StrictBool | StrictInt | float
ParamValue = ParamScalar | Annotated[list[ParamScalar], Field(max_length=100)] | None
"""A parameter's value as a trigger form sends it: JSON scalars or a short list of them."""


class TrainRequest(ChangeRequest):
    """Start a training run now with some of the model's parameters set.

    Names must be the model's parameters and values must pass their rules (type, bounds,
    choices): both are checked before a run is created, so a bad value is refused with a
    message instead of failing the run.
    """

    params: dict[Annotated[str, StringConstraints(max_length=200)], ParamValue] = Field(
        default_factory=dict, max_length=100, description="Parameter values by name"
    )


class TriggeredRun(BaseModel):
    """A DAG run this API started, with where Airflow shows it."""

    dag_id: str
    run_id: str
    url: str = Field(description="The run in Airflow's UI (its grid and task logs)")


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
    infer_run: TriggeredRun | None = Field(
        None, description="The infer run started with the rollback, when asked for"
    )


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
