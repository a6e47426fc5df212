"""One run's folder in the store: data between steps, step records and staged assets.

Data between tasks travels through this prefix, never through XCom or a worker's disk, so each
task may run on a different worker.

Each try of a task writes only under its own folder, ``<step id>/try-<N>/``, and ends by writing
its record there (``done.json``), after everything else it wrote. Readers take the newest try
that finished. A task's downstream runs only after its last try succeeded, and Airflow numbers
every new try above the ones before, so the newest finished try is the one that succeeded. A
try left running by a killed worker (the task process outlives its worker's process group) can
only write into its own, older folder: it can never overwrite what its retry handed on.
"""

from __future__ import annotations

import json
import re
from typing import IO, TYPE_CHECKING, Any

from model_steps.errors import PermanentError
from model_steps.runtime.context import Environment, RunInfo
from model_steps.runtime.tables import frame_from_bytes, frame_to_bytes

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TARGET", "Scratch"]

TARGET = "__model_steps_target__"
"""Column holding the label beside the features in scratch tables."""
DONE = "done.json"
_TRY = re.compile(r"/try-(\d+)/" + re.escape(DONE) + "$")


class Scratch:
    """One run's folder in the store, seen by one try of one task."""

    def __init__(self, env: Environment, run: RunInfo) -> None:
        self.env = env
        self.key = f"{run.dag_id}__{run.run_id}"
        self.try_number = run.try_number

    def url(self, *parts: str) -> str:
        """A URL inside this run's folder."""
        return self.env.store.scratch_url(self.key, *parts)

    def own(self, step_id: str, *parts: str) -> str:
        """A URL inside this try's own folder for ``step_id`` (the only place it writes)."""
        return self.url(step_id, f"try-{self.try_number}", *parts)

    def open(self, url: str, mode: str) -> IO[bytes]:
        """A file in this run's folder opened for streaming (parts written a batch at a time)."""
        fs = self.env.store.fs
        handle: IO[bytes] = fs.open(fs._strip_protocol(url), mode)
        return handle

    def finished_try(self, step_id: str) -> int | None:
        """The newest try of ``step_id`` that finished in this run, or None."""
        found = self.env.store.find(self.url(step_id, "try-*", DONE))
        tries = [int(match[1]) for url in found if (match := _TRY.search(url))]
        return max(tries, default=None)

    def write_frame(self, step_id: str, split: str, frame: pd.DataFrame, y: Any) -> int:
        """Hand a step's output (and the labels beside it) to the next step; returns bytes."""
        table = frame.copy()
        if y is not None:
            table[TARGET] = y.to_numpy() if hasattr(y, "to_numpy") else list(y)
        data = frame_to_bytes(table)
        self.env.store.write_bytes(self.own(step_id, "data", f"{split}.parquet"), data)
        return len(data)

    def read_frame(self, step_id: str, split: str) -> tuple[pd.DataFrame, Any] | None:
        """The output (and labels) of the try of ``step_id`` that succeeded; None without."""
        done = self.finished_try(step_id)
        if done is None:
            return None
        url = self.url(step_id, f"try-{done}", "data", f"{split}.parquet")
        try:
            data = self.env.store.read_bytes(url)
        except FileNotFoundError:
            return None
        table = frame_from_bytes(data)
        if TARGET not in table.columns:
            return table, None
        return table.drop(columns=TARGET), table[TARGET].rename(None)

    def write_carried(self, step_id: str, split: str, frame: pd.DataFrame) -> int:
        """Keep the columns a step carries past the model until the output is written."""
        data = frame_to_bytes(frame)
        self.env.store.write_bytes(self.own(step_id, "carried", f"{split}.parquet"), data)
        return len(data)

    def read_carried(self, step_id: str, split: str) -> pd.DataFrame | None:
        """The columns the try of ``step_id`` that succeeded carried; None when it carried none."""
        done = self.finished_try(step_id)
        if done is None:
            return None
        url = self.url(step_id, f"try-{done}", "carried", f"{split}.parquet")
        try:
            return frame_from_bytes(self.env.store.read_bytes(url))
        except FileNotFoundError:
            return None

    def finish(self, step_id: str, record: Any) -> None:
        """End this try: its record, written after all its other output, marks it finished."""
        self.env.store.write_bytes(self.own(step_id, DONE), json.dumps(record).encode())

    def record(self, step_id: str) -> Any:
        """The record of the try of ``step_id`` that succeeded.

        Raises:
            PermanentError: no try of that task finished in this run.
        """
        done = self.finished_try(step_id)
        if done is None:
            raise PermanentError(
                f"{self.url(step_id)} holds no finished try: step {step_id!r} did not finish "
                "in this run"
            )
        return json.loads(self.env.store.read_bytes(self.url(step_id, f"try-{done}", DONE)))

    def clean(self) -> None:
        """Remove the run's folder once nothing will read it again."""
        self.env.store.clean_run(self.key)
