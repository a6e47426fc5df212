"""An input table split into partitions, each read in batches of bounded memory.

The infer DAG scores a table of any size: its first task plans the partitions (parquet row
ranges aligned to row groups where they allow, csv / JSON-lines byte ranges cut at line ends),
and each step's mapped task instances take one partition each, reading it a batch at a time,
so no task holds more than a batch (a few tens of MB) whatever the table's size.

Planning reads only what it must: a parquet file's footer, and for text files the size and a
few bytes at each cut. A table whose read options cannot apply to a part of it (``nrows``,
``skiprows``, parquet ``filters``, compressed text...) is one partition read whole, as before.
"""

from __future__ import annotations

import io
import itertools
import logging
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import IO, TYPE_CHECKING, Any, Literal

import fsspec

from model_steps.errors import PermanentError
from model_steps.libraries import library
from model_steps.runtime.tables import read_options, read_table
from model_steps.runtime.touched import note_read, noted

if TYPE_CHECKING:
    from pandas import DataFrame  # type: ignore[import-untyped, unused-ignore]

    from model_steps.definition.data_locations import DataPlaces

__all__ = [
    "BATCH_BYTES",
    "DEFAULT_PARTITION_SIZE",
    "Partition",
    "TablePlan",
    "plan_table",
    "read_partition",
]

log = logging.getLogger(__name__)

DEFAULT_PARTITION_SIZE = 1024**3
"""Bytes of decoded data (parquet) or of file (csv, JSON lines) in one partition by default.

Memory does not depend on it (tasks read a batch at a time); each partition costs a task
start per step, so partitions are large unless a definition or deployment asks otherwise."""
BATCH_BYTES = 32 * 1024**2
"""Bytes of data a task reads at once; a task's memory is a small multiple of this."""
_CUT_PROBE = 64 * 1024
"""Bytes read at a cut to find the next line end (longer lines read further)."""
_TEXT_WHOLE = frozenset({"nrows", "skiprows", "skipfooter", "compression", "header", "encoding"})
"""csv / JSON options that apply to the whole file, so the file is one partition."""
_COMPRESSED = (".gz", ".bz2", ".zip", ".xz", ".zst", ".tar")

Unit = Literal["rows", "bytes", "whole"]


@dataclass(frozen=True)
class Partition:
    """One part of the input: rows ``[start, stop)`` (parquet) or bytes (csv, JSON lines)."""

    index: int
    unit: Unit
    start: int
    stop: int
    rows: int | None
    """Rows in the partition, when known before reading it (parquet)."""


@dataclass(frozen=True)
class TablePlan:
    """How one infer run splits its input; written to the run's scratch by the first task."""

    url: str
    fmt: str
    version: int
    partitions: tuple[Partition, ...]
    batch_rows: int
    header: str = ""
    """A csv file's first line, put before every partition but the first."""

    @property
    def rows(self) -> int | None:
        """The table's rows, when every partition's count is known before reading."""
        counts = [p.rows for p in self.partitions]
        return None if any(c is None for c in counts) else sum(c or 0 for c in counts)

    def to_json(self) -> dict[str, Any]:
        """The plan as JSON (the scratch record every mapped task reads)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TablePlan:
        """The plan :meth:`to_json` wrote."""
        parts = tuple(Partition(**p) for p in data["partitions"])
        return cls(**{**data, "partitions": parts})


def plan_table(
    url: str,
    fmt: str,
    version: int,
    *,
    size: int,
    places: DataPlaces,
    storage_options: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    limit: int = 1024,
) -> TablePlan:
    """Split the table at ``url`` into partitions of about ``size`` bytes each.

    Partitions grow (doubling ``size``) until there are at most ``limit`` of them: Airflow
    maps a task over at most ``[core] max_map_length`` values.

    Raises:
        FileNotFoundError: nothing is at ``url``.
        UnsafeUrlError: ``places`` refuse the URL.
    """
    places.check(url, "the table")
    read_options(fmt, options)  # a refused option fails before anything is read
    opts = dict(options or {})
    fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    if not fs.exists(path):
        raise FileNotFoundError(f"no {fmt} table at {url!r}")
    reason = whole_reason(url, fmt, opts)
    if reason is not None:
        log.warning("reading %s whole, as one partition: %s", url, reason)
        return TablePlan(url, fmt, version, (Partition(0, "whole", 0, 0, None),), 0)
    with fs.open(path, "rb") as handle:
        while True:
            if fmt == "parquet":
                plan = _plan_parquet(url, version, handle, size)
            else:
                plan = _plan_text(url, fmt, version, handle, int(fs.size(path)), size)
            if len(plan.partitions) <= max(1, limit):
                return plan
            size *= 2


def whole_reason(url: str, fmt: str, options: Mapping[str, Any]) -> str | None:
    """Why the table cannot be split (its options apply to the whole file); None when it can."""
    if fmt == "parquet":
        extra = sorted(set(options) - {"columns"})
        return f"option(s) {', '.join(extra)} apply to the whole file" if extra else None
    if url.lower().endswith(_COMPRESSED):
        return "a compressed file cannot be cut into byte ranges"
    whole = sorted(set(options) & _TEXT_WHOLE)
    if whole:
        return f"option(s) {', '.join(whole)} apply to the whole file"
    if fmt == "json" and options.get("lines", True) is not True:
        return "only JSON lines (one record a line) can be cut into byte ranges"
    return None


def _plan_parquet(url: str, version: int, handle: IO[bytes], size: int) -> TablePlan:
    """Row ranges of about ``size`` decoded bytes, cut at row groups where they are smaller."""
    meta = library("pyarrow.parquet").ParquetFile(handle).metadata
    groups = [meta.row_group(g) for g in range(meta.num_row_groups)]
    rows = sum(g.num_rows for g in groups)
    decoded = sum(g.total_byte_size for g in groups)
    row_bytes = max(1.0, decoded / rows) if rows else 1.0
    per_part = max(1, int(size / row_bytes))
    cuts, start = [0], 0
    for group in groups:
        stop = start + group.num_rows
        if stop - cuts[-1] > per_part:  # this group does not fit in the open partition
            if start > cuts[-1]:
                cuts.append(start)  # close it where the group starts
            while stop - cuts[-1] > per_part:  # a group larger than a partition is cut inside
                cuts.append(cuts[-1] + per_part)
        start = stop
    if cuts[-1] != rows:
        cuts.append(rows)
    parts = tuple(
        Partition(i, "rows", a, b, b - a) for i, (a, b) in enumerate(itertools.pairwise(cuts))
    ) or (Partition(0, "rows", 0, 0, 0),)
    return TablePlan(url, "parquet", version, parts, _batch_rows(row_bytes))


def _plan_text(
    url: str, fmt: str, version: int, handle: IO[bytes], total: int, size: int
) -> TablePlan:
    """Byte ranges of about ``size`` bytes, each ending at a line end."""
    header = b""
    if fmt == "csv":
        header = _line_at(handle, 0)
    handle.seek(len(header))
    sample = handle.read(_CUT_PROBE)
    line_bytes = max(1.0, len(sample) / max(1, sample.count(b"\n")))
    cuts = [0]
    at = len(header)
    while at + size < total:
        at = _next_line_start(handle, at + size, total)
        if at >= total:
            break
        cuts.append(at)
    cuts.append(total)
    parts = tuple(
        Partition(i, "bytes", a, b, None) for i, (a, b) in enumerate(itertools.pairwise(cuts))
    )
    text = header.decode("utf-8", errors="replace")
    return TablePlan(url, fmt, version, parts, _batch_rows(line_bytes * 2), text)


def _line_at(handle: IO[bytes], offset: int) -> bytes:
    """The line starting at ``offset``, with its line end."""
    handle.seek(offset)
    line = handle.readline()
    return bytes(line)


def _next_line_start(handle: IO[bytes], offset: int, total: int) -> int:
    """The first position after ``offset - 1`` that starts a line."""
    handle.seek(offset - 1)
    while True:
        block = handle.read(_CUT_PROBE)
        if not block:
            return total
        found = block.find(b"\n")
        if found >= 0:
            return offset - 1 + found + 1
        offset += len(block)


def _batch_rows(row_bytes: float) -> int:
    return max(1, int(BATCH_BYTES / row_bytes))


def read_partition(
    plan: TablePlan,
    partition: Partition,
    *,
    places: DataPlaces,
    storage_options: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
) -> Iterator[DataFrame]:
    """The partition's rows, in order, a batch of at most ``plan.batch_rows`` at a time."""
    places.check(plan.url, "the table")
    if partition.unit == "whole":
        yield read_table(
            plan.url, plan.fmt, places=places, storage_options=storage_options, options=options
        )
        return
    fs, path = fsspec.core.url_to_fs(plan.url, **(storage_options or {}))
    try:
        handle = fs.open(path, "rb")
    except FileNotFoundError as error:
        raise FileNotFoundError(f"no {plan.fmt} table at {plan.url!r}: {error}") from error
    with handle:
        if partition.unit == "rows":
            frames = _parquet_rows(handle, partition, plan.batch_rows, options or {})
        else:
            frames = _text_rows(handle, plan, partition, options or {})
        yield from noted(frames, lambda first, rows: note_read(plan.url, plan.fmt, first, rows))


def _parquet_rows(
    handle: IO[bytes], partition: Partition, batch_rows: int, options: Mapping[str, Any]
) -> Iterator[DataFrame]:
    """Rows ``[start, stop)`` of a parquet file, read only from the row groups holding them."""
    parquet = library("pyarrow.parquet")
    pa = library("pyarrow")
    # Column chunks are read through 1 MiB buffers, not whole: a 500,000-row group of 30
    # float columns would otherwise put 120 MB in memory before its first batch.
    file = parquet.ParquetFile(handle, pre_buffer=False, buffer_size=1024**2)
    first = 0
    for g in range(file.metadata.num_row_groups):
        count = file.metadata.row_group(g).num_rows
        if first + count <= partition.start or first >= partition.stop:
            first += count
            continue
        at = first
        for batch in file.iter_batches(
            batch_size=batch_rows, row_groups=[g], columns=options.get("columns")
        ):
            lo, hi = max(partition.start - at, 0), min(partition.stop - at, batch.num_rows)
            if hi > lo:
                table = pa.Table.from_batches([batch.slice(lo, hi - lo)])
                yield table.to_pandas()
            at += batch.num_rows
            if at >= partition.stop:
                break
        first += count


def _text_rows(
    handle: IO[bytes], plan: TablePlan, partition: Partition, options: Mapping[str, Any]
) -> Iterator[DataFrame]:
    """A csv / JSON-lines byte range, the csv header first, parsed a batch of lines at a time."""
    pandas = library("pandas")
    header = plan.header.encode() if partition.start > 0 else b""
    stream = io.BufferedReader(_Range(handle, header, partition.start, partition.stop))
    if plan.fmt == "csv":
        reader = pandas.read_csv(stream, chunksize=plan.batch_rows, **options)
    elif plan.fmt == "json":
        reader = pandas.read_json(stream, chunksize=plan.batch_rows, **{"lines": True, **options})
    else:
        raise PermanentError(f"unknown table format {plan.fmt!r}")
    with reader:
        yield from reader


class _Range(io.RawIOBase):
    """``prefix`` then bytes ``[start, stop)`` of ``handle``, as one readable stream."""

    def __init__(self, handle: IO[bytes], prefix: bytes, start: int, stop: int) -> None:
        super().__init__()
        self._handle, self._prefix, self._left = handle, prefix, stop - start
        handle.seek(start)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._prefix:
            n = min(len(view), len(self._prefix))
            view[:n], self._prefix = self._prefix[:n], self._prefix[n:]
            return n
        want = min(len(view), self._left)
        if want <= 0:
            return 0
        data = self._handle.read(want)
        view[: len(data)] = data
        self._left -= len(data)
        return len(data)
