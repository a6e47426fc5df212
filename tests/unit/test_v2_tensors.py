"""Inference requests of the Open Inference Protocol are decoded strictly and cheaply."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from model_steps.errors import InvalidInputError
from model_steps.serving.v2_tensors import parse_request


def request(*inputs: dict[str, object], **fields: object) -> bytes:
    return json.dumps({"inputs": list(inputs), **fields}).encode()


def fp64(name: str, shape: list[int], data: object) -> dict[str, object]:
    return {"name": name, "datatype": "FP64", "shape": shape, "data": data}


def test_nested_json_data_is_read_row_major() -> None:
    (tensor,) = parse_request(request(fp64("x", [2, 2], [[1.0, 2.0], [3.0, 4.0]])), None).inputs
    assert tensor.shape == (2, 2)
    assert tensor.values.tolist() == [1.0, 2.0, 3.0, 4.0]


def test_binary_bytes_elements_are_length_prefixed_text() -> None:
    data = b"".join(struct.pack("<I", len(t)) + t for t in (b"a", b"\xc3\xa9t\xc3\xa9"))
    header = request(
        {
            "name": "id",
            "datatype": "BYTES",
            "shape": [2],
            "parameters": {"binary_data_size": len(data)},
        }
    )
    (tensor,) = parse_request(header + data, str(len(header))).inputs
    assert tensor.values.tolist() == ["a", "été"]


def test_binary_numbers_are_little_endian() -> None:
    data = np.array([1.5, -2.0], dtype="<f8").tobytes()
    header = request(
        {"name": "x", "datatype": "FP64", "shape": [2, 1], "parameters": {"binary_data_size": 16}}
    )
    (tensor,) = parse_request(header + data, str(len(header))).inputs
    assert tensor.values.tolist() == [1.5, -2.0]


def test_binary_data_no_input_claims_is_refused() -> None:
    body = request(fp64("x", [1], [1.0]))
    with pytest.raises(InvalidInputError, match="4 bytes of binary data no input claims"):
        parse_request(body + b"\0\0\0\0", str(len(body)))


def test_a_header_length_beyond_the_body_is_refused() -> None:
    body = request(fp64("x", [1], [1.0]))
    with pytest.raises(InvalidInputError, match="Inference-Header-Content-Length"):
        parse_request(body, str(len(body) + 1))


def test_a_huge_shape_with_little_data_is_refused_before_allocating() -> None:
    with pytest.raises(InvalidInputError, match="holds 1000000000000 elements, its data 1"):
        parse_request(request(fp64("x", [10**12], [1.0])), None)


def test_ragged_data_does_not_fill_its_shape() -> None:
    with pytest.raises(InvalidInputError, match="holds 4 elements, its data 3"):
        parse_request(request(fp64("x", [2, 2], [[1.0, 2.0], [3.0]])), None)


def test_deeply_nested_json_is_refused_as_not_json() -> None:
    body = b'{"inputs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(InvalidInputError, match="not valid JSON"):
        parse_request(body, None)


def test_an_unknown_datatype_names_the_known_ones() -> None:
    with pytest.raises(InvalidInputError, match="is not one of BOOL, UINT8"):
        parse_request(request({"name": "x", "datatype": "FP128", "shape": [1], "data": [1]}), None)


def test_duplicate_input_names_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="input names must be unique"):
        parse_request(request(fp64("x", [1], [1.0]), fp64("x", [1], [2.0])), None)


def test_a_request_without_inputs_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="needs 'inputs'"):
        parse_request(b'{"inputs": []}', None)
