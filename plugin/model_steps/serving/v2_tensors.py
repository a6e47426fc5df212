"""Tensors of the Open Inference Protocol (v2): a request's inputs to records, predictions back.

An inference request names its inputs as tensors: ``name``, ``datatype`` (``FP64``, ``INT64``,
``BYTES``...), ``shape`` and row-major ``data``, in JSON or, with the binary tensor extension,
as raw little-endian bytes after the JSON header (its length in the
``Inference-Header-Content-Length`` header; a ``BYTES`` element is a 4-byte length then its
bytes). A model's records arrive either as one input per column, shaped ``[N]`` or ``[N, 1]``
(as MLServer's pandas codec and most clients send a table), or as one ``[N, C]`` input holding
the C feature columns in training order (as a numpy client sends a matrix), with any carried
column as an input of its own. Predictions go back as one named tensor per column of what
``/predict`` answers: carried columns, ``prediction``, and one column of probabilities per class.

Values are checked as strictly as ``/predict`` checks JSON records: a number tensor holds JSON
numbers, never booleans or text, and the element count must match the shape before anything is
allocated from it. numpy and pandas are imported only when a request is decoded.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from model_steps.errors import InvalidInputError, TooManyRecordsError
from model_steps.libraries import library

if TYPE_CHECKING:
    from pandas import DataFrame  # type: ignore[import-untyped, unused-ignore]

    from model_steps.serving.records import InputSchema

__all__ = [
    "DATATYPES",
    "InferRequest",
    "Tensor",
    "encode_outputs",
    "input_metadata",
    "parse_request",
    "tensors_frame",
]

DATATYPES: Mapping[str, str] = {
    "BOOL": "?",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
    "BYTES": "O",
}
"""The protocol's datatypes and the numpy dtype of their binary form (``O``: length-prefixed)."""
JSON_KINDS: Mapping[str, tuple[type, ...]] = {"BOOL": (bool,), "BYTES": (str,)}
"""Python types JSON data may hold for a datatype; every other one takes numbers only."""
NUMBERS = (int, float)
FEATURES = "features"
"""The name metadata gives the one ``[N, C]`` input (any name not a column is accepted)."""


@dataclass(frozen=True)
class Tensor:
    """One input: its name, datatype, shape and elements (a flat numpy array, row-major)."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    values: Any


@dataclass(frozen=True)
class InferRequest:
    """What an inference request asks: its inputs, which outputs, and in which encoding."""

    id: str | None
    inputs: tuple[Tensor, ...]
    outputs: tuple[str, ...] | None
    """The outputs asked for by name (None: all of them)."""
    binary: frozenset[str]
    """Outputs to send as binary data after the JSON answer."""
    binary_all: bool
    """``binary_data_output``: every output is sent as binary data."""


def parse_request(body: bytes, header_length: str | None) -> InferRequest:
    """The request in ``body``: JSON, or a JSON header followed by binary tensor data.

    Raises:
        InvalidInputError: not an inference request, an unknown datatype, data that does not
            match its shape or datatype, or binary data that does not add up.
    """
    length = _header_length(header_length, len(body))
    document = _json_object(body[:length])
    binary = memoryview(body)[length:]
    inputs = document.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidInputError("an inference request needs 'inputs': a non-empty list of tensors")
    offset = 0
    tensors = []
    for position, spec in enumerate(inputs):
        tensor, used = _tensor(spec, position, binary[offset:])
        tensors.append(tensor)
        offset += used
    if offset != len(binary):
        raise InvalidInputError(
            f"the request has {len(binary) - offset} bytes of binary data no input claims"
        )
    names = [tensor.name for tensor in tensors]
    if len(set(names)) != len(names):
        raise InvalidInputError(f"input names must be unique, got {names}")
    requested, wanted_binary = _requested(document.get("outputs"))
    parameters = document.get("parameters") or {}
    request_id = document.get("id")
    return InferRequest(
        id=str(request_id) if request_id is not None else None,
        inputs=tuple(tensors),
        outputs=requested,
        binary=wanted_binary,
        binary_all=isinstance(parameters, dict) and parameters.get("binary_data_output") is True,
    )


def _header_length(header: str | None, size: int) -> int:
    if header is None:
        return size
    if not header.strip().isdigit() or int(header) > size:
        raise InvalidInputError(
            f"Inference-Header-Content-Length must be the JSON header's length in bytes "
            f"(at most the body's {size}), got {header[:40]!r}"
        )
    return int(header)


def _json_object(text: bytes) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise InvalidInputError(f"the request is not valid JSON: {str(error)[:200]}") from None
    if not isinstance(document, dict):
        raise InvalidInputError("an inference request is a JSON object with 'inputs'")
    return document


def _tensor(spec: Any, position: int, binary: memoryview) -> tuple[Tensor, int]:
    """One input tensor and how many bytes of the binary data it took."""
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise InvalidInputError(f"input {position} must be an object with a 'name'")
    name, datatype, shape = spec["name"], spec.get("datatype"), spec.get("shape")
    where = f"input {name[:60]!r}"
    if not isinstance(datatype, str) or datatype not in DATATYPES:
        raise InvalidInputError(
            f"{where}: datatype {str(datatype)[:20]!r} is not one of {', '.join(DATATYPES)}"
        )
    if not isinstance(shape, list) or not all(_whole(d) and d >= 0 for d in shape):
        raise InvalidInputError(f"{where}: shape must be a list of sizes, got {str(shape)[:60]}")
    count = math.prod(shape)
    parameters = spec.get("parameters") or {}
    size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
    if size is not None:
        if not _whole(size) or size > len(binary):
            raise InvalidInputError(
                f"{where}: binary_data_size {str(size)[:20]} is more than the "
                f"{len(binary)} bytes of binary data left"
            )
        values = _from_binary(bytes(binary[:size]), datatype, count, where)
        return Tensor(name, datatype, tuple(shape), values), size
    if "data" not in spec:
        raise InvalidInputError(f"{where} has neither 'data' nor binary data")
    values = _from_json(spec["data"], datatype, count, where)
    return Tensor(name, datatype, tuple(shape), values), 0


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _flat(data: Any, limit: int) -> list[Any]:
    """Row-major elements of nested JSON arrays; stops past ``limit`` (the shape's count)."""
    flat: list[Any] = []
    stack: list[Iterator[Any]] = [iter(data if isinstance(data, list) else [data])]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            flat.append(item)
            if len(flat) > limit:
                return flat
        else:
            stack.pop()
    return flat


def _from_json(data: Any, datatype: str, count: int, where: str) -> Any:
    numpy = library("numpy")
    flat = _flat(data, count)
    if len(flat) != count:
        more = "more" if len(flat) > count else str(len(flat))
        raise InvalidInputError(f"{where}: its shape holds {count} elements, its data {more}")
    kinds = JSON_KINDS.get(datatype, NUMBERS)
    for position, value in enumerate(flat):
        if not isinstance(value, kinds) or (kinds is NUMBERS and isinstance(value, bool)):
            raise InvalidInputError(
                f"{where}: {datatype} data takes {_kind_names(datatype)}; element {position} "
                f"is {_kind(value)}"
            )
    try:
        return numpy.array(flat, dtype=object if datatype == "BYTES" else DATATYPES[datatype])
    except (OverflowError, ValueError) as error:
        raise InvalidInputError(f"{where}: {error}") from None


def _kind_names(datatype: str) -> str:
    return {"BOOL": "true or false", "BYTES": "strings"}.get(datatype, "numbers")


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "text"
    if value is None:
        return "null"
    return "an object" if isinstance(value, dict) else type(value).__name__


def _from_binary(data: bytes, datatype: str, count: int, where: str) -> Any:
    numpy = library("numpy")
    if datatype == "BYTES":
        return numpy.array(_length_prefixed(data, count, where), dtype=object)
    dtype = numpy.dtype(DATATYPES[datatype])
    if len(data) != count * dtype.itemsize:
        raise InvalidInputError(
            f"{where}: {count} {datatype} elements take {count * dtype.itemsize} bytes, "
            f"its binary data has {len(data)}"
        )
    return numpy.frombuffer(data, dtype=dtype)


def _length_prefixed(data: bytes, count: int, where: str) -> list[str]:
    """``BYTES`` elements of the binary extension: a 4-byte little-endian length, then bytes."""
    found: list[str] = []
    offset = 0
    while offset < len(data):
        if len(found) == count or offset + 4 > len(data):
            break
        (size,) = struct.unpack_from("<I", data, offset)
        element = data[offset + 4 : offset + 4 + size]
        if len(element) != size:
            break
        try:
            found.append(element.decode("utf-8"))
        except UnicodeDecodeError:
            raise InvalidInputError(f"{where}: element {len(found)} is not UTF-8 text") from None
        offset += 4 + size
    if len(found) != count or offset != len(data):
        raise InvalidInputError(
            f"{where}: its binary data does not hold {count} length-prefixed BYTES elements"
        )
    return found


def _requested(outputs: Any) -> tuple[tuple[str, ...] | None, frozenset[str]]:
    if outputs is None:
        return None, frozenset()
    if not isinstance(outputs, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs
    ):
        raise InvalidInputError("'outputs' must be a list of objects with a 'name'")
    binary = {
        o["name"]
        for o in outputs
        if isinstance(o.get("parameters"), dict) and o["parameters"].get("binary_data") is True
    }
    return tuple(o["name"] for o in outputs), frozenset(binary)


# -- inputs to the version's records ----------------------------------------------------------


def input_metadata(schema: InputSchema) -> list[dict[str, Any]]:
    """The inputs a version takes, one per column, as model metadata lists them."""
    inputs = [
        {"name": column, "datatype": _column_datatype(column, schema), "shape": [-1, 1]}
        for column in schema.columns
    ]
    return inputs + [{"name": c, "datatype": "BYTES", "shape": [-1, 1]} for c in schema.carried]


def _column_datatype(column: str, schema: InputSchema) -> str:
    if column in schema.integers:
        return "INT64"
    return "FP64" if column in schema.numeric else "BYTES"


def tensors_frame(inputs: Sequence[Tensor], schema: InputSchema, max_rows: int) -> DataFrame:
    """The request's records as a frame, for the handler to check as it checks ``/predict``'s.

    Raises:
        InvalidInputError: inputs that are neither one per column nor one ``[N, C]`` matrix,
            or that disagree on the number of rows.
        TooManyRecordsError: more than ``max_rows`` records.
    """
    known = {*schema.columns, *schema.carried, *schema.ignored}
    columns: dict[str, Any] = {}
    rows: set[int] = set()
    matrix = [tensor for tensor in inputs if tensor.name not in known]
    if len(matrix) > 1 or (matrix and not _fits_matrix(matrix[0], schema)):
        names = ", ".join(repr(t.name[:60]) for t in matrix[:5])
        raise InvalidInputError(
            f"unknown input(s) {names}: send one input per column ({', '.join(schema.columns)}) "
            f"shaped [N] or [N, 1], or one [N, {len(schema.columns)}] input holding those "
            f"columns in that order"
        )
    for tensor in inputs:
        if any(tensor is found for found in matrix):
            table = tensor.values.reshape(tensor.shape)
            columns.update({c: _column(table[:, i]) for i, c in enumerate(schema.columns)})
        elif len(tensor.shape) == 1 or (len(tensor.shape) == 2 and tensor.shape[1] == 1):
            columns[tensor.name] = _column(tensor.values)
        else:
            raise InvalidInputError(
                f"input {tensor.name[:60]!r} is one column: shape [N] or [N, 1], "
                f"got {list(tensor.shape)}"
            )
        rows.add(tensor.shape[0] if tensor.shape else 1)
    if len(rows) > 1:
        raise InvalidInputError(f"the inputs must all have the same rows, got {sorted(rows)}")
    (count,) = rows
    if count > max_rows:
        raise TooManyRecordsError(
            f"{count} records are over this server's limit of {max_rows} per request"
        )
    return library("pandas").DataFrame(columns, index=range(count))


def _fits_matrix(tensor: Tensor, schema: InputSchema) -> bool:
    return len(tensor.shape) == 2 and tensor.shape[1] == len(schema.columns)


def _column(values: Any) -> Any:
    """A column's values: numbers stay a numpy array, text becomes a list of str."""
    return values.tolist() if values.dtype.kind == "O" else values


# -- predictions to output tensors ------------------------------------------------------------


def encode_outputs(
    frame: DataFrame, request: InferRequest
) -> tuple[list[dict[str, Any]], list[bytes]]:
    """One tensor per column of the prediction frame (those asked for), and binary parts.

    Raises:
        InvalidInputError: an output was asked for that the version does not give.
    """
    names = [str(column) for column in frame.columns]
    wanted = request.outputs if request.outputs is not None else tuple(names)
    unknown = [name for name in wanted if name not in names]
    if unknown:
        raise InvalidInputError(
            f"unknown output(s) {', '.join(map(repr, unknown[:5]))}: this version gives "
            f"{', '.join(names)}"
        )
    outputs, parts = [], []
    for name in wanted:
        values = frame.iloc[:, names.index(name)]
        datatype, data = _output_values(values)
        tensor: dict[str, Any] = {"name": name, "datatype": datatype, "shape": [len(values)]}
        if request.binary_all or name in request.binary:
            part = _to_binary(data, datatype)
            tensor["parameters"] = {"binary_data_size": len(part)}
            parts.append(part)
        else:
            tensor["data"] = data
        outputs.append(tensor)
    return outputs, parts


def output_datatype(values: Any) -> str:
    """The protocol's datatype for a prediction column (pandas dtype)."""
    kind = values.dtype.kind
    if kind == "f":
        return "FP64"
    if kind in "iu":
        return "INT64" if kind == "i" else "UINT64"
    return "BOOL" if kind == "b" else "BYTES"


def _output_values(values: Any) -> tuple[str, list[Any]]:
    datatype = output_datatype(values)
    if datatype == "BYTES":
        return datatype, ["" if v is None else str(v) for v in values.astype(object).tolist()]
    data: list[Any] = values.tolist()
    if datatype == "FP64" and any(math.isnan(v) for v in data):
        raise InvalidInputError(
            "the version predicted missing values (NaN), which a tensor cannot carry in JSON; "
            "ask for binary outputs"
        )
    return datatype, data


def _to_binary(data: list[Any], datatype: str) -> bytes:
    if datatype == "BYTES":
        encoded = [str(value).encode("utf-8") for value in data]
        return b"".join(struct.pack("<I", len(e)) + e for e in encoded)
    return bytes(library("numpy").asarray(data, dtype=DATATYPES[datatype]).tobytes())
