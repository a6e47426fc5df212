"""The model definition schema (``apiVersion: model-steps/v1``, ``kind: Model``).

These pydantic models are the single source of truth: the JSON Schema (``model-steps schema``),
the docs' field reference and every validation message come from them. The module validates
and nothing else: no file I/O, no Airflow, no scientific libraries, so editors, the CLI and a
serving process can all import it cheaply.

Rules that span several fields live in :mod:`model_steps.definition.semantics`; the model's
validator raises them together as one ``semantic`` error, each issue with its own location.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import itertools
import json
import re
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from difflib import get_close_matches
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StrictBool,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from model_steps.definition import governance
from model_steps.definition.governance import (
    Card,
    Drift,
    EvaluationRuleText,
    Gate,
    Rule,
    parse_rule,
)
from model_steps.definition.table_options import (
    OPTION_NAMES,
    options_reference,
)
from model_steps.definition.trusted import rule

__all__ = [
    "API_VERSION",
    "KIND",
    "NATIVE_FORMATS",
    "ON_DEGRADATION",
    "ON_NEW_VERSION",
    "SERIALIZER_EXTENSIONS",
    "SERIALIZER_FORMATS",
    "AirflowOptions",
    "Assets",
    "Comment",
    "DataIO",
    "DataRef",
    "Evaluation",
    "Methods",
    "MetricFunction",
    "ModelParameter",
    "ModelSpec",
    "Schedule",
    "Split",
    "Step",
    "StepParameters",
    "TaskOptions",
    "Training",
    "json_schema",
    "metric_key",
    "parse_duration",
    "parse_size",
    "schedule_kind",
    "serializer_for",
    "spec_hash",
]

API_VERSION = "model-steps/v1"
KIND = "Model"
ON_NEW_VERSION = "on new version"
ON_DEGRADATION = "on degradation"
SEMANTIC = "semantic"
RESERVED_TASK_IDS = frozenset({"check", "publish", "gate", "partitions", "output"})
AIRFLOW_PRESETS = frozenset(
    {"@once", "@continuous", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly"}
)

NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_.-]{0,99}$"
STEP_ID_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,99}$"
IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
MODULE_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
CALLABLE_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"
DURATION_PATTERN = r"^(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?$"
_DURATION_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def _fail(
    code: str, message: str, at: tuple[str, ...] = (), suggestions: tuple[str, ...] = ()
) -> PydanticCustomError:
    """An error whose message is final text, located ``at`` a field below the validated object.

    A rule checked on a whole step still points at the key to edit (``has_assets``), and
    ``suggestions`` carry near misses; the loader reads both from the error's context.
    """
    return PydanticCustomError(code, message, {"at": at, "suggestions": suggestions})


@dataclass(frozen=True)
class _Pattern:
    """A string rule whose error says what was expected in words, not as a raw regex.

    The JSON Schema still carries the regex (``pattern``) so editors can check it as you type.
    """

    pattern: str
    expected: str

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(rule(self._check), handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["pattern"] = self.pattern
        return json_schema

    def _check(self, value: str) -> str:
        if not re.fullmatch(self.pattern, value):  # in full: '$' alone accepts a final newline
            raise _fail("pattern", f"{value!r} is not valid: expected {self.expected}")
        return value


Name = Annotated[
    str,
    _Pattern(
        NAME_PATTERN, "a letter, then letters, digits, '_', '-' or '.' (at most 100 characters)"
    ),
]
StepId = Annotated[
    str,
    _Pattern(
        STEP_ID_PATTERN, "a letter, then letters, digits, '_' or '-' (at most 100 characters)"
    ),
]
Identifier = Annotated[str, _Pattern(IDENTIFIER_PATTERN, "a Python identifier")]
ModulePath = Annotated[
    str, _Pattern(MODULE_PATTERN, "a dotted Python module path such as 'sklearn.linear_model'")
]
CallableRef = Annotated[str, _Pattern(CALLABLE_PATTERN, "'package.module:function'")]


def _relative_path(value: str) -> str:
    """Keep asset paths inside their root: no absolute paths, URLs, '..' or empty segments."""
    parts = value.replace("\\", "/").split("/")
    if value.startswith(("/", "\\")) or "://" in value or re.match(r"^[A-Za-z]:", value):
        raise _fail(
            "path_escape",
            f"{value!r} must be a path relative to the assets root, not absolute or a URL",
        )
    if any(part in ("", ".", "..") for part in parts):
        raise _fail(
            "path_escape",
            f"{value!r} must stay inside the assets root: no '..', '.' or empty path segments",
        )
    return value


RelativePath = Annotated[str, AfterValidator(rule(_relative_path))]

CONN_ID_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,249}$"
ConnId = Annotated[
    str,
    _Pattern(
        CONN_ID_PATTERN,
        "an Airflow connection id: letters, digits, '_', '.' or '-' (at most 250 characters)",
    ),
]
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _no_control(value: str) -> str:
    """Refuse control characters (a NUL byte, a newline) in a URL or path.

    No filesystem path or URL needs them, and a NUL byte makes every path function raise
    ``ValueError`` deep inside the checks across files, where it would break every model.
    """
    if _CONTROL.search(value):
        raise _fail(
            "control_character",
            f"{value!r} holds a control character (a NUL byte, a newline, a tab); "
            "URLs and paths may not",
        )
    return value


def _store_root(value: str) -> str:
    """A store root is a URL with a scheme or an absolute path, the same in every process.

    A relative path would be judged against each process's working folder and ``~`` against
    each process's user (``~nosuchuser`` cannot be resolved at all), so the DAG processor, a
    worker and ``model-steps validate`` could each see a different store.
    """
    _no_control(value)
    if "://" in value:
        scheme = value.partition("://")[0]
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
            raise _fail("store_root", f"{value!r} is not a URL: its scheme is not valid")
        return value
    if not value.startswith("/"):
        raise _fail(
            "store_root",
            f"{value!r} must be an absolute path ('/srv/models') or a URL ('s3://bucket/path'):"
            " a relative path or '~' would name a different folder in each process",
        )
    return value


StoreRoot = Annotated[str, AfterValidator(_store_root)]
UrlText = Annotated[str, AfterValidator(_no_control)]


def parse_duration(value: Any) -> Any:
    """Accept the durations people write in YAML: ``90`` (seconds), ``"1h30m"``, ``"PT5M"``.

    Numbers and ISO 8601 strings are handed on to pydantic, which reads both.
    """
    if not isinstance(value, str) or value.strip().upper().startswith("P"):
        return value
    text = value.strip()
    match = re.fullmatch(DURATION_PATTERN, text)
    if not (match and text):
        raise _fail(
            "duration",
            f"{value!r} is not a duration: expected e.g. '30s', '5m', "
            "'1h30m', '2d', an ISO 8601 duration ('PT5M') or a number of seconds",
        )
    return timedelta(**{_DURATION_UNITS[g[-1]]: int(g[:-1]) for g in match.groups() if g})


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "description": "e.g. '30s', '5m', '1h30m', '2d', 'PT5M'"},
                {"type": "number", "description": "seconds"},
            ]
        }
    ),
]


@lru_cache(maxsize=1024)
def schedule_kind(value: str) -> str:
    """Classify a schedule string, or raise with what would have been accepted.

    Remembered per string: a DAGs folder repeats a few schedules, and a cron string takes
    croniter a tenth of a millisecond to check.
    """
    text = value.strip()
    if text == ON_NEW_VERSION:
        return "on_new_version"
    if text == ON_DEGRADATION:
        return "on_degradation"
    if text.startswith("@"):
        if text not in AIRFLOW_PRESETS:
            presets = ", ".join(sorted(AIRFLOW_PRESETS))
            raise _fail(
                "schedule",
                f"unknown preset {text!r}: expected one of {presets}",
                suggestions=tuple(get_close_matches(text, sorted(AIRFLOW_PRESETS), n=1)),
            )
        return "preset"
    if text and re.fullmatch(DURATION_PATTERN, text):
        return "interval"
    if len(text.split()) != 5:
        raise _fail(
            "schedule",
            f"{text!r} is not a schedule: expected a 5-field cron string "
            "('0 3 * * *'), an Airflow preset ('@daily'), an interval ('6h'), "
            f"'{ON_NEW_VERSION}' (infer only), '{ON_DEGRADATION}' (train only) or null for "
            "manual runs only",
        )
    from croniter import croniter  # imported here: only definitions with a cron string need it

    try:
        croniter(text)
    except (ValueError, KeyError) as error:
        raise _fail("schedule", f"{text!r} is not a valid cron string: {error}") from error
    return "cron"


def _valid_schedule(value: str) -> str:
    schedule_kind(value)
    return value.strip()


ScheduleValue = Annotated[
    str | None, AfterValidator(rule(lambda v: v if v is None else _valid_schedule(v)))
]


class Strict(BaseModel):
    """Base for every part of a definition: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        coerce_numbers_to_str=True,
    )


class DataRef(Strict):
    """A table read or written through fsspec."""

    url: UrlText
    """fsspec URL or absolute path of the data, under the deployment's allowed data locations
    (``MODEL_STEPS_ALLOWED_DATA``) and outside the DAGs folder and every model's store;
    templates (``{{ dag_run.run_after | ds }}``, ``{{ params.x }}``) are rendered for each run,
    after a literal ``scheme://bucket/`` folder that is allowed."""
    format: Literal["csv", "parquet", "json"] | None = None
    """File format; inferred from the URL's extension when left out (json means JSON lines)."""
    options: dict[str, Any] = Field(
        {},
        description="Extra keyword arguments for the pandas reader or writer, only these: "
        + options_reference()
        + " (anything that changes where or how data is read, such as ``storage_options``, "
        "``engine`` or ``converters``, is refused).",
        json_schema_extra={"propertyNames": {"enum": list(OPTION_NAMES)}},
    )

    @model_validator(mode="after")
    @rule
    def _format_known(self) -> DataRef:
        if self.format is None and self.inferred_format() is None:
            raise _fail(
                "format",
                f"cannot tell the format of {self.url!r} from its extension: "
                "add 'format: csv', 'format: parquet' or 'format: json'",
            )
        return self

    def inferred_format(self) -> str | None:
        """The declared format, else the one the URL's extension names."""
        if self.format:
            return self.format
        path = self.url.split("?", 1)[0] if "://" in self.url else self.url
        suffix = path.rsplit(".", 1)[-1].lower()
        return {
            "csv": "csv",
            "parquet": "parquet",
            "pq": "parquet",
            "json": "json",
            "jsonl": "json",
        }.get(suffix)


class DataIO(Strict):
    """Where a step's data comes from, or goes to, in training and in inference."""

    train: DataRef | None = None
    """Data used by the train DAG."""
    infer: DataRef | None = None
    """Data used by the infer DAG."""


class Split(Strict):
    """How the held-out test set is drawn from the training data."""

    test_size: float = Field(0.2, json_schema_extra={"exclusiveMinimum": 0, "exclusiveMaximum": 1})
    """Fraction of rows held out to compute test metrics."""
    seed: int = 0
    """Random seed, so a re-run draws the same split."""
    stratify: StrictBool = False
    """Keep the target's class proportions in both parts (classification)."""
    refit: StrictBool = False
    """After the test metrics are computed (on steps fitted on the training part), fit every
    step again on all rows, and publish those: the manifest and card say which rows the
    published steps were fitted on."""

    @field_validator("test_size")
    @classmethod
    @rule
    def _fraction(cls, value: float) -> float:
        if not 0 < value < 1:
            raise _fail("fraction", f"expected a fraction between 0 and 1 (e.g. 0.2), got {value}")
        return value


class Training(Strict):
    """How the training data is shaped before it reaches the step."""

    target: str | None = None
    """Column holding the label; the other columns (or ``features``) are the inputs."""
    features: list[str] | None = None
    """Columns used as inputs; all but the target when left out."""
    split: Split | None = None
    """Hold out part of the data for test metrics; no split means train metrics only."""


class Methods(Strict):
    """Names of the methods called on the step's object (scikit-learn's by default)."""

    fit: Identifier = "fit"
    """Fits the object in training."""
    transform: Identifier = "transform"
    """Produces the input of the next step (every step but the last)."""
    predict: Identifier = "predict"
    """Produces the predictions (last step), e.g. ``predict_proba``."""


SerializerName = Literal["joblib", "skops", "xgboost", "lightgbm"]
SERIALIZER_EXTENSIONS: dict[str, tuple[str, ...]] = {
    "joblib": (".joblib", ".pkl", ".pickle"),
    "skops": (".skops",),
    "xgboost": (".json", ".ubj"),
    "lightgbm": (".txt",),
}
"""The file extensions each serializer writes; an identifier with one of them picks (or must
match) that serializer, and any other extension means joblib."""
SERIALIZER_FORMATS = {
    "joblib": "a joblib pickle",
    "skops": "a skops archive",
    "xgboost": "xgboost's own JSON or UBJSON model",
    "lightgbm": "lightgbm's own text model",
}
"""What each serializer writes, in words for messages."""
NATIVE_FORMATS = frozenset({"xgboost", "lightgbm"})
"""Serializers that save an estimator in its own library's format, which only that library's
estimators can write: the serializer's name is the library's import name."""
KNOWN_LIBRARIES = frozenset({"sklearn", "xgboost", "lightgbm", "numpy", "pandas", "scipy"})
"""Libraries whose classes are known not to be another library's estimators."""


def _metric_name(value: str) -> str:
    if not (re.fullmatch(IDENTIFIER_PATTERN, value) or re.fullmatch(CALLABLE_PATTERN, value)):
        raise _fail(
            "metric",
            f"{value!r} is not a metric: expected a scikit-learn metric name "
            "such as 'accuracy', or 'package.module:function'",
        )
    return value


MetricName = Annotated[str, AfterValidator(rule(_metric_name))]
ResponseMethod = Literal["predict", "predict_proba", "predict_log_proba", "decision_function"]


class MetricFunction(Strict):
    """A metric computed by a function, and what the function needs from the model."""

    function: CallableRef
    """``package.module:function``, called as ``f(y_true, y_pred, **options)``: from the DAGs
    folder's own modules, ``sklearn.metrics`` or the deployment's allowed functions."""
    response_method: ResponseMethod = "predict"
    """What ``y_pred`` is: ``predict`` (labels, or values of a regressor), ``predict_proba``
    (the positive class's probability for two classes, else one column per class in the
    estimator's ``classes_`` order), ``predict_log_proba`` or ``decision_function`` (scores)."""
    name: Identifier | None = None
    """Key of the metric in the manifest and the model card; the function reference when left
    out."""
    options: dict[str, Any] = {}
    """Keyword arguments for the function, e.g. ``{beta: 2}``."""


def metric_key(metric: str | MetricFunction) -> str:
    """The key a metric's values are recorded under."""
    return metric if isinstance(metric, str) else metric.name or metric.function


class StepParameters(Strict):
    """What a step runs and on which data."""

    package: ModulePath | None = None
    """Module holding the class, e.g. ``sklearn.preprocessing``."""
    class_: Identifier | None = Field(None, alias="class")
    """Class to instantiate with ``init``, e.g. ``StandardScaler``."""
    callable: CallableRef | None = None
    """Custom code instead of a class: ``package.module:function``."""
    init: dict[str, Any] = {}
    """Keyword arguments for the class (or for the callable); templates in values are rendered
    for each run as native values (``{{ params.C }}`` stays a float)."""
    input: DataIO | None = None
    """Data this step reads; by default the previous step's output."""
    output: DataIO | None = None
    """Where to write this step's output; the last step's ``infer`` output is the prediction."""
    training: Training | None = None
    """Target, features and split of the data this step reads (the step with ``input.train``)."""
    carry: list[str] = []
    """Columns of the data this step reads that no step sees, written untouched beside the
    predictions (ids, timestamps): in the infer output, ``output.train`` and a handler's
    response, row for row. The first step only."""
    methods: Methods = Methods()
    """Method names called on the object."""
    serializer: SerializerName | None = None
    """How the fitted object is saved: ``joblib`` (a pickle), ``skops`` (scikit-learn objects;
    loading runs no arbitrary code), ``xgboost`` (xgboost's own JSON or UBJSON model) or
    ``lightgbm`` (lightgbm's own text model). Chosen by the ``assets_identifier``'s extension
    when left out: ``.skops``, ``.json`` / ``.ubj`` (xgboost), ``.txt`` (lightgbm), anything
    else joblib."""
    save: CallableRef | None = None
    """Your own save function, ``f(obj) -> bytes``, instead of the serializer."""
    load: CallableRef | None = None
    """Your own load function, ``f(data: bytes) -> obj``; goes with ``save``."""
    metrics: list[MetricName | MetricFunction] = []
    """Metrics of the last step on train and test data: scikit-learn scorer names
    (``accuracy``, ``log_loss``, ``f1_macro``, ``root_mean_squared_error``), ``pkg.mod:fn``
    (called with the labels), or a function with what it needs (``function``,
    ``response_method``)."""

    @model_validator(mode="after")
    @rule
    def _one_kind(self) -> StepParameters:
        has_class = self.package is not None or self.class_ is not None
        if has_class and self.callable is not None:
            raise _fail(
                "step_kind",
                "give either 'package' + 'class' or 'callable', not both",
                ("callable",),
            )
        if not has_class and self.callable is None:
            raise _fail(
                "step_kind",
                "say what the step runs: 'package' + 'class' (e.g. "
                "sklearn.preprocessing + StandardScaler) or 'callable: "
                "package.module:function'",
            )
        if has_class and (self.package is None or self.class_ is None):
            missing = "package" if self.package is None else "class"
            present = "class" if missing == "package" else "package"
            message = f"'package' and 'class' go together: '{missing}' is missing"
            raise _fail("step_kind", message, (present,))
        return self

    @model_validator(mode="after")
    @rule
    def _save_with_load(self) -> StepParameters:
        if (self.save is None) != (self.load is None):
            present = "save" if self.save else "load"
            raise _fail(
                "custom_serializer",
                "'save' and 'load' go together: give both or neither",
                (present,),
            )
        return self

    @property
    def kind(self) -> Literal["class", "callable"]:
        """Which step kind runs this step (the key of the step-kind registry)."""
        return "callable" if self.callable is not None else "class"


class TaskOptions(Strict):
    """Airflow task arguments passed through to every generated task (or one step's task)."""

    retries: int | None = Field(None, ge=0)
    """How many times a failed task is retried."""
    retry_delay: Duration | None = None
    """Wait between retries."""
    retry_exponential_backoff: StrictBool | None = None
    """Double the wait after each retry."""
    max_retry_delay: Duration | None = None
    """Cap on the wait between retries."""
    execution_timeout: Duration | None = None
    """A task running longer than this fails."""
    pool: str | None = None
    """Airflow pool the task runs in."""
    pool_slots: int | None = Field(None, ge=1)
    """Slots of the pool the task takes."""
    queue: str | None = None
    """Executor queue (e.g. a Celery queue with GPU workers)."""
    priority_weight: int | None = None
    """Priority among queued tasks."""

    def as_kwargs(self) -> dict[str, Any]:
        """The options that were set, as operator keyword arguments."""
        return self.model_dump(exclude_none=True)


SIZE_PATTERN = r"^(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?$"


def parse_size(value: Any) -> Any:
    """Accept sizes people write: ``268435456`` (bytes), ``"256MB"``, ``"1GiB"``, ``"512 KiB"``.

    ``KB``/``MB``/``GB`` count in thousands and ``KiB``/``MiB``/``GiB`` in 1024s, as disks do.
    """
    if not isinstance(value, str):
        return value
    match = re.fullmatch(SIZE_PATTERN, value.strip(), flags=re.IGNORECASE)
    if match is None:
        raise _fail(
            "size",
            f"{value!r} is not a size: expected e.g. '64MB', '256MiB', '1GiB' or a number of bytes",
        )
    unit = (match[2] or "B").upper()
    power = "BKMGT".index(unit[0])
    return int(float(match[1]) * (1024 if unit.endswith("IB") else 1000) ** power)


ByteSize = Annotated[
    int,
    BeforeValidator(parse_size),
    Field(ge=1),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "description": "e.g. '64MB', '256MiB', '1GiB'"},
                {"type": "integer", "minimum": 1, "description": "bytes"},
            ]
        }
    ),
]


class AirflowOptions(Strict):
    """DAG-level Airflow settings; the defaults suit a model trained on a schedule."""

    start_date: date | datetime = date(2024, 1, 1)
    """First logical date the schedule counts from (UTC when no zone is given)."""
    catchup: StrictBool = False
    """Run the schedule's missed intervals since ``start_date``."""
    dagrun_timeout: Duration | None = None
    """A whole run longer than this fails."""
    max_active_infer_runs: int = Field(1, ge=1)
    """Infer runs allowed at once (training always runs one at a time)."""
    partition_size: ByteSize | None = None
    """How much of the infer input one partition holds (``64MB``, ``1GiB`` or bytes): decoded
    data for parquet, file bytes for csv and JSON lines. Each partition is a mapped task
    instance of every infer step, read a batch at a time. The deployment's
    ``MODEL_STEPS_PARTITION_SIZE`` (``[model_steps] partition_size``), else 1 GiB, when left
    out; never so small that the input makes more partitions than Airflow maps
    (``[core] max_map_length``)."""
    task_defaults: TaskOptions = TaskOptions()
    """Task arguments for every task of both DAGs."""

    def start_datetime(self) -> datetime:
        """``start_date`` as an aware datetime, as Airflow wants it."""
        value = self.start_date
        if not isinstance(value, datetime):
            value = datetime(value.year, value.month, value.day)
        return value if value.tzinfo else value.replace(tzinfo=UTC)


class Assets(Strict):
    """Where the model's versions are stored."""

    root: StoreRoot | None = None
    """fsspec URL of the store (``s3://bucket/models``, ``/data/models``); the deployment's
    default root (``MODEL_STEPS_ASSETS_ROOT``) when left out."""
    directory: RelativePath | None = None
    """Folder under the root holding this model; the model's name when left out."""
    conn_id: ConnId | None = None
    """Airflow connection holding the store's (and data's) credentials, e.g. an AWS connection;
    its id must match the deployment's ``MODEL_STEPS_ALLOWED_CONNECTIONS`` (``model_steps_.*``
    by default)."""
    keep_versions: int | None = Field(None, ge=1)
    """Retention: keep the newest N versions after each publish (plus the current and pinned
    ones); all versions are kept when left out."""
    pinned_versions: list[Annotated[int, Field(ge=1)]] = []
    """Versions retention never deletes (e.g. the one a regulator signed off)."""


class Schedule(Strict):
    """When the train and infer DAGs run."""

    train: ScheduleValue = None
    """Cron string, Airflow preset, interval (``6h``), ``on degradation`` (retrain when an
    evaluation finds the live version degraded) or null for manual runs only."""
    infer: ScheduleValue = None
    """As ``train``, or ``on new version`` to infer whenever training publishes a version."""
    status: Literal["active", "paused"] = "paused"
    """Whether the schedules start active when Airflow first sees the DAGs; the UI's pause
    toggle is the truth after that."""


class Comment(Strict):
    """One entry of the model's change history."""

    date: date
    """When (YYYY-MM-DD)."""
    author: str
    """Who."""
    text: str
    """Why the model changed."""


ParamType = Literal["string", "number", "integer", "boolean", "array", "object", "null"]
ParamFormat = Literal["date", "date-time", "time", "email", "ipv4", "ipv6", "uuid"]
"""JSON Schema formats that are checked (with jsonschema's format checker) when a run starts."""
_RULES = ("type", "enum", "minimum", "maximum", "pattern", "min_length", "max_length", "format")


class ModelParameter(Strict):
    """A run parameter; "Trigger DAG w/ config" in the Airflow UI overrides its default."""

    default: Any = None
    """Value used when a run does not override it."""
    description: str | None = None
    """Shown beside the field in the trigger form."""
    type: ParamType | list[ParamType] | None = None
    """JSON Schema type the value must have."""
    enum: list[Any] | None = None
    """Allowed values."""
    minimum: float | None = None
    """Smallest allowed number."""
    maximum: float | None = None
    """Largest allowed number."""
    pattern: str | None = None
    """Regular expression a text value must match (JSON Schema ``pattern``: it may match
    anywhere, so anchor it with ``^...$``), e.g. ``^[a-z0-9_-]+$`` for a value that goes
    into a path."""
    min_length: int | None = Field(None, alias="minLength", ge=0)
    """Shortest allowed text."""
    max_length: int | None = Field(None, alias="maxLength", ge=0)
    """Longest allowed text."""
    format: ParamFormat | None = None
    """Format a text value must have; the trigger form shows a date or time picker for the
    date formats."""

    def rules(self) -> dict[str, Any]:
        """The JSON Schema keywords that constrain the value."""
        return self.model_dump(include=set(_RULES), exclude_none=True, by_alias=True)

    @field_validator("pattern")
    @classmethod
    @rule
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as error:
                raise _fail("pattern", f"{value!r} is not a regular expression: {error}") from error
        return value

    @model_validator(mode="after")
    @rule
    def _default_fits(self) -> ModelParameter:
        schema = self.rules()
        if schema:
            error = next(
                iter(
                    _rules_validator(json.dumps(schema, sort_keys=True)).iter_errors(self.default)
                ),
                None,
            )
            if error is not None:
                raise _fail(
                    "param_default",
                    f"default {self.default!r} does not fit the "
                    f"parameter's own rules: {error.message}",
                    ("default",),
                )
        return self


@lru_cache(maxsize=256)
def _rules_validator(schema_json: str) -> Any:
    """A validator per distinct rule set: building one costs far more than using it.

    The rules come from our own closed schema (type, enum, bounds, pattern, lengths, format),
    so the metaschema check that ``jsonschema.validate`` repeats on every call is skipped.
    """
    from jsonschema import Draft202012Validator  # only constrained parameters need it

    schema = json.loads(schema_json)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _shorthand_parameter(value: Any) -> Any:
    """``threshold: 0.5`` is short for ``threshold: {default: 0.5}``."""
    return value if isinstance(value, dict) else {"default": value}


Parameter = Annotated[ModelParameter, BeforeValidator(_shorthand_parameter)]


class Step(Strict):
    """One ordered step of the model, run like a step of a scikit-learn Pipeline."""

    id: StepId
    """Unique in the model; names the step's tasks and its asset folder."""
    name: str | None = None
    """Human-readable name; the id when left out."""
    description: str = ""
    """What the step does and why."""
    has_assets: StrictBool = False
    """Whether training saves a fitted object that inference loads."""
    assets_root: StoreRoot | None = None
    """Store this step's asset under another fsspec root than the model's."""
    assets_identifier: RelativePath | None = None
    """File name of the step's asset inside the version, e.g. ``scaler.joblib``."""
    parameters: StepParameters
    """What the step runs and on which data."""
    airflow: TaskOptions | None = None
    """Task arguments for this step's tasks, over the model's ``task_defaults``."""

    @model_validator(mode="after")
    @rule
    def _assets_consistent(self) -> Step:
        if self.has_assets and not self.assets_identifier:
            raise _fail(
                "assets_identifier",
                "has_assets is true but no 'assets_identifier' "
                "names the asset file (e.g. assets_identifier: model.joblib)",
                ("has_assets",),
            )
        for key in ("assets_identifier", "assets_root"):
            if not self.has_assets and getattr(self, key):
                message = (
                    f"'{key}' is set but has_assets is false: set has_assets: true or remove it"
                )
                raise _fail("assets_identifier", message, (key,))
        return self

    @property
    def title(self) -> str:
        """The name people read."""
        return self.name or self.id

    @property
    def serializer(self) -> str:
        """How the step's asset is written and read (the manifest records it).

        ``custom`` for its own ``save``/``load``, the ``serializer`` it names, else the one its
        ``assets_identifier``'s extension implies (joblib for an extension none claims).
        """
        params = self.parameters
        if params.save is not None:
            return "custom"
        return params.serializer or serializer_for(self.assets_identifier) or "joblib"


class Evaluation(Strict):
    """Scoring the live version on fresh labelled data: the ``<name>__evaluate`` DAG."""

    input: DataRef
    """Labelled data, with the label in ``target``; Airflow templates are rendered
    (``{{ dag_run.run_after | ds }}``)."""
    target: str
    """Column holding the true label."""
    metrics: list[MetricName | MetricFunction] = []
    """Metrics to compute, as a step lists them; the last step's ``metrics`` when left out."""
    schedule: ScheduleValue = None
    """When to evaluate: cron string, preset, interval or null for manual runs only."""
    rules: list[EvaluationRuleText] = []
    """Rules on the evaluation's metrics; when one fails, the live version is degraded
    (``accuracy >= 0.85``, or against its own test metric: ``accuracy >= trained - 0.05``)."""
    drift: Drift | None = None
    """Also compare each feature's distribution with the training data's; a feature beyond
    the threshold marks the version degraded too."""

    @property
    def parsed(self) -> list[Rule]:
        """The rules, parsed."""
        return [parse_rule(text, ("trained",)) for text in self.rules]


class ModelSpec(Strict):
    """A model: its ordered steps, where its versions live and when it trains and infers."""

    api_version: Literal["model-steps/v1"] = Field(alias="apiVersion")
    """Schema version of this file."""
    kind: Literal["Model"]
    """Marks the file as a model definition."""
    name: Name
    """Unique model name; the DAG ids are ``<name>__train`` and ``<name>__infer``."""
    description: str = ""
    """What the model predicts, for whom; shown on the DAGs and the model card."""
    tags: list[Annotated[str, Field(min_length=1, max_length=100)]] = []
    """Airflow tags on both DAGs."""
    domain: str | None = None
    """Business domain (e.g. ``fraud``); also a DAG tag."""
    status: Literal["deployed", "undeployed"] = "undeployed"
    """Whether real-time handlers may serve the model."""
    version: Annotated[str | None, BeforeValidator(lambda v: _label(v))] = None
    """The definition's own label (e.g. ``1.2.0``), recorded in every published version."""
    assets: Assets = Assets()
    """Where versions are stored."""
    scheduler: Literal["airflow"] = "airflow"
    """What schedules the model."""
    schedule: Schedule = Schedule()
    """When the DAGs run."""
    comments: list[Comment] = []
    """Dated history of why the model changed."""
    parameters: dict[Annotated[str, AfterValidator(rule(lambda v: _param_name(v)))], Parameter] = {}
    """Run parameters, overridable when a run is triggered."""
    metadata: dict[str, Any] = {}
    """Free-form facts: owner (the DAGs' owner), framework, dataset, seed..."""
    intended_use: str | None = None
    """What the model is for (model card)."""
    limitations: str | None = None
    """Where it should not be trusted (model card)."""
    license: str | None = None
    """License of the model and its assets."""
    airflow: AirflowOptions = AirflowOptions()
    """DAG and task settings passed through to Airflow."""
    gate: Gate = Gate()
    """What a trained candidate must pass before handlers serve it; without rules every
    successful training run is published."""
    card: Card = Card()
    """What only a person knows, for every version's model card."""
    evaluation: Evaluation | None = None
    """Scoring the live version on fresh labelled data, and when it counts as degraded."""
    steps: list[Step] = Field(min_length=1)
    """Ordered steps; the last one's infer output is the prediction."""

    @model_validator(mode="after")
    @rule
    def _coherent(self) -> ModelSpec:
        from model_steps.definition.semantics import semantic_issues  # it reads these models

        issues = semantic_issues(self)
        if issues:
            raise PydanticCustomError(SEMANTIC, "problems across fields", {"issues": issues})
        return self

    @property
    def directory(self) -> str:
        """The model's folder under the assets root."""
        return self.assets.directory or self.name

    @property
    def has_infer(self) -> bool:
        """A model defines inference when its first step says where inference data comes from."""
        first = self.steps[0].parameters.input
        return first is not None and first.infer is not None

    @property
    def owner(self) -> str:
        """The DAGs' owner: ``metadata.owner``, else Airflow's usual default."""
        return str(self.metadata.get("owner") or "airflow")

    def tables(self) -> Iterator[tuple[tuple[str | int, ...], DataRef, str]]:
        """Every table the model names, with its location and ``read`` or ``write``."""
        for index, step in enumerate(self.steps):
            for direction, verb in (("input", "read"), ("output", "write")):
                io = getattr(step.parameters, direction)
                for phase in ("train", "infer"):
                    ref = getattr(io, phase) if io is not None else None
                    if ref is not None:
                        yield ("steps", index, "parameters", direction, phase), ref, verb
        if self.evaluation is not None:
            yield ("evaluation", "input"), self.evaluation.input, "read"


def _label(value: Any) -> Any:
    """Refuse ``version: 1.10``: YAML reads it as the number 1.1, losing what was written."""
    if isinstance(value, float):
        raise _fail(
            "version",
            f"YAML reads this version as the number {value}; quote it "
            '(version: "1.10") so it stays as written',
        )
    return value


def _param_name(value: str) -> str:
    if not re.fullmatch(IDENTIFIER_PATTERN, value):
        raise _fail(
            "pattern", f"parameter name {value!r} is not valid: expected a Python identifier"
        )
    return value


def _extension(identifier: str | None) -> str:
    name = (identifier or "").rsplit("/", 1)[-1]
    return "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""


def serializer_for(identifier: str | None) -> str | None:
    """The serializer whose files have the identifier's extension, if one claims it."""
    extension = _extension(identifier)
    return next((n for n, found in SERIALIZER_EXTENSIONS.items() if extension in found), None)


PREDICTION_COLUMN = "prediction"
"""The column holding the predicted value (or label) in every output."""
OUTPUT_NEUTRAL = {"name", "description", "airflow", "has_assets", "assets_root"}
"""Step fields that cannot change what a step computes: left out of the spec hash."""


def spec_hash(model: ModelSpec) -> str:
    """Digest of everything that can change outputs; "the same model" means the same hash.

    Steps (what runs, on which data, with which arguments) and parameter defaults count;
    comments, descriptions and schedules do not.
    """
    canonical = {
        "steps": [
            step.model_dump(mode="json", by_alias=True, exclude=OUTPUT_NEUTRAL)
            for step in model.steps
        ],
        "parameters": {name: p.default for name, p in sorted(model.parameters.items())},
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a model file, for editors (``model-steps schema``).

    Field descriptions are the docstrings under each field in this module. They are read here
    rather than by pydantic (``use_attribute_docstrings``), which would scan every loaded module
    at import, a cost every DAG parse would pay for text only the schema shows.
    """
    schema = ModelSpec.model_json_schema(by_alias=True)
    documents = {"ModelSpec": schema, **schema.get("$defs", {})}
    for module in (sys.modules[__name__], governance):
        for name, descriptions in _field_docstrings(module).items():
            model = getattr(module, name)
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                continue
            properties = documents.get(name, {}).get("properties", {})
            for field, info in model.model_fields.items():
                if (info.alias or field) in properties and field in descriptions:
                    properties[info.alias or field].setdefault("description", descriptions[field])
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "model-steps/v1 Model"
    return schema


def _field_docstrings(module: types.ModuleType) -> dict[str, dict[str, str]]:
    """``{class: {field: docstring}}`` for the schema classes, from a module's source."""
    tree = ast.parse(inspect.getsource(module))
    found: dict[str, dict[str, str]] = {}
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        for statement, following in itertools.pairwise(node.body):
            if (
                isinstance(statement, ast.AnnAssign)
                and isinstance(statement.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                text = inspect.cleandoc(following.value.value)
                found.setdefault(node.name, {})[statement.target.id] = text
    return found
