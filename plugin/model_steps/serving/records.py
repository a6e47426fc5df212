"""What a real-time handler takes in and gives out: records in, predictions out.

A serving process receives records as JSON (one mapping, or a list of them) or as a pandas
DataFrame from Python callers. They are checked against what the version was trained on (its
first step's input columns and their dtypes, from the manifest) before any model sees them, so
a caller learns which column is missing or which value is not a number, instead of reading a
scikit-learn traceback. The checks cost a few column comparisons per call, never a loop over
rows of a DataFrame, and a frame that already fits passes through without a copy.

Values are strict by default: a number column takes JSON numbers (or null), never ``true`` or
``"19.02"``, since a client sending text where a number belongs has a bug worth hearing about;
``strict=False`` converts numeric text as before. Whatever a caller sends, the cost of refusing
it is bounded: "did you mean" runs for the first few unknown columns only, and names and values
are shortened in messages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from typing import TYPE_CHECKING, Any, TypeAlias, cast

from model_steps.errors import InvalidInputError, did_you_mean
from model_steps.libraries import library
from model_steps.runtime.steps import column_index

if TYPE_CHECKING:
    from pandas import DataFrame, Series  # type: ignore[import-untyped, unused-ignore]

    from model_steps.definition.schema import Step
    from model_steps.store.manifest import Manifest

__all__ = [
    "Checked",
    "InputSchema",
    "Prediction",
    "Records",
    "carried_frame",
    "checked_records",
    "input_frame",
]

Records: TypeAlias = "Sequence[Mapping[str, Any]] | Mapping[str, Any] | DataFrame"
"""A list of records, one record, or a DataFrame."""
NUMERIC_KINDS = "biuf"
"""numpy dtype kinds a model trained on numbers accepts as they are (lenient values)."""
STRICT_NUMERIC_KINDS = "iuf"
"""The same, strict: a boolean is not a number."""
REPORTED_UNKNOWN = 5
"""Unknown columns named (with "did you mean") in a refusal; the rest are counted."""
SHOWN_CHARS = 60
"""Longest column name or value quoted in a message."""
SUGGEST_CHARS = 100
"""Longest unknown name "did you mean" is computed for (its cost grows with the square)."""
NESTED = (list, tuple, dict, set)
"""Containers a cell must not hold (JSON arrays and objects)."""


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
    floats: bool = False
    """Every column was trained as floating point: records of numbers take the fast path."""
    integers: frozenset[str] = frozenset()
    """Numeric columns trained as integers (their whole numbers stay integers)."""
    row: Any = field(default=None, compare=False, repr=False)
    """The values of one record in training order (``operator.itemgetter``)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "row", _row_getter(self.columns))

    @classmethod
    def of(cls, manifest: Manifest, first: Step) -> InputSchema:
        """The schema of ``manifest``'s version, whose first step is ``first``."""
        record = manifest.steps[0]
        training = first.parameters.training
        kinds = {column: library("numpy").dtype(d).kind for column, d in record.dtypes_in.items()}
        columns = tuple(record.columns_in)
        return cls(
            model=manifest.model,
            version=manifest.version,
            columns=columns,
            numeric=frozenset(column for column, kind in kinds.items() if kind in NUMERIC_KINDS),
            ignored=frozenset([training.target] if training and training.target else []),
            selects=bool(training and training.features),
            carried=tuple(first.parameters.carry),
            floats=bool(columns) and all(kinds.get(column) == "f" for column in columns),
            integers=frozenset(column for column, kind in kinds.items() if kind in "iu"),
        )

    def describe(self) -> str:
        """The columns, for messages."""
        reads = f"version {self.version} of {self.model} reads {', '.join(self.columns)}"
        return reads + (f" and carries {', '.join(self.carried)}" if self.carried else "")


def input_frame(records: Records, schema: InputSchema, *, strict: bool = True) -> DataFrame:
    """``records`` as a frame with exactly the schema's columns, in order, numbers as numbers.

    Records of plain numbers for a model trained on floating-point columns (the common case)
    become one float array, about as cheap as ``pd.DataFrame(records)``; anything else takes
    the column-by-column path that finds and names what is wrong.

    Raises:
        InvalidInputError: no records, a record that is not a mapping, missing or unknown
            columns, a value that is not a number in a numeric column (text or a boolean, unless
            ``strict`` is off), or a nested value.
    """
    pd = library("pandas")
    if isinstance(records, pd.DataFrame):
        frame = _select(records, schema)
    else:
        mappings = _mappings(records)
        fast = _float_frame(mappings, schema)
        if fast is not None:
            return fast
        frame = _from_records(mappings, schema)
    if len(frame) == 0:
        raise InvalidInputError("no records to predict: send at least one record")
    return _convert(frame, schema, strict)


def _row_getter(columns: tuple[str, ...]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """A record's values in ``columns`` order, as a tuple, computed in C (``itemgetter``)."""
    if len(columns) < 2:  # itemgetter returns a bare value for one column, fails for none
        return lambda record: tuple(record[column] for column in columns)
    getter: Any = itemgetter  # (mypy cannot expand itemgetter's overloads over a star tuple)
    return cast("Callable[[Mapping[str, Any]], tuple[Any, ...]]", getter(*columns))


def _float_frame(records: Sequence[Mapping[str, Any]], schema: InputSchema) -> DataFrame | None:
    """Records holding exactly the schema's columns, all numbers, as one float frame; else None."""
    if not schema.floats or not records:
        return None
    width = len(schema.columns) + len(schema.carried)  # carried ones are checked apart
    if any(len(record) != width for record in records):
        return None
    try:
        rows = [schema.row(record) for record in records]
    except (KeyError, TypeError):
        return None
    if not set(map(type, chain.from_iterable(rows))) <= {float, int}:
        return None
    values = library("numpy").array(rows, dtype="float64")
    return library("pandas").DataFrame(values, columns=column_index(schema.columns), copy=False)


@dataclass(frozen=True)
class Checked:
    """Records checked against a version: the model's input, and the columns carried past it."""

    frame: DataFrame
    """The version's input columns, in training order, numbers as numbers."""
    carried: DataFrame | None
    """The carried columns as they came, one row per record (None when the version has none)."""


def checked_records(records: Records, schema: InputSchema, *, strict: bool = True) -> Checked:
    """``records`` checked: the model's input (:func:`input_frame`) and the carried columns.

    Raises:
        InvalidInputError: as :func:`input_frame`, or a record lacks a carried column.
    """
    frame = input_frame(records, schema, strict=strict)
    return Checked(frame, carried_frame(records, schema))


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
        frame = records.rename(columns=str)
        missing = [column for column in schema.carried if column not in frame.columns]
        if missing:
            raise InvalidInputError(_column_problems(missing, [], 0, schema))
        return frame[list(schema.carried)]
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
    if records:
        _check_columns(set().union(*records), schema, _in_order(records))
    columns = {column: [record.get(column) for record in records] for column in schema.columns}
    return library("pandas").DataFrame(columns)


def _in_order(records: Sequence[Mapping[str, Any]]) -> Iterable[str]:
    """Every key in record order, so the columns named in a refusal do not vary by run."""
    return chain.from_iterable(records)


def _select(frame: DataFrame, schema: InputSchema) -> DataFrame:
    """The schema's columns in training order; extra columns are refused unless selected."""
    if tuple(frame.columns) == schema.columns:
        return frame
    if any(not isinstance(column, str) for column in frame.columns):
        frame = frame.rename(columns=str)
    _check_columns(set(frame.columns), schema, frame.columns)
    return frame[list(schema.columns)]


def _check_columns(given: set[str], schema: InputSchema, ordered: Iterable[str]) -> None:
    missing = [column for column in (*schema.columns, *schema.carried) if column not in given]
    known = set(schema.columns) | schema.ignored | set(schema.carried)
    unknown = 0 if schema.selects else len(given - known)
    if missing or unknown:
        first = _first_unknown(ordered, known) if unknown else []
        raise InvalidInputError(_column_problems(missing, first, unknown, schema))


def _first_unknown(ordered: Iterable[str], known: set[str]) -> list[str]:
    """The first few unknown columns, in the order the caller sent them."""
    found: dict[str, None] = {}
    for column in ordered:
        if column not in known:
            found[str(column)] = None
            if len(found) == REPORTED_UNKNOWN:
                break
    return list(found)


def _column_problems(
    missing: list[str], unknown: list[str], count: int, schema: InputSchema
) -> str:
    problems = []
    if missing:
        problems.append(f"missing column(s) {', '.join(map(repr, missing))}")
    for column in unknown:
        close = did_you_mean(column, schema.columns) if len(column) <= SUGGEST_CHARS else ()
        hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
        problems.append(f"unknown column {_shown(column)}{hint}")
    if count > len(unknown):
        problems.append(f"{count - len(unknown)} more unknown columns")
    return f"{'; '.join(problems)}: {schema.describe()}"


def _shown(value: Any) -> str:
    """A value or name as a message quotes it, shortened: a caller controls its length."""
    text = ("true" if value else "false") if isinstance(value, bool) else repr(value)
    return text if len(text) <= SHOWN_CHARS else f"{text[: SHOWN_CHARS - 5]}...{text[-2:]}"


def _convert(frame: DataFrame, schema: InputSchema, strict: bool) -> DataFrame:
    """Nested values are refused, and so are numeric columns that did not arrive as numbers.

    With ``strict`` off, numeric text is converted instead, once per column.
    """
    kinds = STRICT_NUMERIC_KINDS if strict else NUMERIC_KINDS
    wrong = []
    for column, dtype in zip(schema.columns, frame.dtypes, strict=True):
        if dtype.kind == "O":
            _refuse_nested(frame[column], column)
        if column in schema.numeric and dtype.kind not in kinds:
            wrong.append(column)
    if not wrong:
        return frame
    convert = _strict_numbers if strict else _numbers
    return frame.assign(**{column: convert(frame[column], column) for column in wrong})


def _refuse_nested(values: Series, column: str) -> None:
    """A cell holds one value: an array or an object nested in a record is refused."""
    for position, value in enumerate(values):
        if isinstance(value, NESTED):
            raise InvalidInputError(
                f"column {column!r}, record {position}: expected a number, text, true/false "
                f"or null, got {_json_kind(value)}"
            )


def _strict_numbers(values: Series, column: str) -> Series:
    """Numbers (and missing values) only: text and booleans are the caller's mistake."""
    numpy = library("numpy")
    for position, value in enumerate(values):
        number = isinstance(value, int | float | numpy.integer | numpy.floating)
        if isinstance(value, bool | numpy.bool_) or not (number or value is None):
            raise InvalidInputError(
                f"column {column!r} takes numbers; record {position} has {_shown(value)} "
                f"({_json_kind(value)})"
            )
    return library("pandas").to_numeric(values)


def _json_kind(value: Any) -> str:
    """What a value is, in JSON's words where it came from JSON."""
    if isinstance(value, bool | library("numpy").bool_):
        return "a boolean"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return "text" if isinstance(value, str) else type(value).__name__


def _numbers(values: Series, column: str) -> Series:
    pd = library("pandas")
    numbers = pd.to_numeric(values, errors="coerce")
    refused = numbers.isna() & values.notna()
    if refused.any():
        position = int(refused.to_numpy().argmax())
        raise InvalidInputError(
            f"column {column!r} takes numbers; record {position} has "
            f"{_shown(values.iloc[position])}"
        )
    return numbers
