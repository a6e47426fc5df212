"""Retries under a killed worker: the retry's output is the one handed on and published.

Airflow runs each task in a process group of its own, apart from its worker's, so a worker
killed with its whole process group leaves the task process running: it keeps writing while
Airflow retries the task elsewhere. Here a "worker" process starts the first try of a slow step
in such a process (``python -m tests.integration.test_retries``), the test SIGKILLs the worker's
group, runs the retry, then lets the stale try finish writing before the next step and publish
run. Data and versions live on the session's S3 server, as in the trial that found the fault.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from model_steps.definition.loader import load_and_validate
from model_steps.definition.schema import ModelSpec
from model_steps.examples import write_example_data
from model_steps.runtime.context import Environment, RunInfo, environment
from model_steps.runtime.publish import publish
from model_steps.runtime.rendered import Rendered
from model_steps.runtime.scratch import Scratch
from model_steps.runtime.train import train_step
from model_steps.settings import allow_list, load_settings
from tests.s3 import create_bucket, storage_options

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
RUN = RunInfo("held__train", "scheduled__2026-01-01T00:00:00+00:00")
CODE = '''
import os
import time
from pathlib import Path

from sklearn.preprocessing import StandardScaler


class HeldScaler(StandardScaler):
    """A scaler that remembers which try fitted it; a held try waits for a release file."""

    def fit(self, X, y=None):
        hold = os.environ.get("HOLD_DIR")
        if hold:
            Path(hold, "started").write_text(str(os.getpid()))
            while not Path(hold, "release").exists():
                time.sleep(0.05)
        self.fitted_by_ = os.environ.get("FITTED_BY", "retry")
        return super().fit(X, y)
'''
MODEL = """\
apiVersion: model-steps/v1
kind: Model
name: held
assets: {{root: "{root}"}}
steps:
  - id: scale
    has_assets: true
    assets_identifier: scaler.joblib
    parameters:
      package: held_code
      class: HeldScaler
      input:
        train: {{url: "{data}"}}
      training: {{target: species}}
  - id: classify
    has_assets: true
    assets_identifier: model.joblib
    parameters:
      package: sklearn.linear_model
      class: LogisticRegression
      init: {{max_iter: 500}}
"""


def load(definition: Path, endpoint: str) -> tuple[ModelSpec, Environment]:
    """The model and the environment its tasks run in (its folder's code importable)."""
    (loaded,) = load_and_validate([definition], {}).models
    env = environment(loaded.spec, load_settings(), storage_options(endpoint))
    allow = allow_list({}, [definition.parent])
    return loaded.spec, replace(env, allow=allow)


def train(spec: ModelSpec, env: Environment, step_id: str, try_number: int) -> None:
    """One try of one train task, as the operator runs it."""
    step = next(s for s in spec.steps if s.id == step_id)
    run = RunInfo(RUN.dag_id, RUN.run_id, try_number=try_number)
    train_step(spec, step_id, run, env, Rendered.templates(step, "train"))


def staged(spec: ModelSpec, env: Environment, try_number: int) -> Any:
    """What one try of the scale step handed on: its record, with the staged asset."""
    scratch = Scratch(env, RunInfo(RUN.dag_id, RUN.run_id, try_number=try_number))
    return json.loads(env.store.read_bytes(scratch.own("scale", "done.json")))


def wait_until(condition: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} not within {timeout}s"
        time.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "\nState:\tZ" in status.read_text())


@pytest.fixture
def held_model(tmp_path: Path, s3_server: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    bucket = create_bucket(s3_server)
    monkeypatch.setenv("MODEL_STEPS_ALLOWED_DATA", f"s3://{bucket}/data/")  # workers inherit it
    write_example_data(f"s3://{bucket}/data", storage_options(s3_server))
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "held_code.py").write_text(CODE)
    definition = folder / "held.yaml"
    definition.write_text(
        MODEL.format(root=f"s3://{bucket}/models", data=f"s3://{bucket}/data/iris/train.csv")
    )
    return definition


def test_a_killed_workers_surviving_try_never_replaces_its_retrys_published_output(
    held_model: Path, s3_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hold = tmp_path / "hold"
    hold.mkdir()
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.test_retries", str(held_model), s3_server],
        cwd=REPO,
        env={**os.environ, "HOLD_DIR": str(hold), "FITTED_BY": "killed worker's try"},
        start_new_session=True,
    )
    try:
        wait_until((hold / "started").exists, "the first try reaching fit")
        task = int((hold / "started").read_text())
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        assert alive(task), "the task process should outlive its worker's process group"

        spec, env = load(held_model, s3_server)
        train(spec, env, "scale", try_number=2)  # Airflow's retry, on another worker
        (hold / "release").touch()  # the stale try finishes writing after its retry
        wait_until(lambda: not alive(task), "the stale try to finish")
        assert staged(spec, env, 1)["staged"]["sha256"] != staged(spec, env, 2)["staged"]["sha256"]
        retry_asset = staged(spec, env, 2)["staged"]["sha256"]

        train(spec, env, "classify", try_number=1)
        version = publish(spec, RUN, env)["version"]
    finally:
        (hold / "release").touch()
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)

    manifest = env.store.manifest(version)
    record = manifest.asset("scale")
    assert record is not None
    assert record.sha256 == retry_asset
    with env.store.open_asset(record) as stream:
        import joblib

        assert joblib.load(stream).fitted_by_ == "retry"


# -- the killed worker and its task process -----------------------------------------------------


def _worker(definition: str, endpoint: str) -> None:
    """Start the first try in a process group of its own, as Airflow's supervisor does."""
    task = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.test_retries", definition, endpoint, "task"],
        cwd=REPO,
        process_group=0,
    )
    task.wait()


def _task(definition: str, endpoint: str) -> None:
    spec, env = load(Path(definition), endpoint)
    train(spec, env, "scale", try_number=1)


if __name__ == "__main__":
    if sys.argv[3:] == ["task"]:
        _task(sys.argv[1], sys.argv[2])
    else:
        _worker(sys.argv[1], sys.argv[2])
