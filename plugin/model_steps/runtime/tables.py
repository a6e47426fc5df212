"""Tables in and out: the user's data through fsspec, and the frames tasks hand each other.

User tables are csv, parquet or JSON lines at an fsspec URL (a local path, ``s3://``,
``memory://``) that the deployment's :class:`DataPlaces` allow, checked before each read or
write; their ``options`` are the pandas keywords :mod:`model_steps.definition.table_options`
lists. Frames passed between tasks are parquet bytes, which keep dtypes, column names
and the index (so features and labels stay aligned after a shuffled split). pandas is imported
only when a table is actually read or written.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from model_steps.definition.table_options import option_refusal
from model_steps.errors import PermanentError
from model_steps.libraries import library
from model_steps.runtime.touched import note_read, note_write

if TYPE_CHECKING:
    from pandas import DataFrame  # type: ignore[import-untyped, unused-ignore]

    from model_steps.definition.data_locations import DataPlaces

__all__ = [
    "FORMATS",
    "frame_from_bytes",
    "frame_to_bytes",
    "read_columns",
    "read_options",
    "read_table",
    "write_options",
    "write_table",
]

READ_DEFAULTS: Mapping[str, Mapping[str, Any]] = {
    "csv": {},
    "parquet": {},
    "json": {"lines": True},
}
"""Format -> keyword arguments of ``pandas.read_<format>`` that ``options`` can override."""
WRITE_DEFAULTS: Mapping[str, Mapping[str, Any]] = {
    "csv": {"index": False},
    "parquet": {"index": False},
    "json": {"orient": "records", "lines": True},
}
"""Format -> keyword arguments of ``DataFrame.to_<format>``: tables hold columns, not the index."""
FORMATS = tuple(READ_DEFAULTS)


def read_table(
    url: str,
    fmt: str,
    *,
    places: DataPlaces,
    storage_options: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    columns: Sequence[str] | None = None,
) -> DataFrame:
    """Read a csv, parquet or JSON lines table; ``options`` go to the pandas reader.

    ``columns`` (when given, and ``options`` choose none) are the only ones read: parquet
    decodes only them and csv parses only them, so a wide table costs what its used columns do.

    Raises:
        FileNotFoundError: nothing is at ``url`` (the message names it).
        UnsafeUrlError: ``places`` refuse the URL.
        PermanentError: an option is not one tables accept.
    """
    kwargs = _kwargs(READ_DEFAULTS, "read", fmt, options)
    chosen = {"parquet": "columns", "csv": "usecols"}.get(fmt)
    if columns is not None and chosen is not None and chosen not in kwargs:
        kwargs[chosen] = list(columns)
    reader = getattr(library("pandas"), f"read_{fmt}")
    with _reading(url, fmt, places, storage_options) as handle:
        frame: DataFrame = reader(handle, **kwargs)
    if columns is not None and fmt == "json":
        frame = frame[[c for c in columns if c in frame.columns]]
    note_read(url, fmt, frame)  # lineage reports the columns actually read
    return frame


def read_columns(
    url: str,
    fmt: str,
    *,
    places: DataPlaces,
    storage_options: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
) -> list[str]:
    """The column names of a table, reading as little of it as the format allows.

    csv reads its header (``nrows=0``), JSON lines its first record and parquet its schema, so
    checking a large table's columns costs a request, not a download. ``options`` apply as in
    :func:`read_table` (``usecols``, parquet's ``columns``).

    Raises:
        FileNotFoundError: nothing is at ``url`` (the message names it).
        UnsafeUrlError: ``places`` refuse the URL.
        PermanentError: an option is not one tables accept.
    """
    kwargs = _kwargs(READ_DEFAULTS, "read", fmt, options)
    with _reading(url, fmt, places, storage_options) as handle:
        if fmt == "parquet":
            names = library("pyarrow.parquet").read_schema(handle).names
            wanted = kwargs.get("columns")
            return [str(n) for n in names if wanted is None or n in wanted]
        reader = getattr(library("pandas"), f"read_{fmt}")
        frame = reader(handle, **{**kwargs, "nrows": 0 if fmt == "csv" else 1})
        return [str(column) for column in frame.columns]


@contextmanager
def _reading(
    url: str, fmt: str, places: DataPlaces, storage_options: Mapping[str, Any] | None
) -> Iterator[IO[bytes]]:
    """``url`` opened for reading once ``places`` allow it; a missing table's error names it."""
    places.check(url, "the table")
    try:
        with fsspec.open(url, "rb", **(storage_options or {})) as handle:
            yield handle
    except FileNotFoundError as error:
        raise FileNotFoundError(f"no {fmt} table at {url!r}: {error}") from error


def write_table(
    frame: DataFrame,
    url: str,
    fmt: str,
    *,
    places: DataPlaces,
    storage_options: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
) -> int:
    """Write ``frame`` as one whole file and return its size in bytes.

    The table is encoded in memory first, so a failed encoding never leaves half a file, and
    local parent folders are created the way object stores create them implicitly.

    Raises:
        UnsafeUrlError: ``places`` refuse the URL.
        PermanentError: an option is not one tables accept.
    """
    places.check(url, "the table")
    kwargs = _kwargs(WRITE_DEFAULTS, "write", fmt, options)
    buffer = io.BytesIO()
    getattr(frame, f"to_{fmt}")(buffer, **kwargs)
    data = buffer.getvalue()
    fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    if isinstance(fs, LocalFileSystem):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    fs.pipe_file(path, data)
    note_write(url, fmt, frame, len(data))
    return len(data)


def _kwargs(
    defaults: Mapping[str, Mapping[str, Any]],
    direction: str,
    fmt: str,
    options: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The pandas keywords for a table: the defaults, then ``options`` the allow-list accepts.

    ``validate`` refuses other options already; this holds for callers that skipped it.
    """
    if fmt not in defaults:
        raise PermanentError(f"unknown table format {fmt!r}: expected one of {', '.join(FORMATS)}")
    for key, value in (options or {}).items():
        refusal = option_refusal(direction, fmt, key, value)
        if refusal is not None:
            raise PermanentError(refusal)
    return {**defaults[fmt], **(options or {})}


def frame_to_bytes(frame: DataFrame) -> bytes:
    """Parquet bytes of ``frame`` with its index, for data one task hands the next.

    Column names must be strings (parquet's rule); put a label Series in as a named column.
    """
    buffer = io.BytesIO()
    # Dictionary encoding suits repeated values, not float features: pyarrow builds the
    # dictionary and then abandons it, which made encoding ~5x slower (bench/train_overhead.py).
    frame.to_parquet(buffer, use_dictionary=False)
    return buffer.getvalue()


def frame_from_bytes(data: bytes) -> DataFrame:
    """The frame :func:`frame_to_bytes` encoded, with the same dtypes, columns and index."""
    return library("pandas").read_parquet(io.BytesIO(data))


def read_options(fmt: str, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The pandas reader keywords for a table: the defaults, then the accepted ``options``.

    Raises:
        PermanentError: the format is unknown or an option is not one tables accept.
    """
    return _kwargs(READ_DEFAULTS, "read", fmt, options)


def write_options(fmt: str, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The pandas writer keywords for a table: the defaults, then the accepted ``options``.

    Raises:
        PermanentError: the format is unknown or an option is not one tables accept.
    """
    return _kwargs(WRITE_DEFAULTS, "write", fmt, options)
