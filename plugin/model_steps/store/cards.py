"""Model cards: the ``MODEL_CARD.md`` published with every version, for the reviewer who signs.

Output is deterministic for a given definition and manifest: no clock, no randomness. The
helpers that describe a definition (its facts, sections, history) are shared with the DAG
documentation in :mod:`model_steps.airflow.docs`.
"""

from __future__ import annotations

from model_steps.definition.schema import ModelSpec, Step
from model_steps.store.manifest import Manifest

__all__ = ["history", "model_card", "model_facts", "section"]


def model_facts(spec: ModelSpec) -> str:
    """The definition's key facts as a Markdown list (status, version, owner, schedules)."""
    facts = {
        "Status": spec.status,
        "Definition version": spec.version,
        "Domain": spec.domain,
        "Owner": spec.owner,
        "License": spec.license,
        "Train schedule": spec.schedule.train or "manual",
        "Infer schedule": (spec.schedule.infer or "manual") if spec.has_infer else None,
    }
    return "\n".join(f"- **{key}**: {value}" for key, value in facts.items() if value)


def section(title: str, text: str | None) -> str:
    """A Markdown section, or nothing when there is no text to show."""
    return f"## {title}\n\n{text.strip()}" if text and text.strip() else ""


def history(spec: ModelSpec) -> str:
    """The dated comment history as a Markdown section (empty without comments)."""
    if not spec.comments:
        return ""
    lines = [f"- {c.date.isoformat()} — {c.author}: {c.text.strip()}" for c in spec.comments]
    return "## History\n\n" + "\n".join(lines)


def model_card(spec: ModelSpec, manifest: Manifest) -> str:
    """``MODEL_CARD.md`` of a published version: what the reviewer signs off."""
    sections = [
        f"# Model card: {spec.name}, version {manifest.version}",
        spec.description.strip(),
        model_facts(spec),
        f"- **Published**: {manifest.published_at} by run `{manifest.run_id}` of "
        f"`{manifest.dag_id}`\n- **Spec hash**: `{manifest.spec_hash}`",
        section("Intended use", spec.intended_use),
        section("Limitations", spec.limitations),
        _metrics_table(manifest),
        "## Steps\n\n| # | id | runs | asset | sha256 |\n|---|---|---|---|---|\n"
        + "\n".join(_asset_row(i, step, manifest) for i, step in enumerate(spec.steps, 1)),
        section("Data", str(spec.metadata.get("dataset") or "")),
        "## Environment\n\n" + ", ".join(f"{k} {v}" for k, v in manifest.environment.items()),
        history(spec),
    ]
    return "\n\n".join(s for s in sections if s) + "\n"


def _metrics_table(manifest: Manifest) -> str:
    names = sorted({name for values in manifest.metrics.values() for name in values})
    if not names:
        return ""
    splits = sorted(manifest.metrics)
    header = "| metric | " + " | ".join(splits) + " |\n|---|" + "---|" * len(splits)
    rows = [
        f"| {name} | "
        + " | ".join(f"{manifest.metrics[s].get(name, float('nan')):.4f}" for s in splits)
        + " |"
        for name in names
    ]
    return "## Metrics\n\n" + "\n".join([header, *rows])


def _asset_row(index: int, step: Step, manifest: Manifest) -> str:
    record = manifest.asset(step.id)
    params = step.parameters
    runs = params.callable or f"{params.package}.{params.class_}"
    if record is None:
        return f"| {index} | `{step.id}` | `{runs}` | — | — |"
    return f"| {index} | `{step.id}` | `{runs}` | {record.url} | `{record.sha256[:16]}…` |"
