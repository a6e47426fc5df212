"""The evaluate task without Airflow: what it could not check is said, not left silent."""

from __future__ import annotations

from pathlib import Path

import pytest

from model_steps.cli import main
from model_steps.definition.loader import load_and_validate
from model_steps.runtime.context import Environment, RunInfo, environment
from model_steps.runtime.evaluate import evaluate
from model_steps.runtime.publish import publish
from model_steps.runtime.rendered import Rendered
from model_steps.runtime.train import train_step
from tests.lab import classifier, local_settings, write_iris

EVALUATION = """\
evaluation:
  input: {{url: "{data}"}}
  target: species
  rules: [accuracy >= trained - 0.1]
  drift: {{threshold: 0.25}}
"""


@pytest.fixture
def evaluated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Environment]:
    """watched's version 1, trained before drift was watched, evaluated with drift and a rule.

    The definition file that evaluated it, and the model's environment.
    """
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))  # the command line's settings too
    monkeypatch.setenv("MODEL_STEPS_DATA_ROOT", str(tmp_path / "data"))
    data = write_iris(tmp_path / "data")
    text = classifier("watched", tmp_path, data)
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "watched.yaml").write_text(text)  # trained before it was evaluated
    (old,) = load_and_validate([tmp_path / "old"], {}).models
    env = environment(old.spec, local_settings(tmp_path), {})
    run = RunInfo("watched__train", "manual__1")
    step = old.spec.steps[0]
    train_step(old.spec, step.id, run, env, Rendered.templates(step, "train"))
    publish(old.spec, run, env)

    split = text.replace("{target: species}", "{target: species, split: {test_size: 0.25}}")
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "watched.yaml").write_text(split + EVALUATION.format(data=data))
    (new,) = load_and_validate([tmp_path / "new"], {}).models
    evaluate(
        new.spec, RunInfo("watched__evaluate", "manual__2"), env, Rendered.evaluation(new.spec)
    )
    return tmp_path / "new" / "watched.yaml", env


def test_an_evaluation_says_what_an_older_version_lets_it_not_check(
    evaluated: tuple[Path, Environment],
) -> None:
    _, env = evaluated
    record = env.store.evaluations(1)[0]
    assert not record.degraded
    assert record.skipped_checks == [
        "drift not checked: version 1 recorded no training distributions (trained before the "
        "evaluation watched drift); the next version will",
        "not applied: accuracy >= trained - 0.1 (version 1 has no test metric to compare with)",
    ]


def test_versions_shows_each_check_an_evaluation_skipped(
    evaluated: tuple[Path, Environment], capsys: pytest.CaptureFixture[str]
) -> None:
    definition, _ = evaluated
    assert main(["versions", str(definition)]) == 0
    row = capsys.readouterr().out.splitlines()[1]
    assert "skipped: drift not checked: version 1 recorded no training distributions" in row
    assert "skipped: not applied: accuracy >= trained - 0.1" in row
