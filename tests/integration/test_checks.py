"""The train DAG's first task checks every step before any work, as `validate --data` does.

Real `dag.test()` runs on the session's Airflow DB: a definition the loader accepts but that
cannot run fails its `check` task in seconds, with the very lines `model-steps validate --data`
prints, and no step is fitted.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from model_steps.cli import main

pytestmark = pytest.mark.integration

ASSETS_ROOT = Path(os.environ["MODEL_STEPS_ASSETS_ROOT"])
STEPS_AFTER_CHECK = {"scale": "upstream_failed", "classify": "upstream_failed"}


def test_a_definition_that_cannot_run_fails_its_check_task_with_the_validate_message(
    run_dag: Any, example_data: Path, session_dags: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outcome = run_dag("check_misspelt__train")
    assert outcome.state == "failed"
    assert outcome.task_states == {
        "check": "failed",
        **STEPS_AFTER_CHECK,
        "publish": "upstream_failed",
    }
    capsys.readouterr()
    assert main(["validate", "--data", str(session_dags / "checks" / "check_misspelt.yaml")]) == 1
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 3  # the target column, the class and the metric
    assert outcome.errors["check"].splitlines() == printed
    assert not (ASSETS_ROOT / "check_misspelt").exists(), "nothing may be fitted or written"


def test_the_check_task_sees_templated_values_as_the_run_rendered_them(
    run_dag: Any, example_data: Path, session_dags: Path
) -> None:
    outcome = run_dag("check_rendered__train", conf={"C": -1.0})
    assert (outcome.state, outcome.task_states["check"]) == ("failed", "failed")
    path = session_dags / "checks" / "check_rendered.yaml"
    assert outcome.errors["check"] == (
        f"{path}:26:14: steps[1].parameters.init.C: The 'C' parameter of LogisticRegression "
        "must be a float in the range (0.0, inf]. Got -1.0 instead."
    )
    assert {k: outcome.task_states[k] for k in STEPS_AFTER_CHECK} == STEPS_AFTER_CHECK


def test_a_sound_definition_passes_its_check_and_trains(run_dag: Any, example_data: Path) -> None:
    outcome = run_dag("check_rendered__train", conf={"C": 0.5})
    assert outcome.state == "success", outcome.errors
    assert outcome.task_states == dict.fromkeys(
        ("check", "scale", "classify", "publish"), "success"
    )
