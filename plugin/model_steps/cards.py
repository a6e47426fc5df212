"""Human-readable summaries of a model: DAG documentation and the model card of each version.

Kept apart from the plan so the wording can evolve (and grow into full model cards) without
touching how tasks are laid out. Output is deterministic: no times, no randomness, so a DAG
re-parsed from an unchanged file serialises identically.
"""

from __future__ import annotations

from collections.abc import Sequence

from model_steps.errors import Problem, format_problem
from model_steps.manifest import Manifest
from model_steps.spec import ModelSpec, Step

__all__ = ["dag_doc", "invalid_doc", "model_card"]


def dag_doc(spec: ModelSpec, source: str, purpose: str) -> str:
    """Markdown for a model DAG's ``doc_md``: what it is, its steps, its card summary, history."""
    sections = [
        f"# {spec.name} — {purpose}",
        spec.description.strip(),
        _facts(spec),
        "## Steps\n\n| # | id | name | runs | assets |\n|---|---|---|---|---|\n"
        + "\n".join(_step_row(index, step) for index, step in enumerate(spec.steps, 1)),
        _section("Intended use", spec.intended_use),
        _section("Limitations", spec.limitations),
        _comments(spec),
        f"_Defined in `{source}`._",
    ]
    return "\n\n".join(s for s in sections if s)


def _facts(spec: ModelSpec) -> str:
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


def _step_row(index: int, step: Step) -> str:
    params = step.parameters
    runs = params.callable or f"{params.package}.{params.class_}"
    assets = step.assets_identifier or "—"
    return f"| {index} | `{step.id}` | {step.title} | `{runs}` | {assets} |"


def _section(title: str, text: str | None) -> str:
    return f"## {title}\n\n{text.strip()}" if text and text.strip() else ""


def _comments(spec: ModelSpec) -> str:
    if not spec.comments:
        return ""
    lines = [f"- {c.date.isoformat()} — {c.author}: {c.text.strip()}" for c in spec.comments]
    return "## History\n\n" + "\n".join(lines)


def invalid_doc(source: str, problems: Sequence[Problem]) -> str:
    """Markdown listing every problem of a broken definition, as ``model-steps validate`` does."""
    listing = "\n".join(format_problem(p) for p in problems)
    return (
        f"# Invalid model definition `{source}`\n\n"
        "This placeholder stands in for the model's DAGs until the file is fixed; the other "
        "models are unaffected. Run `model-steps validate` to check a fix before saving.\n\n"
        f"```\n{listing}\n```"
    )


def model_card(spec: ModelSpec, manifest: Manifest) -> str:
    """``MODEL_CARD.md`` of a published version: what the reviewer signs off."""
    sections = [
        f"# Model card: {spec.name}, version {manifest.version}",
        spec.description.strip(),
        _facts(spec),
        f"- **Published**: {manifest.published_at} by run `{manifest.run_id}` of "
        f"`{manifest.dag_id}`\n- **Spec hash**: `{manifest.spec_hash}`",
        _section("Intended use", spec.intended_use),
        _section("Limitations", spec.limitations),
        _metrics_table(manifest),
        "## Steps\n\n| # | id | runs | asset | sha256 |\n|---|---|---|---|---|\n"
        + "\n".join(_asset_row(i, step, manifest) for i, step in enumerate(spec.steps, 1)),
        _section("Data", str(spec.metadata.get("dataset") or "")),
        "## Environment\n\n" + ", ".join(f"{k} {v}" for k, v in manifest.environment.items()),
        _comments(spec),
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
