"""What a real-time handler takes in and gives out: records, predictions, status, metrics.

A serving process receives records as JSON (one mapping, or a list of them) or as a pandas
DataFrame from Python callers. They are checked against what the version was trained on (its
first step's input columns and their dtypes, from the manifest) before any model sees them, so
a caller learns which column is missing or which value is not a number, instead of reading a
scikit-learn traceback. The checks cost a few column comparisons per call, never a loop over
rows of a DataFrame, and a frame that already fits passes through without a copy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeAlias

from model_steps.errors import InvalidInputError, did_you_mean
from model_steps.imports import library

if TYPE_CHECKING:
    from pandas import DataFrame, Series  # type: ignore[import-untyped, unused-ignore]

    from model_steps.manifest import Manifest
    from model_steps.spec import Step

__all__ = ["HandlerStatus", "InputSchema", "Prediction", "Records", "input_frame", "metrics_text"]

Records: TypeAlias = "Sequence[Mapping[str, Any]] | Mapping[str, Any] | DataFrame"
"""A list of records, one record, or a DataFrame."""
NUMERIC_KINDS = "biuf"
"""numpy dtype kinds a model trained on numbers accepts as they are."""


@dataclass(frozen=True)
class Prediction:
    """What one version of a model predicted for a batch of records."""

    model: str
    version: int
    frame: DataFrame
    """The last step's output, as the infer DAG writes it."""

    def values(self) -> list[Any]:
        """JSON-ready predictions: one scalar per row for one column, else a dict per row.

        numpy scalars become Python numbers and missing values become None, so the list goes
        straight to ``json.dumps``.
        """
        frame = self.frame
        if frame.isna().to_numpy().any():
            frame = frame.astype(object).where(frame.notna(), None)
        if len(frame.columns) == 1:
            values: list[Any] = frame.iloc[:, 0].tolist()
            return values
        records: list[Any] = frame.rename(columns=str).to_dict(orient="records")
        return records


@dataclass(frozen=True)
class InputSchema:
    """The columns one version reads, in training order, and which of them hold numbers."""

    model: str
    version: int
    columns: tuple[str, ...]
    numeric: frozenset[str]
    ignored: frozenset[str]
    """Columns accepted and dropped (the target: records copied from training data have it)."""
    selects: bool
    """The definition lists its ``features``: other columns are ignored, as the infer DAG does."""

    @classmethod
    def of(cls, manifest: Manifest, first: Step) -> InputSchema:
        """The schema of ``manifest``'s version, whose first step is ``first``."""
        record = manifest.steps[0]
        training = first.parameters.training
        return cls(
            model=manifest.model,
            version=manifest.version,
            columns=tuple(record.columns_in),
            numeric=frozenset(
                column
                for column, dtype in record.dtypes_in.items()
                if library("numpy").dtype(dtype).kind in NUMERIC_KINDS
            ),
            ignored=frozenset([training.target] if training and training.target else []),
            selects=bool(training and training.features),
        )

    def describe(self) -> str:
        """The columns, for messages."""
        return f"version {self.version} of {self.model} reads {', '.join(self.columns)}"


def input_frame(records: Records, schema: InputSchema) -> DataFrame:
    """``records`` as a frame with exactly the schema's columns, in order, numbers as numbers.

    Raises:
        InvalidInputError: no records, a record that is not a mapping, missing or unknown
            columns, or a value that is not a number in a numeric column.
    """
    pd = library("pandas")
    if isinstance(records, pd.DataFrame):
        frame = _select(records, schema)
    else:
        frame = _from_records(_mappings(records), schema)
    if len(frame) == 0:
        raise InvalidInputError("no records to predict: send at least one record")
    return _convert(frame, schema)


def _mappings(records: Any) -> Sequence[Mapping[str, Any]]:
    if isinstance(records, Mapping):
        return [records]
    if isinstance(records, str | bytes) or not isinstance(records, Sequence):
        raise InvalidInputError(
            f"records must be a list of mappings (column -> value), one mapping or a "
            f"DataFrame, not {type(records).__name__}"
        )
    for position, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise InvalidInputError(
                f"record {position} is {type(record).__name__}, not a mapping of column -> value"
            )
    return records


def _from_records(records: Sequence[Mapping[str, Any]], schema: InputSchema) -> DataFrame:
    """One list per column, built straight from the records (pandas' own path is ~5x slower).

    A record without a column gives a missing value there, as pandas does.
    """
    _check_columns(set().union(*records) if records else set(schema.columns), schema)
    columns = {column: [record.get(column) for record in records] for column in schema.columns}
    return library("pandas").DataFrame(columns)


def _select(frame: DataFrame, schema: InputSchema) -> DataFrame:
    """The schema's columns in training order; extra columns are refused unless selected."""
    if tuple(frame.columns) == schema.columns:
        return frame
    if any(not isinstance(column, str) for column in frame.columns):
        frame = frame.rename(columns=str)
    _check_columns(set(frame.columns), schema)
    return frame[list(schema.columns)]


def _check_columns(given: set[str], schema: InputSchema) -> None:
    missing = [column for column in schema.columns if column not in given]
    known = set(schema.columns) | schema.ignored
    unknown = [] if schema.selects else sorted(str(c) for c in given - known)
    if missing or unknown:
        raise InvalidInputError(_column_problems(missing, unknown, schema))


def _column_problems(missing: list[str], unknown: list[str], schema: InputSchema) -> str:
    problems = []
    if missing:
        problems.append(f"missing column(s) {', '.join(map(repr, missing))}")
    for column in unknown:
        close = did_you_mean(column, schema.columns)
        hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
        problems.append(f"unknown column {column!r}{hint}")
    return f"{'; '.join(problems)}: {schema.describe()}"


def _convert(frame: DataFrame, schema: InputSchema) -> DataFrame:
    """Numeric columns that arrived as text (or mixed) become numbers, once, or are refused."""
    wrong = [
        column
        for column, dtype in zip(schema.columns, frame.dtypes, strict=True)
        if column in schema.numeric and dtype.kind not in NUMERIC_KINDS
    ]
    if not wrong:
        return frame
    return frame.assign(**{column: _numbers(frame[column], column) for column in wrong})


def _numbers(values: Series, column: str) -> Series:
    pd = library("pandas")
    numbers = pd.to_numeric(values, errors="coerce")
    refused = numbers.isna() & values.notna()
    if refused.any():
        position = int(refused.to_numpy().argmax())
        raise InvalidInputError(
            f"column {column!r} takes numbers; record {position} has {values.iloc[position]!r}"
        )
    return numbers


@dataclass(frozen=True)
class HandlerStatus:
    """A snapshot of what a handler serves and how its polling and reloads went."""

    model: str
    ready: bool
    version: int | None
    pinned: int | None
    loaded_at: datetime | None
    last_poll_at: datetime | None
    last_poll_ok_at: datetime | None
    polls: int
    poll_failures: int
    reloads: int
    reload_failures: int
    last_error: str | None
    last_reload_seconds: float | None
    """Load, verify and warm-up time of the last version swapped in."""
    last_publish_to_serving_seconds: float | None
    """From the pointer's ``published_at`` to the swap (not measured for rollbacks)."""
    unavailable_seconds: float
    """Time spent between versions in unload-first mode, when predict answers NotReadyError."""
    versions_in_memory: int
    loaded_bytes: int
    """Asset bytes of the versions held (two while a new one loads beside the old)."""
    poll_requests: int = 0
    """Storage requests made by polls: one per poll, one more when the pointer changed."""
    poll_bytes: int = 0
    """Pointer bytes read by polls: none unless the pointer changed."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: timestamps as ISO 8601 strings."""
        return {
            key: value.isoformat() if isinstance(value, datetime) else value
            for key, value in asdict(self).items()
        }


# -- Prometheus text format ------------------------------------------------------------------

PREFIX = "model_steps_handler_"
_METRICS: tuple[tuple[str, str, str, Callable[[HandlerStatus], float | None]], ...] = (
    ("ready", "gauge", "1 when a version is loaded and answering.", lambda s: s.ready),
    ("version", "gauge", "Version being served.", lambda s: s.version),
    ("pinned_version", "gauge", "Version pinned, whatever the pointer says.", lambda s: s.pinned),
    ("loaded_timestamp_seconds", "gauge", "When the served version was swapped in.",
     lambda s: _epoch(s.loaded_at)),
    ("last_poll_success_timestamp_seconds", "gauge", "When the store last answered a poll.",
     lambda s: _epoch(s.last_poll_ok_at)),
    ("polls_total", "counter", "Polls of the pointer.", lambda s: s.polls),
    ("poll_failures_total", "counter", "Polls that failed.", lambda s: s.poll_failures),
    ("poll_requests_total", "counter", "Storage requests made by polls.",
     lambda s: s.poll_requests),
    ("poll_bytes_total", "counter", "Pointer bytes read by polls.", lambda s: s.poll_bytes),
    ("reloads_total", "counter", "Versions swapped in.", lambda s: s.reloads),
    ("reload_failures_total", "counter", "Versions that failed to load.",
     lambda s: s.reload_failures),
    ("reload_seconds", "gauge", "Load, verify and warm-up time of the last version.",
     lambda s: s.last_reload_seconds),
    ("publish_to_serving_seconds", "gauge", "From publish to serving, for the last version.",
     lambda s: s.last_publish_to_serving_seconds),
    ("unavailable_seconds_total", "counter", "Time between versions in unload-first mode.",
     lambda s: s.unavailable_seconds),
    ("versions_in_memory", "gauge", "Versions held (two while one loads).",
     lambda s: s.versions_in_memory),
    ("loaded_bytes", "gauge", "Asset bytes of the versions held.", lambda s: s.loaded_bytes),
)  # fmt: skip


def metrics_text(statuses: Iterable[HandlerStatus]) -> str:
    """Prometheus text exposition of handlers' statuses; unknown values are left out."""
    statuses = list(statuses)
    lines = []
    for name, kind, help_text, value_of in _METRICS:
        lines += [f"# HELP {PREFIX}{name} {help_text}", f"# TYPE {PREFIX}{name} {kind}"]
        for status in statuses:
            value = value_of(status)
            if value is not None:
                sample = f'{PREFIX}{name}{{model="{_label(status.model)}"}}'
                lines.append(f"{sample} {_number(float(value))}")
    return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def _epoch(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment else None


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
