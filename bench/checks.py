"""What the checks before any work cost: the train DAG's ``check`` task and ``validate``.

The baseline is the work they guard: the iris example's step tasks (scale, then classify), each
in a fresh interpreter as Airflow runs a task, importing what it needs. The ``check`` task runs
in a fresh interpreter too (it pays the same imports) and reads the training table's header;
``validate --data`` is timed as a user runs it, its child process included. Runs alternate so
machine noise hits every side; medians of ``--repeat`` rounds.

Usage: ``python bench/checks.py [--repeat 5]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFINITION = REPO / "dags" / "iris.yaml"

PRELUDE = """
import time
start = time.perf_counter()
from pathlib import Path
from model_steps.definition.loader import load_and_validate
from model_steps.runtime.context import RunInfo, environment
from model_steps.runtime.rendered import Rendered
from model_steps.settings import load_settings
settings = load_settings()
(model,) = load_and_validate([Path(@DEFINITION@)], settings.environ).models
spec = model.spec
env = environment(spec, settings, {})
run = RunInfo("iris__train", "bench__1")


def rendered(step):  # as Airflow renders iris's one template, {{ params.C }}
    values = Rendered.templates(step, "train")
    init = {k: 1.0 if "{{" in str(v) else v for k, v in values.init.items()}
    return Rendered(init, values.inputs, values.outputs)
""".replace("@DEFINITION@", repr(str(DEFINITION)))
CHECK = """
from model_steps.runtime.preflight import check_run
check_run(spec, model.path, env, {s.id: rendered(s) for s in spec.steps})
print(time.perf_counter() - start)
"""
STEP = """
from model_steps.runtime.train import train_step
step = spec.steps[@INDEX@]
train_step(spec, step.id, run, env, rendered(step))
print(time.perf_counter() - start)
"""


def timed(args: Sequence[str], env: dict[str, str]) -> float:
    """Wall seconds of a fresh interpreter running ``args``, start-up included."""
    start = time.perf_counter()
    subprocess.run(args, env=env, check=True, capture_output=True, text=True)
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="model-steps-bench-checks-"))
    env = {
        **os.environ,
        "MODEL_STEPS_DATA_ROOT": str(work / "data"),
        "MODEL_STEPS_ASSETS_ROOT": str(work / "assets"),
        "MODEL_STEPS_DAGS_FOLDER": str(DEFINITION.parent),
    }
    try:
        subprocess.run(
            [sys.executable, "-m", "model_steps.cli", "example-data", str(work / "data")],
            env=env,
            check=True,
            capture_output=True,
        )
        python = [sys.executable, "-c"]
        sides = {
            "train: scale task": [*python, PRELUDE + STEP.replace("@INDEX@", "0")],
            "train: classify task": [*python, PRELUDE + STEP.replace("@INDEX@", "1")],
            "check task": [*python, PRELUDE + CHECK],
            "validate --data dags/": [
                sys.executable,
                "-m",
                "model_steps.cli",
                "validate",
                "--data",
                str(DEFINITION.parent),
            ],
        }
        samples: dict[str, list[float]] = {name: [] for name in sides}
        for _ in range(args.repeat + 1):  # the first round warms the .pyc files
            for name, command in sides.items():
                samples[name].append(timed(command, env))
        medians = {name: statistics.median(values[1:]) for name, values in samples.items()}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    training = medians["train: scale task"] + medians["train: classify task"]
    print(f"Wall seconds per fresh process, medians of {args.repeat} rounds (iris example)")
    for name, value in medians.items():
        print(f"{name:>24} {value:6.2f} s")
    check, first = medians["check task"], medians["train: scale task"]
    print(f"check task / the step tasks it guards: {check / training:.2f}")
    print(f"check task / the first step task: {check / first:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
