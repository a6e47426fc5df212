"""What a real-time handler takes in and gives out: records in, predictions out.

A serving process receives records as JSON (one mapping, or a list of them) or as a pandas
DataFrame from Python callers. They are checked against what the version was trained on (its
first step's input columns and their dtypes, from the manifest) before any model sees them, so
a caller learns which column is missing or which value is not a number, instead of reading a
scikit-learn traceback. The checks cost a few column comparisons per call, never a loop over
rows of a DataFrame, and a frame that already fits passes through without a copy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from model_steps.errors import InvalidInputError, did_you_mean
from model_steps.libraries import library

if TYPE_CHECKING:
    from pandas import DataFrame, Series  # type: ignore[import-untyped, unused-ignore]

    from model_steps.definition.schema import Step
    from model_steps.store.manifest import Manifest

__all__ = ["InputSchema", "Prediction", "Records", "carried_frame", "input_frame"]

Records: TypeAlias = "Sequence[Mapping[str, Any]] | Mapping[str, Any] | DataFrame"
"""A list of records, one record, or a DataFrame."""
NUMERIC_KINDS = "biuf"
"""numpy dtype kinds a model trained on numbers accepts as they are."""


@dataclass(frozen=True)
class Prediction:
    """What one version of a model predicted for a batch of records, row for row.

    Row ``i`` of :attr:`frame` (and item ``i`` of :meth:`values`) answers record ``i``.
    """

    model: str
    """The model's name."""
    version: int
    """The version that answered: the whole call used this one version, even during a swap."""
    frame: DataFrame
    """The same table the infer DAG writes: the carried columns (the first step's ``carry``),
    then ``prediction`` (the value or label), then, for ``predict_proba``, one column per class
    named by its label. A step whose output has other columns gives those instead."""

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
    carried: tuple[str, ...] = ()
    """Columns every record must have that the model never sees, returned beside the
    predictions as they came (the first step's ``carry``)."""

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
            carried=tuple(first.parameters.carry),
        )

    def describe(self) -> str:
        """The columns, for messages."""
        reads = f"version {self.version} of {self.model} reads {', '.join(self.columns)}"
        return reads + (f" and carries {', '.join(self.carried)}" if self.carried else "")


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


def carried_frame(records: Records, schema: InputSchema) -> DataFrame | None:
    """The carried columns of ``records``, untouched, one row per record (None without any).

    :func:`input_frame` has already refused a frame without one; every record must have each
    (a missing id would answer a row nobody can join back).

    Raises:
        InvalidInputError: a record lacks a carried column.
    """
    if not schema.carried:
        return None
    pd = library("pandas")
    if isinstance(records, pd.DataFrame):
        return records.rename(columns=str)[list(schema.carried)]
    mappings = _mappings(records)
    for position, record in enumerate(mappings):
        missing = [column for column in schema.carried if column not in record]
        if missing:
            raise InvalidInputError(
                f"record {position} has no {', '.join(map(repr, missing))}, carried to the "
                f"response: {schema.describe()}"
            )
    return pd.DataFrame({c: [record[c] for record in mappings] for c in schema.carried})


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
    if tuple(frame.columns) == schema.columns and not schema.carried:
        return frame
    if any(not isinstance(column, str) for column in frame.columns):
        frame = frame.rename(columns=str)
    _check_columns(set(frame.columns), schema)
    return frame[list(schema.columns)]


def _check_columns(given: set[str], schema: InputSchema) -> None:
    missing = [column for column in (*schema.columns, *schema.carried) if column not in given]
    known = set(schema.columns) | schema.ignored | set(schema.carried)
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
