"""The parts of a definition that govern a model's versions: its gate, its card, its evaluation.

A trained candidate reaches the handlers only through the model's ``gate`` (rules on its test
metrics, absolute or against the live version scored on the same data, and optionally a
person's approval). The ``card`` block holds what only a person knows for the model card. An
``evaluation`` scores the live version on fresh labelled data and marks it degraded when its
rules fail. Like the rest of the schema, this module validates and nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from model_steps.definition.trusted import rule

__all__ = [
    "COMPARISONS",
    "Card",
    "Drift",
    "EvaluationRuleText",
    "Gate",
    "GateRuleText",
    "Rule",
    "parse_rule",
]

_NUMBER = r"[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?"
RULE_PATTERN = (
    r"^\s*(?P<metric>[A-Za-z_][A-Za-z0-9_.]*(?::[A-Za-z_][A-Za-z0-9_]*)?)\s*"
    r"(?P<op>>=|<=|>|<)\s*"
    rf"(?:(?P<reference>live|trained)\s*(?:(?P<sign>[+-])\s*(?P<offset>{_NUMBER}))?"
    rf"|(?P<value>[+-]?{_NUMBER}))\s*$"
)
COMPARISONS: dict[str, Any] = {
    ">=": float.__ge__,
    ">": float.__gt__,
    "<=": float.__le__,
    "<": float.__lt__,
}
"""Each comparison a rule may use, as the test it runs on (observed, threshold)."""


@dataclass(frozen=True)
class Rule:
    """``metric OP threshold``: ``accuracy >= 0.9``, or against a reference, ``f1 >= live - 0.01``.

    Written as one string in YAML; the parts are kept so a decision can say which rule failed,
    with the numbers on both sides.
    """

    metric: str
    op: Literal[">=", ">", "<=", "<"]
    value: float | None = None
    reference: str | None = None
    """``live`` (the live version on the same data) or ``trained`` (the version's own test
    metric); None for an absolute rule."""
    offset: float = 0.0

    @property
    def text(self) -> str:
        """The rule as a person writes it (and as manifests and cards show it)."""
        if self.reference is None:
            return f"{self.metric} {self.op} {self.value:g}"
        if not self.offset:
            return f"{self.metric} {self.op} {self.reference}"
        sign = "-" if self.offset < 0 else "+"
        return f"{self.metric} {self.op} {self.reference} {sign} {abs(self.offset):g}"

    def threshold(self, reference: float | None) -> float | None:
        """The number the metric is compared with; None when the reference is unknown."""
        if self.reference is None:
            return self.value
        return None if reference is None else reference + self.offset

    def holds(self, observed: float, reference: float | None) -> bool | None:
        """Whether ``observed`` passes; None when there is no reference to compare with."""
        threshold = self.threshold(reference)
        if threshold is None:
            return None
        test: Any = COMPARISONS[self.op]
        return bool(test(float(observed), float(threshold)))


def parse_rule(text: str, references: tuple[str, ...] = ()) -> Rule:
    """A rule from its text; ``references`` are the names it may compare against.

    Raises:
        PydanticCustomError: the text is not a rule, or names a reference it may not.
    """
    hint = "".join(f" or 'metric OP {name} +/- number'" for name in references)
    match = re.fullmatch(RULE_PATTERN, text)
    if match is None:
        raise PydanticCustomError(
            "rule",
            f"{text!r} is not a rule: expected 'metric OP number'{hint} with OP one of "
            ">=, >, <=, <, e.g. 'accuracy >= 0.9'",
        )
    reference = match["reference"]
    if reference is not None and reference not in references:
        raise PydanticCustomError(
            "rule",
            f"{text!r} compares with {reference!r}, which this rule cannot: expected "
            f"'metric OP number'{hint}",
        )
    offset = float(match["offset"] or 0.0) * (-1 if match["sign"] == "-" else 1)
    op: Any = match["op"]
    value = float(match["value"]) if match["value"] is not None else None
    return Rule(match["metric"], op, value, reference, offset)


def _schema(example: str) -> WithJsonSchema:
    """A rule is a string in YAML, so editors check it against the grammar's pattern."""
    return WithJsonSchema({"type": "string", "pattern": RULE_PATTERN, "examples": [example]})


GateRuleText = Annotated[
    str,
    AfterValidator(rule(lambda value: parse_rule(value, ("live",)).text)),
    _schema("f1_macro >= live - 0.01"),
]
"""A gate rule: absolute, or against ``live`` (the live version on the same test data)."""
EvaluationRuleText = Annotated[
    str,
    AfterValidator(rule(lambda value: parse_rule(value, ("trained",)).text)),
    _schema("accuracy >= trained - 0.05"),
]
"""An evaluation rule: absolute, or against ``trained`` (the version's own test metric)."""


class _Block(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, coerce_numbers_to_str=True
    )


class Gate(_Block):
    """What a trained candidate must pass before handlers serve it."""

    rules: list[GateRuleText] = []
    """Rules on the candidate's test metrics, all of which must hold: absolute
    (``accuracy >= 0.9``, ``mean_absolute_error <= 40``) or against the live version scored on
    this run's test split (``f1_macro >= live - 0.01``). A relative rule passes when nothing
    is live yet."""
    approval: Literal["automatic", "manual"] = "automatic"
    """``manual``: a candidate that passes the rules waits for a person to approve it
    (``model-steps promote`` or the Models page) instead of going live."""

    @property
    def parsed(self) -> list[Rule]:
        """The rules, parsed."""
        return [parse_rule(text, ("live",)) for text in self.rules]

    @property
    def relative(self) -> bool:
        """Whether any rule needs the live version scored beside the candidate."""
        return any(rule.reference == "live" for rule in self.parsed)


class Drift(_Block):
    """Compare the distribution of each feature in fresh data with the training data's."""

    threshold: float = Field(0.2, gt=0)
    """Population stability index above which a feature counts as drifted (0.1: small shift,
    0.25: large), plus the sampling margin: the index a sample of the fresh data's size drawn
    from the training data itself exceeds once in a hundred (0.146 at 149 rows in 10 bins, 0.022
    at 1,000)."""
    min_rows: int = Field(100, ge=1)
    """Fewer fresh values of a feature than this and its drift is not judged (the record says
    so): the index of a small sample is mostly noise."""
    features: list[str] | None = None
    """Numeric features to watch; every numeric feature of the training data when left out."""
    bins: int = Field(10, ge=2, le=100)
    """Quantile bins of the training data the index compares."""


class Card(_Block):
    """What only a person knows, for the model card; a field left out shows as "not provided"."""

    developed_by: str | None = None
    """People and institutions who built the model."""
    funded_by: str | None = None
    """Who paid for it (agency, grant, team)."""
    shared_by: str | None = None
    """Who makes it available."""
    model_type: str | None = None
    """Kind of model in words (e.g. gradient-boosted trees); the steps' classes when left out."""
    repository: str | None = None
    """Where its code lives."""
    paper: str | None = None
    """A publication describing it."""
    demo: str | None = None
    """A notebook or page showing it in use."""
    direct_use: str | None = None
    """How to use its predictions as they are; ``intended_use`` when left out."""
    downstream_use: str | None = None
    """How it fits into larger pipelines, or is fine-tuned."""
    out_of_scope_use: str | None = None
    """Uses it must not be put to."""
    task_type: str | None = None
    """Classification, regression, ranking... of what."""
    known_biases: str | None = None
    """Biases of its data or behaviour."""
    risks: str | None = None
    """Harm that can follow from using it."""
    recommendations: str | None = None
    """What users should do about its biases, risks and limitations."""
    training_data: str | None = None
    """Where the training data comes from, in words."""
    ground_truth: str | None = None
    """How the labels were made and how good they are."""
    preprocessing: str | None = None
    """Preparation the data gets before the first step."""
    testing_data: str | None = None
    """What the held-out and evaluation data represent."""
    factors: str | None = None
    """Conditions its quality depends on."""
    societal_impact: str | None = None
    """Broader consequences of using it."""
    compute_region: str | None = None
    """Where it is trained (for the environmental impact)."""
    cloud_provider: str | None = None
    """On whose machines it is trained."""
    carbon_emitted: str | None = None
    """Estimated emissions of training, if known."""
