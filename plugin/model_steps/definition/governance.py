"""The parts of a definition that govern a model's versions: its gate, its card, its evaluation.

A trained candidate reaches the handlers only through the model's ``gate`` (rules on its test
metrics, absolute or against the live version scored on the same data, and optionally a
person's approval). The ``card`` block holds what only a person knows for the model card. An
``evaluation`` scores the live version on fresh labelled data and marks it degraded when its
rules fail. Like the rest of the schema, this module validates and nothing else.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    model_serializer,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

__all__ = [
    "COMPARISONS",
    "Card",
    "Drift",
    "EvaluationRule",
    "Gate",
    "GateRule",
    "Rule",
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


class Rule(BaseModel):
    """``metric OP threshold``: ``accuracy >= 0.9``, or against a reference, ``f1 >= live - 0.01``.

    Written as one string in YAML; the parts are kept so a decision can say which rule failed,
    with the numbers on both sides.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    references: ClassVar[tuple[str, ...]] = ()
    """Reference names this kind of rule may compare against (``live``, ``trained``)."""
    example: ClassVar[str] = "accuracy >= 0.9"

    metric: str
    op: Literal[">=", ">", "<=", "<"]
    value: float | None = None
    reference: str | None = None
    offset: float = 0.0

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, data: Any) -> Any:
        if not isinstance(data, str):
            raise PydanticCustomError("rule", f"expected a rule as text, e.g. {cls.example!r}")
        match = re.fullmatch(RULE_PATTERN, data)
        if match is None:
            raise PydanticCustomError(
                "rule",
                f"{data!r} is not a rule: expected 'metric OP number'{cls._reference_hint()} "
                f"with OP one of >=, >, <=, <, e.g. {cls.example!r}",
            )
        reference = match["reference"]
        if reference is not None and reference not in cls.references:
            raise PydanticCustomError(
                "rule",
                f"{data!r} compares with {reference!r}, which this rule cannot: expected "
                f"'metric OP number'{cls._reference_hint()}",
            )
        offset = float(match["offset"] or 0.0) * (-1 if match["sign"] == "-" else 1)
        value = float(match["value"]) if match["value"] is not None else None
        return {
            "metric": match["metric"],
            "op": match["op"],
            "value": value,
            "reference": reference,
            "offset": offset,
        }

    @classmethod
    def _reference_hint(cls) -> str:
        if not cls.references:
            return ""
        names = " or ".join(f"'metric OP {name} +/- number'" for name in cls.references)
        return f" or {names}"

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """A rule is a string in YAML, so editors check it against the grammar's pattern."""
        return {"type": "string", "pattern": RULE_PATTERN, "examples": [cls.example]}

    @model_serializer
    def _as_text(self) -> str:
        return self.text

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


class GateRule(Rule):
    """A rule on a candidate's test metrics; ``live`` is the live version on the same data."""

    references: ClassVar[tuple[str, ...]] = ("live",)
    example: ClassVar[str] = "f1_macro >= live - 0.01"


class EvaluationRule(Rule):
    """A rule on fresh labelled data; ``trained`` is the version's own test metric."""

    references: ClassVar[tuple[str, ...]] = ("trained",)
    example: ClassVar[str] = "accuracy >= trained - 0.05"


class _Block(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, coerce_numbers_to_str=True
    )


class Gate(_Block):
    """What a trained candidate must pass before handlers serve it."""

    rules: list[GateRule] = []
    """Rules on the candidate's test metrics, all of which must hold: absolute
    (``accuracy >= 0.9``, ``mean_absolute_error <= 40``) or against the live version scored on
    this run's test split (``f1_macro >= live - 0.01``). A relative rule passes when nothing
    is live yet."""
    approval: Literal["automatic", "manual"] = "automatic"
    """``manual``: a candidate that passes the rules waits for a person to approve it
    (``model-steps promote`` or the Models page) instead of going live."""

    @property
    def relative(self) -> bool:
        """Whether any rule needs the live version scored beside the candidate."""
        return any(rule.reference == "live" for rule in self.rules)


class Drift(_Block):
    """Compare the distribution of each feature in fresh data with the training data's."""

    threshold: float = Field(0.2, gt=0)
    """Population stability index above which a feature counts as drifted (0.1: small shift,
    0.25: large)."""
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
