"""How far an infer run is: rows and partitions each step has done, of the table's total.

Read from the run's scratch (one listing per step, and for csv / JSON lines the first step's
partition records), so task logs and the Models page tell the same story without a database
of their own. A parquet table's rows are known before any is read; a text table's once its
first step has read every partition.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from model_steps.runtime.partitions import TablePlan
    from model_steps.runtime.scratch import Scratch

__all__ = ["Progress", "part_key", "step_progress"]

_PART = re.compile(r"/part-(\d+)/try-(\d+)/done\.json$")


def part_key(step_id: str, index: int) -> str:
    """A partition's folder under its step in the run's scratch."""
    return f"{step_id}/part-{index:05d}"


@dataclass(frozen=True)
class Progress:
    """One step of an infer run: partitions and rows done, of the totals."""

    step: str
    partitions_done: int
    partitions: int
    rows_done: int
    rows_total: int | None
    """None while the total is unknown (a csv or JSON-lines table not yet read through)."""

    def text(self) -> str:
        """``1,200,000 of 4,000,000 rows done (3 of 8 partitions)``, as task logs show it."""
        total = f"{self.rows_total:,}" if self.rows_total is not None else "?"
        return (
            f"{self.rows_done:,} of {total} rows done "
            f"({self.partitions_done} of {self.partitions} partitions)"
        )


def _done_rows(scratch: Scratch, step_id: str) -> dict[int, int]:
    """Each finished partition of ``step_id`` and the rows its newest finished try did."""
    newest: dict[int, int] = {}
    for url in scratch.env.store.find(scratch.url(step_id, "part-*", "try-*", "done.json")):
        if match := _PART.search(url):
            index, number = int(match[1]), int(match[2])
            newest[index] = max(number, newest.get(index, 0))
    rows = {}
    for index, number in newest.items():
        record = scratch.env.store.read_bytes(
            scratch.url(part_key(step_id, index), f"try-{number}", "done.json")
        )
        rows[index] = int(json.loads(record)["rows"])
    return rows


def step_progress(scratch: Scratch, plan: TablePlan, step_id: str, first: str) -> Progress:
    """Where ``step_id`` stands in the run; ``first`` is the model's first step."""
    done = _done_rows(scratch, step_id)
    total = plan.rows
    if total is None:
        read = done if step_id == first else _done_rows(scratch, first)
        total = sum(read.values()) if len(read) == len(plan.partitions) else None
    return Progress(step_id, len(done), len(plan.partitions), sum(done.values()), total)
