"""Request bodies to checked frames: JSON records read against the version's columns as they parse.

A body is decoded straight into one typed record per row (msgspec, in C): the version's
columns with their kinds, no other key. So a record of half a million near-miss keys stops at
the first unknown one instead of building a dictionary of all of them, ``true`` or ``"19.02"``
for a number column is refused where it stands, and an array nested where a value belongs is
refused without reading further. The values come out in training order, ready for one array.

A body the typed read refuses is read again the general way, for the message that says what
is wrong ("did you mean"...), when it is small; a large one gets the parser's own message, so
its cost stays bounded by what the typed read already did. Lenient values (numeric text
accepted) always take the general way.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any, Union

import msgspec

from model_steps.errors import InvalidInputError, TooManyRecordsError
from model_steps.libraries import library
from model_steps.runtime.steps import column_index
from model_steps.serving.records import Checked, InputSchema, checked_records, input_frame

if TYPE_CHECKING:
    pass  # type: ignore[import-untyped, unused-ignore]

__all__ = ["json_frame", "parse_records"]

DETAILED_BYTES = 64 * 2**10
"""Refused bodies up to this size are read again for a detailed message."""
GENERAL = msgspec.json.Decoder()
_AT_BYTE = re.compile(r"\(byte (\d+)\)")
_SCALAR = Union[str, int, float, bool, None]  # noqa: UP007 - a runtime type for msgspec


def json_frame(
    body: bytes, schema: InputSchema, *, strict: bool, max_rows: int | None = None
) -> Checked:
    """The records of a JSON body, checked: the schema's columns, and the carried ones apart.

    Raises:
        InvalidInputError: the body is not an array of records (or one record) that fit the
            version's columns and value kinds.
        TooManyRecordsError: more than ``max_rows`` records (when given).
    """
    if strict:
        try:
            decoded = _decoder(schema).decode(body)
        except msgspec.ValidationError as error:
            if len(body) > DETAILED_BYTES:
                raise InvalidInputError(
                    f"the records do not fit: {error}; {schema.describe()}"
                ) from error
        except (msgspec.DecodeError, RecursionError):
            pass  # the general read names the problem
        else:
            return _typed_frame(decoded, schema, max_rows)
    return checked_records(parse_records(body, max_rows), schema, strict=strict)


def parse_records(body: bytes, max_rows: int | None = None) -> list[dict[str, Any]]:
    """The records of a request body: a JSON array of objects, or one object.

    msgspec parses JSON about six times faster than the standard library, and refuses what JSON
    does not allow (``NaN``, numbers out of range, invalid UTF-8). Nesting is bounded by its
    recursion limit, a 422 like any other bad body.
    """
    try:
        data = GENERAL.decode(body)
    except msgspec.MsgspecError as error:
        raise InvalidInputError(
            f"the request body is not valid JSON ({_json_problem(error, body)}); send an array "
            "of records"
        ) from error
    except RecursionError as error:
        raise InvalidInputError(
            "the request body is not valid JSON here: it nests arrays or objects too deeply; "
            "send an array of records (objects of column -> value)"
        ) from error
    records = [data] if isinstance(data, dict) else data
    if not isinstance(records, list):
        raise InvalidInputError(
            f"expected an array of records (objects, one key per column), got {_kind(data)}"
        )
    _check_count(len(records), max_rows)
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise InvalidInputError(
                f"record {index} is {_kind(record)}; each record must be an object with one "
                "key per column"
            )
    return records


def _check_count(count: int, max_rows: int | None) -> None:
    if not count:
        raise InvalidInputError("the array of records is empty: send at least one record")
    if max_rows is not None and count > max_rows:
        raise TooManyRecordsError(
            f"{count} records are over this server's limit of {max_rows} per request"
        )


@functools.lru_cache(maxsize=32)
def _decoder(schema: InputSchema) -> msgspec.json.Decoder[Any]:
    """A decoder of one record or an array of them, typed by the version's columns.

    Fields are named ``c0``, ``c1``... and renamed to the columns, so any column name works.
    Number columns take numbers or null, other columns any scalar; the carried columns follow
    them, any scalar, required; the columns a definition ignores (its target) are accepted and
    dropped.
    """
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = [
        (f"c{index}", _value_type(schema, column)) for index, column in enumerate(schema.columns)
    ]
    fields += [(f"k{index}", _SCALAR) for index in range(len(schema.carried))]
    ignored = sorted(schema.ignored - set(schema.columns))
    fields += [(f"i{index}", _SCALAR, None) for index in range(len(ignored))]
    rename = {f"c{index}": column for index, column in enumerate(schema.columns)}
    rename |= {f"k{index}": column for index, column in enumerate(schema.carried)}
    rename |= {f"i{index}": column for index, column in enumerate(ignored)}
    record = msgspec.defstruct(
        "Record", fields, rename=rename, forbid_unknown_fields=not schema.selects
    )
    return msgspec.json.Decoder(Union[list[record], record])  # type: ignore[valid-type]  # noqa: UP007


def _value_type(schema: InputSchema, column: str) -> Any:
    if column not in schema.numeric:
        return _SCALAR
    if column in schema.integers:
        return Union[int, float, None]  # noqa: UP007
    return Union[float, None]  # noqa: UP007


def _typed_frame(decoded: Any, schema: InputSchema, max_rows: int | None) -> Checked:
    records = decoded if isinstance(decoded, list) else [decoded]
    _check_count(len(records), max_rows)
    width = len(schema.columns)
    astuple = msgspec.structs.astuple
    rows = [astuple(record) for record in records]
    pd = library("pandas")
    carried = None
    if schema.carried:
        kept = [row[width : width + len(schema.carried)] for row in rows]
        carried = pd.DataFrame(kept, columns=list(schema.carried))
    rows = [row[:width] for row in rows]
    if schema.floats:
        values = library("numpy").array(rows, dtype="float64")
        frame = pd.DataFrame(values, columns=column_index(schema.columns), copy=False)
        return Checked(frame, carried)
    columns = dict(zip(schema.columns, map(list, zip(*rows, strict=True)), strict=True))
    return Checked(input_frame(pd.DataFrame(columns), schema), carried)


def _json_problem(error: Exception, body: bytes) -> str:
    """The parser's complaint, or what to send instead of a JavaScript constant."""
    found = _AT_BYTE.search(str(error))
    if found:
        start = body[int(found[1]) :]
        for constant in (b"NaN", b"Infinity", b"-Infinity"):
            if start.startswith(constant):
                return f"{constant.decode()} is not JSON: send null for a missing value"
    return str(error)


def _kind(value: Any) -> str:
    """A JSON value's type as the client wrote it."""
    if value is None:
        return "null"
    names = {bool: "a boolean", str: "a string", int: "a number", float: "a number"}
    return names.get(type(value), "an array" if isinstance(value, list) else "an object")
