"""One run's folder in the store: data between steps, step records and staged assets.

Data between tasks travels through this prefix, never through XCom or a worker's disk, so each
task may run on a different worker.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from model_steps.errors import PermanentError
from model_steps.runtime.context import Environment, RunInfo
from model_steps.runtime.tables import frame_from_bytes, frame_to_bytes

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TARGET", "Scratch"]

TARGET = "__model_steps_target__"
"""Column holding the label beside the features in scratch tables."""


class Scratch:
    """One run's folder in the store: data between steps, step records, staged assets."""

    def __init__(self, env: Environment, run: RunInfo) -> None:
        self.env = env
        self.key = f"{run.dag_id}__{run.run_id}"

    def url(self, *parts: str) -> str:
        """A URL inside this run's folder."""
        return self.env.store.scratch_url(self.key, *parts)

    def write_frame(self, step_id: str, split: str, frame: pd.DataFrame, y: Any) -> int:
        """Hand a step's output (and the labels beside it) to the next step; returns bytes."""
        table = frame.copy()
        if y is not None:
            table[TARGET] = y.to_numpy() if hasattr(y, "to_numpy") else list(y)
        data = frame_to_bytes(table)
        self.env.store.write_bytes(self.url("data", step_id, f"{split}.parquet"), data)
        return len(data)

    def read_frame(self, step_id: str, split: str) -> tuple[pd.DataFrame, Any] | None:
        """A step's output and its labels (None without), or None when it wrote none."""
        try:
            data = self.env.store.read_bytes(self.url("data", step_id, f"{split}.parquet"))
        except FileNotFoundError:
            return None
        table = frame_from_bytes(data)
        if TARGET not in table.columns:
            return table, None
        return table.drop(columns=TARGET), table[TARGET].rename(None)

    def write_json(self, name: str, value: Any) -> None:
        """Leave a small record for a later task of the run."""
        self.env.store.write_bytes(self.url(name), json.dumps(value).encode())

    def read_json_if_present(self, name: str) -> Any:
        """A record an earlier task or try may have left; None when there is none."""
        try:
            return json.loads(self.env.store.read_bytes(self.url(name)))
        except FileNotFoundError:
            return None

    def read_json(self, name: str) -> Any:
        """A record an earlier task left; its absence means that task did not finish."""
        found = self.read_json_if_present(name)
        if found is None:
            raise PermanentError(
                f"{self.url(name)} is missing: an earlier task of this run did not finish"
            )
        return found

    def clean(self) -> None:
        """Remove the run's folder once nothing will read it again."""
        self.env.store.clean_run(self.key)
