"""The API's answers assembled from a definition's outline, Airflow's state and the store."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from airflow._shared.secrets_masker import redact

from model_steps.airflow.api.catalog import Listing
from model_steps.airflow.api.dag_state import run_url, schedule_status_of
from model_steps.airflow.api.store_facts import Live
from model_steps.airflow.api_models import (
    CommentOut,
    DagState,
    EvaluationSummary,
    InvalidFile,
    ModelDetail,
    ModelSummary,
    ProblemOut,
    ScheduleText,
    StepOut,
    VersionSummary,
)
from model_steps.airflow.outline import ModelOutline, ProblemOutline
from model_steps.airflow.plan import EVALUATE_SUFFIX, invalid_dag_id
from model_steps.errors import format_problem
from model_steps.store.manifest import (
    Decision,
    EvaluationRecord,
    Manifest,
    published_time,
    version_status,
)
from model_steps.store.model_store import ModelStore


def _schedule_text(value: str | None) -> str | None:
    return value.strip() if value is not None else None


def model_summary(
    listed: tuple[ModelOutline, str | None], dags: dict[str, DagState], live: Live
) -> ModelSummary:
    """A model as the listing shows it: outline, bundle, DAG states and store facts."""
    model, bundle = listed
    states = [dags[dag_id] for dag_id in model.dags]
    return ModelSummary(
        name=model.name,
        description=model.description,
        tags=list(model.tags),
        domain=model.domain,
        status=model.status,
        definition_version=model.version,
        file=model.file,
        bundle=bundle,
        schedule=ScheduleText(
            train=_schedule_text(model.schedule.train),
            infer=_schedule_text(model.schedule.infer),
            evaluate=_schedule_text(model.schedule.evaluate),
        ),
        schedule_status=schedule_status_of(states),
        dags=states,
        live_version=live.version,
        published_at=live.published_at,
        versions=live.versions,
        metrics=live.metrics or {},
        store_error=live.error,
        definition_problems=problems_out(model.file, model.problems),
    )


def invalid_files(catalog: Listing) -> list[InvalidFile]:
    """Every broken definition file with its problems, each located and worded."""
    return [
        InvalidFile(
            file=broken.file,
            bundle=bundle,
            dag_id=invalid_dag_id(broken.file),
            problems=problems_out(broken.file, broken.problems),
        )
        for broken, bundle in catalog.invalid
    ]


def problems_out(file: str, outlined: Iterable[ProblemOutline]) -> list[ProblemOut]:
    """A file's problems as the API words them, each located in ``file``."""
    problems = [p.problem(file) for p in outlined]
    return [
        ProblemOut(
            line=p.line or None,
            column=p.column or None,
            field=p.field or None,
            message=p.message,
            text=format_problem(p),
        )
        for p in problems
    ]


def model_detail(model: ModelOutline, summary: ModelSummary, card: str | None) -> ModelDetail:
    """The summary with the outline's documentation, parameters, steps and the card."""
    return ModelDetail(
        **dict(summary),
        comments=[CommentOut(date=c.date, author=c.author, text=c.text) for c in model.comments],
        intended_use=model.intended_use,
        limitations=model.limitations,
        license=model.license,
        metadata=dict(model.metadata),
        parameters=dict(model.parameters),
        steps=[StepOut(id=s.id, name=s.name, description=s.description) for s in model.steps],
        card=card,
    )


def version_summary(store: ModelStore, version: int, current: int | None) -> VersionSummary:
    """One version's row: manifest, decision, status and evaluations."""
    manifest = store.manifest(version)
    decision = store.decision(version)
    status = version_status(manifest, decision, current)
    return VersionSummary(
        version=manifest.version,
        published_at=published_time(manifest, decision),
        run_id=manifest.run_id,
        run_url=run_url(manifest.dag_id, manifest.run_id),
        definition_version=manifest.definition_version,
        spec_hash=manifest.spec_hash,
        parameters=cast(dict[str, Any], redact(manifest.parameters)),
        metrics=manifest.metrics,
        comments=manifest.comments,
        is_current=manifest.version == current,
        status=status,
        reason=_reason(manifest, decision),
        gate=manifest.gate,
        decision=decision,
        evaluations=[
            _evaluation_summary(e, manifest.model + EVALUATE_SUFFIX)
            for e in store.evaluations(version)
        ],
    )


def _reason(manifest: Manifest, decision: Decision | None) -> str | None:
    if decision is not None:
        return f"{decision.action} by {decision.by}" + (
            f": {decision.reason}" if decision.reason else ""
        )
    return manifest.gate.reason if manifest.gate is not None else None


def _evaluation_summary(record: EvaluationRecord, dag_id: str) -> EvaluationSummary:
    return EvaluationSummary(
        run_id=record.run_id,
        evaluated_at=record.end_date_time,
        metrics={m.name: m.value for m in record.performance},
        row_count=record.row_count,
        degraded=record.degraded,
        reasons=record.reasons,
        drift=record.drift,
        skipped_checks=record.skipped(),
        url=run_url(dag_id, record.run_id),
    )


def redacted(manifest: Manifest) -> Manifest:
    """The manifest with values under sensitive names masked, as Airflow's API masks them.

    A version records each step's rendered init and the run's parameters; a key named like a
    secret (``api_key``, ``password``, ``token``...) must not reach every viewer.
    """
    return Manifest.model_validate(redact(manifest.model_dump(mode="json")))
