"""Judging metrics by a model's rules: the gate's decision on a candidate, and degradation.

Pure functions over numbers: the callers (the gate task, the evaluation task) compute the
metrics, here they meet the rules. Every rule's result keeps the numbers on both sides, so a
refusal says exactly which rule failed and by how much.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

from model_steps.definition.governance import Gate, Rule
from model_steps.store.manifest import GateRecord, RuleResult
from model_steps.store.model_store import utc_now

__all__ = ["NEGATIONS", "decide", "failures", "judge"]

NEGATIONS = {">=": "<", ">": "<=", "<=": ">", "<": ">="}
"""The comparison that held when a rule's failed: ``>=`` failed means ``<``."""


def judge(
    rules: Sequence[Rule], observed: Mapping[str, float], reference: Mapping[str, float]
) -> list[RuleResult]:
    """Each rule against the observed metrics.

    ``reference`` holds the values ``live`` or ``trained`` stand for; it is empty when there is
    nothing to compare with, and relative rules then do not apply.
    """
    results = []
    for rule in rules:
        value = observed.get(rule.metric)
        known = reference.get(rule.metric) if rule.reference else None
        threshold = rule.threshold(known)
        if value is None or math.isnan(value):
            passed: bool | None = False  # a metric that could not be computed never passes
        else:
            passed = rule.holds(value, known)
        results.append(
            RuleResult(
                rule=rule.text,
                metric=rule.metric,
                op=rule.op,
                candidate=value,
                live=known,
                threshold=threshold,
                passed=passed,
            )
        )
    return results


def failures(results: Sequence[RuleResult]) -> list[str]:
    """One line per failed rule: ``accuracy 0.71 < 0.9 (accuracy >= 0.9)``."""
    lines = []
    for result in results:
        if result.passed is not False:
            continue
        if result.candidate is None or math.isnan(result.candidate):
            lines.append(f"{result.metric} was not computed ({result.rule})")
            continue
        held = NEGATIONS[result.op]
        lines.append(
            f"{result.metric} {result.candidate:.4g} {held} {result.threshold:.4g} ({result.rule})"
        )
    return lines


def decide(
    gate: Gate,
    candidate: Mapping[str, float],
    live: Mapping[str, float],
    live_version: int | None,
    seconds: float,
) -> GateRecord:
    """The gate's decision: refused when a rule fails, else pending (manual) or accepted."""
    results = judge(gate.parsed, candidate, live)
    failed = failures(results)
    outcome: Literal["accepted", "refused", "pending"] = "accepted"
    reason = "passed the gate's rules" if gate.rules else "no rules to pass"
    if failed:
        outcome, reason = "refused", "refused by the gate: " + "; ".join(failed)
    elif gate.approval == "manual":
        outcome, reason = "pending", "passed the gate's rules; waiting for a person to approve it"
    return GateRecord(
        outcome=outcome,
        reason=reason,
        approval=gate.approval,
        rules=results,
        live_version=live_version,
        live_metrics=dict(live),
        candidate_metrics=dict(candidate),
        decided_at=utc_now(),
        seconds=round(seconds, 6),
    )
