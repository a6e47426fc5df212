"""Gate and evaluation rules: their grammar, and how they judge numbers."""

from __future__ import annotations

import math

import pytest
from pydantic_core import PydanticCustomError

from model_steps.definition.governance import Gate, parse_rule
from model_steps.runtime.rules import decide, failures, judge


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("accuracy >= 0.9", "accuracy >= 0.9"),
        ("mean_absolute_error<=40", "mean_absolute_error <= 40"),
        ("f1_macro >= live - 0.01", "f1_macro >= live - 0.01"),
        ("  r2 > live  ", "r2 > live"),
        ("mymetrics.scores:lift < 1e3", "mymetrics.scores:lift < 1000"),
    ],
)
def test_a_rule_is_kept_as_a_person_writes_it(text: str, expected: str) -> None:
    assert parse_rule(text, ("live",)).text == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("accuracy => 0.9", "is not a rule: expected 'metric OP number'"),
        ("accuracy >= ", "is not a rule"),
        ("accuracy >= trained", "compares with 'trained', which this rule cannot"),
        ("0.9 <= accuracy", "is not a rule"),
    ],
)
def test_a_malformed_rule_says_what_was_expected(text: str, message: str) -> None:
    with pytest.raises(PydanticCustomError, match=message):
        parse_rule(text, ("live",))


def test_an_absolute_rule_compares_with_its_number() -> None:
    [result] = judge([parse_rule("accuracy >= 0.9")], {"accuracy": 0.85}, {})
    assert (result.passed, result.threshold) == (False, 0.9)
    assert failures([result]) == ["accuracy 0.85 < 0.9 (accuracy >= 0.9)"]


def test_a_relative_rule_compares_with_the_reference_plus_its_offset() -> None:
    rule = parse_rule("mean_absolute_error <= live + 2", ("live",))
    [worse] = judge([rule], {"mean_absolute_error": 43.0}, {"mean_absolute_error": 40.0})
    [better] = judge([rule], {"mean_absolute_error": 41.5}, {"mean_absolute_error": 40.0})
    assert (worse.passed, worse.threshold, worse.live) == (False, 42.0, 40.0)
    assert better.passed is True


def test_a_relative_rule_does_not_apply_without_a_reference() -> None:
    [result] = judge([parse_rule("f1 >= live", ("live",))], {"f1": 0.1}, {})
    assert result.passed is None
    assert failures([result]) == []


def test_a_metric_that_was_not_computed_never_passes() -> None:
    results = judge([parse_rule("auc >= 0.5")], {"auc": math.nan}, {})
    assert failures(results) == ["auc was not computed (auc >= 0.5)"]
    assert judge([parse_rule("recall >= 0.5")], {}, {})[0].passed is False


def test_the_gate_refuses_with_every_failed_rule_in_one_line() -> None:
    gate = Gate(rules=["accuracy >= 0.9", "f1 >= live - 0.01"])
    record = decide(gate, {"accuracy": 0.8, "f1": 0.7}, {"f1": 0.75}, 3, 0.2)
    assert record.outcome == "refused"
    assert record.reason == (
        "refused by the gate: accuracy 0.8 < 0.9 (accuracy >= 0.9); "
        "f1 0.7 < 0.74 (f1 >= live - 0.01)"
    )
    assert (record.live_version, record.live_metrics) == (3, {"f1": 0.75})


def test_a_candidate_that_passes_a_manual_gate_waits() -> None:
    record = decide(
        Gate(rules=["accuracy >= 0.5"], approval="manual"), {"accuracy": 0.9}, {}, None, 0
    )
    assert (record.outcome, record.reason) == (
        "pending",
        "passed the gate's rules; waiting for a person to approve it",
    )


def test_a_gate_without_rules_accepts() -> None:
    assert decide(Gate(), {}, {}, None, 0).outcome == "accepted"
