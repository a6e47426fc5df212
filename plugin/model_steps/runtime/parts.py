"""Partition parts in a run's scratch, and the output table assembled from them.

A part is an Arrow IPC file a task writes a batch at a time (one record batch per batch, so
memory holds one batch, and the n-th batches of two parts of one partition are the same rows).
Arrow's own format, uncompressed, costs little more than copying the memory: the scratch
between two steps adds a fraction of what parquet encoding and decoding would.
The output is one table in the user's format at the user's URL, as with an unpartitioned run:
the parts are streamed into a hidden file beside it and moved into place once complete, so a
reader of the URL sees the previous table or the new one, never part of one.
"""

from __future__ import annotations

import contextlib
import logging
import posixpath
import uuid
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

import fsspec

from model_steps.errors import PermanentError
from model_steps.libraries import library
from model_steps.runtime.tables import write_options, write_table
from model_steps.runtime.touched import note_write, noted

if TYPE_CHECKING:
    from pandas import DataFrame  # type: ignore[import-untyped, unused-ignore]

    from model_steps.definition.data_locations import DataPlaces
    from model_steps.runtime.scratch import Scratch

__all__ = ["PartWriter", "read_parts", "write_parts"]

log = logging.getLogger(__name__)


class PartWriter:
    """An Arrow IPC file in scratch, written a batch (one record batch) at a time.

    Nothing is created until the first batch: a partition without rows has no part.
    """

    def __init__(self, scratch: Scratch, url: str) -> None:
        self.scratch, self.url = scratch, url
        self.bytes = 0
        self._handle: IO[bytes] | None = None
        self._writer: Any = None
        self._schema: Any = None

    def __enter__(self) -> PartWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def write(self, frame: DataFrame) -> None:
        """Append ``frame`` as one record batch (its columns and types are the first batch's)."""
        pa = library("pyarrow")
        batch = pa.RecordBatch.from_pandas(frame, preserve_index=False)
        if self._writer is None:
            self._handle = self.scratch.open(self.url, "wb")
            self._writer = pa.ipc.new_file(self._handle, batch.schema)
            self._schema = batch.schema
        table = conform(pa.Table.from_batches([batch]), self._schema)
        self._writer.write_batch(table.combine_chunks().to_batches()[0])

    def close(self) -> int:
        """Finish the file; the bytes written."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._handle is not None:
            self.bytes = int(self._handle.tell())
            self._handle.close()
            self._handle = None
        return self.bytes


def conform(table: Any, schema: Any) -> Any:
    """``table`` with ``schema``'s types (a later batch may infer a column's type otherwise).

    Raises:
        PermanentError: the columns differ, or a value does not fit the first batch's type.
    """
    if table.schema.equals(schema, check_metadata=False):
        return table
    try:
        return table.select(schema.names).cast(schema)
    except (KeyError, ValueError, TypeError, library("pyarrow").ArrowException) as error:
        raise PermanentError(
            f"a batch's columns do not match the first batch's ({schema.names}): {error}; "
            "give the columns' types in the table's options (csv: dtype)"
        ) from error


def read_parts(scratch: Scratch, key: str, name: str) -> Iterator[DataFrame]:
    """The batches of part ``name`` of the try of ``key`` that finished, in order.

    Raises:
        PermanentError: no try of ``key`` finished in this run.
    """
    done = scratch.finished_try(key)
    if done is None:
        raise PermanentError(f"{scratch.url(key)} holds no finished try in this run")
    url = scratch.url(key, f"try-{done}", name)
    try:
        handle = scratch.open(url, "rb")
    except FileNotFoundError:
        return  # a partition without rows
    with handle:
        reader = library("pyarrow").ipc.open_file(handle)
        for batch in range(reader.num_record_batches):
            yield reader.get_batch(batch).to_pandas()


def write_parts(
    scratch: Scratch,
    keys: Sequence[str],
    name: str,
    url: str,
    fmt: str,
    *,
    places: DataPlaces,
    storage_options: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
) -> tuple[int, int]:
    """Stream the parts of ``keys``, in order, into the table at ``url``; rows and bytes.

    Raises:
        UnsafeUrlError: ``places`` refuse the URL.
        PermanentError: an option is not one tables accept.
    """
    places.check(url, "the table")
    kwargs = write_options(fmt, options)
    written: list[tuple[DataFrame, int]] = []
    frames = noted(
        (frame for key in keys for frame in read_parts(scratch, key, name)),
        lambda first, rows: written.append((first, rows)),
    )
    if fmt == "json" and not (kwargs.get("lines") and kwargs.get("orient") == "records"):
        log.warning("JSON that is not JSON lines is written from one frame in memory")
        frame = library("pandas").concat(list(frames), ignore_index=True)
        return len(frame), write_table(
            frame, url, fmt, places=places, storage_options=storage_options, options=options
        )
    fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    parent = posixpath.dirname(path)
    hidden = posixpath.join(parent, f".{posixpath.basename(path)}.{uuid.uuid4().hex}.partial")
    fs.makedirs(parent, exist_ok=True)
    try:
        compression = kwargs.pop("compression", None) if fmt != "parquet" else None
        with fs.open(hidden, "wb", compression=compression) as handle:
            rows = _stream(frames, handle, fmt, kwargs)
        fs.mv(hidden, path)
    except BaseException:
        with contextlib.suppress(Exception):
            fs.rm(hidden)
        raise
    size = int(fs.size(path))
    for first, count in written:  # lineage: the table as written, all its rows
        note_write(url, fmt, first, size, count)
    return rows, size


def _stream(
    frames: Iterator[DataFrame], handle: IO[bytes], fmt: str, kwargs: dict[str, Any]
) -> int:
    """Write ``frames`` one after the other into ``handle`` as one table; the rows written."""
    rows = 0
    if fmt == "parquet":
        return _stream_parquet(frames, handle, kwargs)
    encoding = kwargs.pop("encoding", None) or "utf-8"
    header = kwargs.pop("header", True)
    for frame in frames:
        if fmt == "csv":
            text = frame.to_csv(None, header=header if rows == 0 else False, **kwargs)
        else:
            text = frame.to_json(None, **kwargs)
            text = text if text.endswith("\n") else text + "\n"
        handle.write(text.encode(encoding))
        rows += len(frame)
    return rows


def _stream_parquet(frames: Iterator[DataFrame], handle: IO[bytes], kwargs: dict[str, Any]) -> int:
    pa, parquet = library("pyarrow"), library("pyarrow.parquet")
    writer, rows = None, 0
    group_rows = kwargs.get("row_group_size")
    for frame in frames:
        table = pa.Table.from_pandas(frame, preserve_index=bool(kwargs.get("index")))
        if writer is None:
            writer = parquet.ParquetWriter(
                handle, table.schema, compression=kwargs.get("compression", "snappy")
            )
        writer.write_table(conform(table, writer.schema), row_group_size=group_rows)
        rows += table.num_rows
    if writer is None:  # no rows at all: an empty table
        library("pandas").DataFrame().to_parquet(handle, index=False)
    else:
        writer.close()
    return rows
