"""DAG documentation: what Airflow shows about a model's DAGs and a broken file's placeholder.

Output is deterministic: no times, no randomness, so a DAG re-parsed from an unchanged file
serialises identically.
"""

from __future__ import annotations

from collections.abc import Sequence

from model_steps.definition.schema import ModelSpec, Step
from model_steps.definition.summary import history, model_facts, section
from model_steps.errors import Problem, format_problem

__all__ = ["dag_doc", "invalid_doc"]


def dag_doc(spec: ModelSpec, source: str, purpose: str) -> str:
    """Markdown for a model DAG's ``doc_md``: what it is, its steps, its card summary, history."""
    sections = [
        f"# {spec.name} — {purpose}",
        spec.description.strip(),
        model_facts(spec),
        "## Steps\n\n| # | id | name | runs | assets |\n|---|---|---|---|---|\n"
        + "\n".join(_step_row(index, step) for index, step in enumerate(spec.steps, 1)),
        section("Intended use", spec.intended_use),
        section("Limitations", spec.limitations),
        history(spec),
        f"_Defined in `{source}`._",
    ]
    return "\n\n".join(s for s in sections if s)


def _step_row(index: int, step: Step) -> str:
    params = step.parameters
    runs = params.callable or f"{params.package}.{params.class_}"
    assets = step.assets_identifier or "—"
    return f"| {index} | `{step.id}` | {step.title} | `{runs}` | {assets} |"


def last_good_note(source: str, problems: Sequence[Problem]) -> str:
    """Markdown heading a model's DAG documentation while its file is broken."""
    listing = "\n".join(format_problem(p) for p in problems)
    return (
        f"> **`{source}` is broken**: this DAG runs the model's last good definition, on its "
        "schedule, until the file is fixed. Run `model-steps validate` to check a fix.\n\n"
        f"```\n{listing}\n```\n\n"
    )


def invalid_doc(source: str, problems: Sequence[Problem]) -> str:
    """Markdown listing every problem of a broken definition, as ``model-steps validate`` does."""
    listing = "\n".join(format_problem(p) for p in problems)
    return (
        f"# Invalid model definition `{source}`\n\n"
        "This placeholder stands in for the model's DAGs until the file is fixed; the other "
        "models are unaffected. Run `model-steps validate` to check a fix before saving.\n\n"
        f"```\n{listing}\n```"
    )
