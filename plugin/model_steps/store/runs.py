"""Runs' scratch folders in a store: what each holds, and when retention may remove it.

A run writes under ``runs/<dag>__<run>/<step>/try-<N>/`` and removes its folder when it ends
well (a publish, a candidate staged to wait for approval, an infer run's output, an
evaluation). A failed run's folder stays, so that Airflow can retry its failed tasks with the
steps that succeeded; retention removes it once nothing has been written there for
:data:`STALE_RUN_SECONDS`. Listing them tells a user what is still retryable and what
``prune`` will remove.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["STALE_RUN_SECONDS", "RunScratch", "StepTries", "age_seconds", "scratch_runs"]

STALE_RUN_SECONDS = 24 * 3600
"""How long a run's scratch is kept untouched for Airflow to retry the run before prune takes it."""
_TRY = re.compile(r"^try-(\d+)$")
DONE = "done.json"
"""The record a try writes last: a try with it finished."""


@dataclass
class StepTries:
    """The tries one task of a run left in its scratch."""

    tries: set[int] = field(default_factory=set)
    finished: set[int] = field(default_factory=set)

    def describe(self) -> str:
        """``try 2 finished`` or ``try 1 unfinished``: the newest try and how it ended."""
        newest = max(self.tries, default=0)
        return f"try {newest} {'finished' if newest in self.finished else 'unfinished'}"


@dataclass
class RunScratch:
    """One run's scratch folder."""

    key: str
    """``<dag id>__<run id>``, with characters unsafe in paths replaced."""
    url: str
    files: int = 0
    size: int = 0
    age_seconds: float = float("inf")
    """Seconds since the newest file in it was written."""
    steps: dict[str, StepTries] = field(default_factory=dict)

    @property
    def stale(self) -> bool:
        """Whether retention (``prune``, ``keep_versions``) removes it now."""
        return self.age_seconds >= STALE_RUN_SECONDS


def scratch_runs(fs: Any, runs_path: str) -> list[RunScratch]:
    """Every run folder under ``runs_path``, oldest write first."""
    try:
        files = fs.find(runs_path, detail=True)
    except FileNotFoundError:
        return []
    runs: dict[str, RunScratch] = {}
    prefix = runs_path.rstrip("/") + "/"
    for path, info in files.items():
        key, *rest = path.removeprefix(prefix).split("/")
        run = runs.setdefault(key, RunScratch(key, str(fs.unstrip_protocol(prefix + key))))
        run.files += 1
        run.size += int(info.get("size") or 0)
        run.age_seconds = min(run.age_seconds, age_seconds(info))
        if len(rest) >= 2 and (match := _TRY.match(rest[1])):
            tries = run.steps.setdefault(rest[0], StepTries())
            tries.tries.add(int(match[1]))
            if rest[2:] == [DONE]:
                tries.finished.add(int(match[1]))
    return sorted(runs.values(), key=lambda run: -run.age_seconds)


def age_seconds(info: Mapping[str, Any]) -> float:
    """Seconds since a file changed, from whichever timestamp the backend reports."""
    stamp = info.get("LastModified") or info.get("mtime") or info.get("created")
    if isinstance(stamp, datetime):
        return (datetime.now(UTC) - stamp).total_seconds()
    return time.time() - float(stamp) if stamp is not None else 0.0
