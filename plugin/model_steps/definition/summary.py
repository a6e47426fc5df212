"""A definition described in Markdown: its key facts, its sections, its comment history.

Shared by the DAG documentation Airflow shows (built at every parse) and the model card of each
version, and kept here, beside the schema, so building DAG docs imports nothing of the store:
a task start's parse only pays for what it needs.
"""

from __future__ import annotations

from model_steps.definition.schema import ModelSpec

__all__ = ["history", "model_facts", "section"]


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
