"""The user tables a task read and wrote, as it went: what lineage reports about the task.

The Airflow layer asks a running task which datasets it touched (OpenLineage's operator
methods). Data URLs alone would not say which columns were actually read, nor what a failed
task had read before it failed, so :func:`model_steps.runtime.tables.read_table` and
:func:`~model_steps.runtime.tables.write_table` note each table here while a
:func:`recording` is open. Outside one (a real-time handler, ``validate``) noting costs one
context-variable lookup and keeps nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TableUse", "Touched", "note_read", "note_write", "noted", "recording"]


@dataclass(frozen=True)
class TableUse:
    """One table read or written: where, in which format, its columns (name, dtype) and rows."""

    url: str
    format: str
    columns: tuple[tuple[str, str], ...]
    rows: int
    size: int | None = None
    """Bytes written (known for writes only: a read streams through pandas)."""


@dataclass
class Touched:
    """The tables one task read and wrote, in order."""

    reads: list[TableUse] = field(default_factory=list)
    writes: list[TableUse] = field(default_factory=list)


_CURRENT: ContextVar[Touched | None] = ContextVar("model_steps_touched", default=None)


@contextmanager
def recording() -> Iterator[Touched]:
    """Note every table read or written inside the block (kept after it ends or fails)."""
    touched = Touched()
    token = _CURRENT.set(touched)
    try:
        yield touched
    finally:
        _CURRENT.reset(token)


def _use(url: str, fmt: str, frame: Any, size: int | None, rows: int | None) -> TableUse:
    columns = tuple((str(name), str(dtype)) for name, dtype in frame.dtypes.items())
    return TableUse(url, fmt, columns, len(frame) if rows is None else rows, size)


def note_read(url: str, fmt: str, frame: Any, rows: int | None = None) -> None:
    """Note a table read, with the columns it actually had, if a recording is open.

    ``rows`` is the count when ``frame`` is only the first batch of a streamed read.
    """
    touched = _CURRENT.get()
    if touched is not None:
        touched.reads.append(_use(url, fmt, frame, None, rows))


def note_write(url: str, fmt: str, frame: Any, size: int, rows: int | None = None) -> None:
    """Note a table written, if a recording is open (``rows`` as for :func:`note_read`)."""
    touched = _CURRENT.get()
    if touched is not None:
        touched.writes.append(_use(url, fmt, frame, size, rows))


def noted(frames: Iterator[Any], note: Callable[[Any, int], None]) -> Iterator[Any]:
    """``frames`` as they are, then ``note`` of the first and of the rows in all.

    A table streamed a batch at a time is noted once, when the stream ends, with its whole count.
    """
    first, rows = None, 0
    for frame in frames:
        first = frame if first is None else first
        rows += len(frame)
        yield frame
    if first is not None:
        note(first, rows)
