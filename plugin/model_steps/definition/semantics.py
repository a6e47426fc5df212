"""Rules that span several fields of a definition, which pydantic's per-field checks cannot see.

:func:`semantic_issues` gathers them for :class:`~model_steps.definition.schema.ModelSpec`'s
validator, which raises them together as one ``semantic`` error whose context lists each issue
with its own location, so a user sees every problem in a file at once, each on its own line.
:func:`structural_issues` is the part the loader also asks of a definition too broken to model
(step ids and the train schedule), so those problems are reported even then.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

from model_steps.definition.schema import (
    KNOWN_LIBRARIES,
    NATIVE_FORMATS,
    ON_DEGRADATION,
    ON_NEW_VERSION,
    PREDICTION_COLUMN,
    RESERVED_TASK_IDS,
    SERIALIZER_EXTENSIONS,
    SERIALIZER_FORMATS,
    ModelSpec,
    Step,
    StepParameters,
    Training,
    metric_key,
    serializer_for,
)
from model_steps.definition.table_options import option_refusal

__all__ = ["Issue", "semantic_issues", "structural_issues"]


Issue: TypeAlias = tuple[tuple[str | int, ...], str, str]
"""A cross-field problem: its location inside the model, a code and a message."""


def semantic_issues(model: ModelSpec) -> list[Issue]:
    """Every rule that spans several fields, each located at the field a user should edit."""
    issues = structural_issues([step.id for step in model.steps], model.schedule.train)
    for index, step in enumerate(model.steps):
        issues.extend(_data_issues(model, index, step))
        issues.extend(_serializer_issues(index, step))
    if model.schedule.infer is not None and not model.has_infer:
        issues.append(
            (
                ("schedule", "infer"),
                "no_infer_input",
                "an infer schedule needs inference data: set steps[0].parameters.input.infer",
            )
        )
    issues.extend(_gate_issues(model))
    issues.extend(_evaluation_issues(model))
    issues.extend(_option_issues(model))
    return issues


def _option_issues(model: ModelSpec) -> list[Issue]:
    """Table options outside the allow-list (:mod:`model_steps.definition.table_options`)."""
    return [
        ((*loc, "options", key), "table_option", refusal)
        for loc, ref, verb in model.tables()
        for key, value in ref.options.items()
        if (refusal := option_refusal(verb, str(ref.inferred_format()), key, value)) is not None
    ]


def _has_split(model: ModelSpec) -> bool:
    """Whether training holds out a test split, which gives the test metrics rules judge."""
    return any(s.parameters.training and s.parameters.training.split for s in model.steps)


def _unknown_metric(metric: str, computed: Sequence[str], where: str) -> str:
    listing = ", ".join(computed) or "none"
    return f"a rule on {metric!r}, which {where} does not compute (it computes: {listing})"


def _gate_issues(model: ModelSpec) -> list[Issue]:
    """Gate rules judge the last step's test metrics, so both must exist."""
    computed = [metric_key(metric) for metric in model.steps[-1].parameters.metrics]
    issues: list[Issue] = []
    for index, rule in enumerate(model.gate.parsed):
        if rule.metric not in computed:
            message = _unknown_metric(rule.metric, computed, "the last step")
            issues.append(
                (("gate", "rules", index), "gate_metric", f"{message}: add it to its metrics")
            )
    if model.gate.rules and not _has_split(model):
        issues.append(
            (
                ("gate", "rules"),
                "gate_without_split",
                "gate rules judge test metrics: hold out test data with training.split "
                "on the step that reads the training data",
            )
        )
    return issues


def _evaluation_issues(model: ModelSpec) -> list[Issue]:
    """An evaluation's rules need its metrics; ``on degradation`` needs something to degrade."""
    evaluation = model.evaluation
    issues: list[Issue] = []
    if model.schedule.infer == ON_DEGRADATION:
        issues.append(
            (
                ("schedule", "infer"),
                "infer_on_degradation",
                f"'{ON_DEGRADATION}' is for train: inference runs on new versions "
                f"('{ON_NEW_VERSION}')",
            )
        )
    if evaluation is not None and evaluation.schedule == ON_DEGRADATION:
        issues.append(
            (
                ("evaluation", "schedule"),
                "evaluate_on_degradation",
                f"'{ON_DEGRADATION}' is for train; an evaluation is what finds degradation",
            )
        )
    if model.schedule.train == ON_DEGRADATION and not (
        evaluation is not None and (evaluation.rules or evaluation.drift)
    ):
        issues.append(
            (
                ("schedule", "train"),
                "nothing_degrades",
                f"'{ON_DEGRADATION}' needs an evaluation with rules or drift that can find "
                "the live version degraded",
            )
        )
    if evaluation is None:
        return issues
    computed = [metric_key(m) for m in evaluation.metrics or model.steps[-1].parameters.metrics]
    trained = [metric_key(m) for m in model.steps[-1].parameters.metrics if _has_split(model)]
    for index, rule in enumerate(evaluation.parsed):
        where = ("evaluation", "rules", index)
        if rule.metric not in computed:
            issues.append(
                (
                    where,
                    "evaluation_metric",
                    _unknown_metric(rule.metric, computed, "the evaluation"),
                )
            )
        elif rule.reference == "trained" and rule.metric not in trained:
            issues.append(
                (
                    where,
                    "no_trained_metric",
                    f"'trained' is the version's own test {rule.metric!r}, which training does "
                    "not compute: hold out test data with training.split and list the metric "
                    "on the last step",
                )
            )
    return issues


def structural_issues(step_ids: Sequence[object], train_schedule: object) -> list[Issue]:
    """Rules that read only step ids and the train schedule.

    They take raw values too, so the loader reports them even when other fields fail and
    pydantic skips the model's cross-field rules: a typo never hides a duplicate step id.
    """
    issues: list[Issue] = []
    seen: dict[str, int] = {}
    for index, step_id in enumerate(step_ids):
        if not isinstance(step_id, str):
            continue
        if step_id in seen:
            issues.append(
                (
                    ("steps", index, "id"),
                    "duplicate_step",
                    f"step id {step_id!r} is already used by steps[{seen[step_id]}]",
                )
            )
        seen.setdefault(step_id, index)
        if step_id in RESERVED_TASK_IDS:
            issues.append(
                (
                    ("steps", index, "id"),
                    "reserved_step",
                    f"step id {step_id!r} is reserved for the generated task of that name",
                )
            )
    if train_schedule == ON_NEW_VERSION:
        issues.append(
            (
                ("schedule", "train"),
                "train_on_new_version",
                f"'{ON_NEW_VERSION}' is for infer; training has nothing to wait for",
            )
        )
    return issues


def _serializer_issues(index: int, step: Step) -> list[Issue]:
    """An asset's file name, its serializer and the estimator must agree.

    A ``.json`` asset that is really a pickle, or an xgboost model asked of a scikit-learn
    class, is found when the definition is validated instead of at the end of training.
    """
    params = step.parameters
    if not step.has_assets:
        return []
    where = ("steps", index)
    if params.serializer is not None and params.save is not None:
        message = "give 'serializer' or your own 'save'/'load', not both"
        return [((*where, "parameters", "serializer"), "serializer", message)]
    name, identifier = step.serializer, str(step.assets_identifier)
    claimed = serializer_for(identifier)
    if name == "custom" or claimed == name or (claimed is None and name not in NATIVE_FORMATS):
        return _native_issues(where, step, name) if name in NATIVE_FORMATS else []
    stem = identifier.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    expected = " or ".join(stem + extension for extension in SERIALIZER_EXTENSIONS[name])
    named = f"named like {SERIALIZER_FORMATS[claimed]}" if claimed else "named for no serializer"
    instead = f", or use serializer {claimed!r}" if claimed else ""
    message = (
        f"{identifier!r} is {named}, but serializer {name!r} writes "
        f"{SERIALIZER_FORMATS[name]}: name it {expected}{instead}"
    )
    return [((*where, "assets_identifier"), "serializer", message)]


def _native_issues(where: tuple[str | int, ...], step: Step, name: str) -> list[Issue]:
    """A library's own format holds that library's estimators only."""
    params = step.parameters
    runs = params.callable or f"{params.package}.{params.class_}"
    library = (params.package or "").partition(".")[0]
    if params.callable is None and (library == name or library not in KNOWN_LIBRARIES):
        return []
    message = (
        f"{step.assets_identifier!r} asks for {SERIALIZER_FORMATS[name]}, which only {name} "
        f"estimators write, and {runs} is not one: name the asset model.joblib, or "
        "model.skops for a scikit-learn object"
    )
    return [((*where, "assets_identifier"), "serializer", message)]


def _data_issues(model: ModelSpec, index: int, step: Step) -> list[Issue]:
    """Training needs data at the first step; inference needs a place to write predictions."""
    where = ("steps", index, "parameters")
    params = step.parameters
    has_train_input = params.input is not None and params.input.train is not None
    issues: list[Issue] = []
    if index == 0 and not has_train_input:
        issues.append(
            (
                (*where, "input"),
                "no_train_input",
                "the first step must read training data: set input.train (url and format)",
            )
        )
    if params.training is not None and not has_train_input and index > 0:
        issues.append(
            (
                (*where, "training"),
                "training_without_input",
                "'training' describes the data a step reads, so it needs input.train "
                "in the same step",
            )
        )
    if index > 0 and params.input is not None and params.input.infer is not None:
        issues.append(
            (
                (*where, "input", "infer"),
                "infer_input_not_first",
                "only the first step reads inference data; later steps get the "
                "previous step's output",
            )
        )
    issues.extend(_carry_issues(where, index, params))
    last = index == len(model.steps) - 1
    if last and model.has_infer and (params.output is None or params.output.infer is None):
        issues.append(
            (
                (*where, "output"),
                "no_infer_output",
                "the last step must say where predictions go: set output.infer (url and format)",
            )
        )
    return issues


def _carry_issues(where: tuple[str | int, ...], index: int, params: StepParameters) -> list[Issue]:
    """Carried columns come from the data the first step reads and never reach a model."""
    if not params.carry:
        return []
    at = (*where, "carry")
    if index > 0:
        message = "only the first step carries columns: it reads the data they come from"
        return [(at, "carry_not_first", message)]
    training = params.training or Training()
    used = {training.target, *(training.features or [])}
    issues: list[Issue] = []
    for column in dict.fromkeys(params.carry):
        if column in used:
            role = "the target" if column == training.target else "a feature"
            message = f"{column!r} is {role}: a carried column never reaches the model"
            issues.append((at, "carry_overlap", message))
        elif column == PREDICTION_COLUMN:
            message = f"{column!r} names the predictions' own column: rename it in the data"
            issues.append((at, "carry_overlap", message))
    return issues
