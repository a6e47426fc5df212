"""The pandas keyword arguments a data table's ``options`` may set, per format and direction.

``options`` go to ``pandas.read_<format>`` or ``DataFrame.to_<format>``, and some of their
keywords change where or how data is read, not just its shape: ``storage_options`` (other
credentials or endpoints), ``filepath_or_buffer`` / ``path_or_buf`` (another file),
``engine`` (another parser), ``converters`` / ``date_parser`` / ``default_handler``
(callables), ``chunksize`` / ``iterator`` (not a table), a ``compression`` mapping (arguments
for the archive library). Only the keywords listed here are accepted: columns, types,
separators, headers, the index, missing-value markers and encodings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["OPTION_NAMES", "TABLE_OPTIONS", "option_refusal", "options_reference"]

_CSV_READ = (
    "sep delimiter header names index_col usecols dtype true_values false_values "
    "skipinitialspace skiprows skipfooter nrows na_values keep_default_na na_filter "
    "skip_blank_lines parse_dates date_format dayfirst thousands decimal lineterminator "
    "quotechar quoting doublequote escapechar comment encoding encoding_errors on_bad_lines "
    "compression dtype_backend"
)
_CSV_WRITE = (
    "sep na_rep float_format columns header index index_label encoding quoting quotechar "
    "lineterminator date_format doublequote escapechar decimal errors compression"
)
_JSON_READ = (
    "orient dtype convert_axes convert_dates keep_default_dates precise_float date_unit "
    "encoding encoding_errors lines nrows compression dtype_backend"
)
_JSON_WRITE = "orient date_format double_precision force_ascii date_unit lines index indent"

TABLE_OPTIONS: Mapping[str, Mapping[str, frozenset[str]]] = {
    "read": {
        "csv": frozenset(_CSV_READ.split()),
        "parquet": frozenset({"columns", "filters", "dtype_backend"}),
        "json": frozenset(_JSON_READ.split()),
    },
    "write": {
        "csv": frozenset(_CSV_WRITE.split()),
        "parquet": frozenset({"index", "compression", "row_group_size"}),
        "json": frozenset(_JSON_WRITE.split()),
    },
}
"""Direction (``read``/``write``) -> format -> the keywords ``options`` may set."""
OPTION_NAMES = tuple(
    sorted({k for f in TABLE_OPTIONS.values() for keys in f.values() for k in keys})
)
"""Every keyword some table accepts: the JSON Schema's names for ``options``, for editors."""
_ING = {"read": "reading", "write": "writing"}
_PLAIN_TEXT = frozenset({"compression"})
"""Keywords whose value must be a name (or null): a mapping would pass arguments on."""


def option_refusal(direction: str, fmt: str, key: str, value: Any) -> str | None:
    """Why ``options`` may not set ``key`` for this table; None when it may."""
    allowed = TABLE_OPTIONS[direction].get(fmt, frozenset())
    if key not in allowed:
        return (
            f"option {key!r} is not accepted when {_ING[direction]} {fmt}: expected one of "
            f"{', '.join(sorted(allowed))}"
        )
    if key in _PLAIN_TEXT and not (value is None or isinstance(value, str)):
        return (
            f"option {key!r} must be a name such as 'gzip' (or null), got a {type(value).__name__}"
        )
    return None


def options_reference() -> str:
    """The accepted keywords in words, for the ``options`` field's description."""
    parts = [
        f"{direction} {fmt}: {', '.join(f'``{k}``' for k in sorted(keys))}"
        for direction, formats in TABLE_OPTIONS.items()
        for fmt, keys in formats.items()
    ]
    return "; ".join(parts)
