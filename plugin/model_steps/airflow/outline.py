"""What the Models API needs of a definition, carried in the DAGs Airflow stores.

Airflow 3's API server reads DAGs from the metadata DB, never from DAG files, and the official
Helm chart gives it none (DAG bundles and git-sync reach only the DAG processor, scheduler,
workers and triggerer). So the DAG builder embeds an outline of each definition in the
serialized DAG: its facts, documentation, store location and steps for a model, the located
problems for a broken file. The Models API reads it back from the DB (:mod:`.db_catalog`).

The outline holds no code and no data: no class, no init arguments, no data URLs, and values
under names Airflow treats as sensitive are masked as in its own API. It rides in the
``doc_json`` of the DAG's first task, a documentation field Airflow serializes as written (no
length cap, unlike template fields) and its UI does not show; the DAG's ``doc_md`` stays the
page users read.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from model_steps.airflow.plan import dag_kinds
from model_steps.definition.schema import ModelSpec
from model_steps.errors import Problem

__all__ = [
    "MARKER",
    "InvalidOutline",
    "ModelOutline",
    "ProblemOutline",
    "StepOutline",
    "invalid_outline",
    "model_outline",
    "outline_json",
    "read_outline",
]

MARKER = "model_steps_outline"
"""The key of the outline in a task's ``doc_json`` document."""
FORMAT = 1


class _Outline(BaseModel):
    # Unknown keys are ignored: an API server one release apart still reads what it knows.
    model_config = ConfigDict(frozen=True, extra="ignore")


class StepOutline(_Outline):
    """A step as the Models page lists it, and its own asset root (the store owns it too)."""

    id: str
    name: str
    description: str = ""
    assets_root: str | None = None


class AssetsOutline(_Outline):
    """Where the model's store is: root (None: the deployment's), directory, connection."""

    root: str | None = None
    directory: str
    conn_id: str | None = None


class ScheduleOutline(_Outline):
    """The schedules as written."""

    train: str | None = None
    infer: str | None = None
    evaluate: str | None = None


class CommentOutline(_Outline):
    """One dated entry of the definition's history."""

    date: str
    author: str | None = None
    text: str


class ModelOutline(_Outline):
    """A valid definition as the Models API shows and manages it."""

    kind: Literal["model"] = "model"
    name: str
    file: str
    """The definition file, relative to the folder it was read from (the bundle's)."""
    dags: dict[str, str]
    """The model's DAG ids, each with what it does (train, infer, evaluate), train first."""
    description: str = ""
    tags: tuple[str, ...] = ()
    domain: str | None = None
    status: Literal["deployed", "undeployed"] = "undeployed"
    version: str | None = None
    owner: str | None = None
    assets: AssetsOutline
    steps: tuple[StepOutline, ...] = ()
    schedule: ScheduleOutline = ScheduleOutline()
    comments: tuple[CommentOutline, ...] = ()
    intended_use: str | None = None
    limitations: str | None = None
    license: str | None = None
    metadata: dict[str, Any] = {}
    parameters: dict[str, dict[str, Any]] = {}
    problems: tuple[ProblemOutline, ...] = ()
    """The file's problems while it is broken: the rest is its last good definition."""


class ProblemOutline(_Outline):
    """One located problem of a broken file."""

    line: int = 0
    column: int = 0
    field: str = ""
    code: str = ""
    message: str

    def problem(self, file: str) -> Problem:
        """The problem as the loader reported it, placed in ``file``."""
        return Problem(file, self.line, self.column, self.field, self.code, self.message)


class InvalidOutline(_Outline):
    """A definition file that does not load: its problems, and its model's name if known."""

    kind: Literal["invalid"] = "invalid"
    file: str
    name: str | None = None
    problems: tuple[ProblemOutline, ...] = ()


def _masked(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with whatever sits under a sensitive name masked, as Airflow's API masks it."""
    from airflow._shared.secrets_masker import redact

    masked = redact(values)
    return masked if isinstance(masked, dict) else {}


def model_outline(spec: ModelSpec, file: str, problems: tuple[Problem, ...] = ()) -> ModelOutline:
    """The outline of a valid definition read from ``file`` (relative to its folder).

    ``problems``: the file's own while it is broken and ``spec`` is its last good definition.
    """
    return ModelOutline(
        name=spec.name,
        file=file,
        dags=dag_kinds(spec),
        description=spec.description,
        tags=tuple(spec.tags),
        domain=spec.domain,
        status=spec.status,
        version=spec.version,
        owner=spec.owner,
        assets=AssetsOutline(
            root=spec.assets.root, directory=spec.directory, conn_id=spec.assets.conn_id
        ),
        steps=tuple(
            StepOutline(
                id=s.id,
                name=s.name or s.id,
                description=s.description,
                assets_root=s.assets_root,
            )
            for s in spec.steps
        ),
        schedule=ScheduleOutline(
            train=spec.schedule.train,
            infer=spec.schedule.infer,
            evaluate=spec.evaluation.schedule if spec.evaluation else None,
        ),
        comments=tuple(
            CommentOutline(date=c.date.isoformat(), author=c.author, text=c.text)
            for c in spec.comments
        ),
        intended_use=spec.intended_use,
        limitations=spec.limitations,
        license=spec.license,
        metadata=_masked(dict(spec.metadata)),
        parameters=_masked(
            {
                name: p.model_dump(mode="json", exclude_none=True)
                for name, p in spec.parameters.items()
            }
        ),
        problems=_problems(problems),
    )


def invalid_outline(file: str, name: str | None, problems: tuple[Problem, ...]) -> InvalidOutline:
    """The outline of a broken definition file (``file`` relative to its folder)."""
    return InvalidOutline(file=file, name=name, problems=_problems(problems))


def _problems(problems: tuple[Problem, ...]) -> tuple[ProblemOutline, ...]:
    return tuple(
        ProblemOutline(line=p.line, column=p.column, field=p.field, code=p.code, message=p.message)
        for p in problems
    )


def outline_json(outline: ModelOutline | InvalidOutline) -> str:
    """The ``doc_json`` document that carries ``outline``."""
    return json.dumps({MARKER: {"format": FORMAT, **outline.model_dump(mode="json")}})


def read_outline(doc_json: Any) -> ModelOutline | InvalidOutline | None:
    """The outline a task's ``doc_json`` carries; None for any other document, or a foreign one."""
    if not isinstance(doc_json, str) or MARKER not in doc_json:
        return None
    try:
        data = json.loads(doc_json)[MARKER]
        if data.get("kind") == "invalid":
            return InvalidOutline.model_validate(data)
        return ModelOutline.model_validate(data)
    except (ValueError, TypeError, KeyError, AttributeError, ValidationError):
        return None
