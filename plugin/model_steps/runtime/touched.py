"""The user tables a task read and wrote, as it went: what lineage reports about the task.

The Airflow layer asks a running task which datasets it touched (OpenLineage's operator
methods). Data URLs alone would not say which columns were actually read, nor what a failed
task had read before it failed, so :func:`model_steps.runtime.tables.read_table` and
:func:`~model_steps.runtime.tables.write_table` note each table here while a
:func:`recording` is open. Outside one (a real-time handler, ``validate``) noting costs one
context-variable lookup and keeps nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TableUse", "Touched", "note_read", "note_write", "recording"]


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


def _use(url: str, fmt: str, frame: Any, size: int | None) -> TableUse:
    columns = tuple((str(name), str(dtype)) for name, dtype in frame.dtypes.items())
    return TableUse(url, fmt, columns, len(frame), size)


def note_read(url: str, fmt: str, frame: Any) -> None:
    """Note a table read, with the columns it actually had, if a recording is open."""
    touched = _CURRENT.get()
    if touched is not None:
        touched.reads.append(_use(url, fmt, frame, None))


def note_write(url: str, fmt: str, frame: Any, size: int) -> None:
    """Note a table written, if a recording is open."""
    touched = _CURRENT.get()
    if touched is not None:
        touched.writes.append(_use(url, fmt, frame, size))
