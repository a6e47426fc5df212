"""The evaluate task without Airflow: what it could not check is said, not left silent."""

from __future__ import annotations

from pathlib import Path

from model_steps.definition.loader import load_and_validate
from model_steps.runtime.context import RunInfo, environment
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


def test_an_evaluation_says_what_an_older_version_lets_it_not_check(tmp_path: Path) -> None:
    data = write_iris(tmp_path / "data")
    settings = local_settings(tmp_path)
    text = classifier("watched", tmp_path, data)
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "watched.yaml").write_text(text)  # trained before it was evaluated
    (old,) = load_and_validate([tmp_path / "old"], {}).models
    env = environment(old.spec, settings, {})
    run = RunInfo("watched__train", "manual__1")
    step = old.spec.steps[0]
    train_step(old.spec, step.id, run, env, Rendered.templates(step, "train"))
    publish(old.spec, run, env)

    split = text.replace("{target: species}", "{target: species, split: {test_size: 0.25}}")
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "watched.yaml").write_text(split + EVALUATION.format(data=data))
    (new,) = load_and_validate([tmp_path / "new"], {}).models
    evaluated = evaluate(
        new.spec, RunInfo("watched__evaluate", "manual__2"), env, Rendered.evaluation(new.spec)
    )
    record = env.store.evaluations(evaluated["version"])[0]
    assert not record.degraded
    assert record.notes == (
        "drift not checked: version 1 recorded no training distributions (trained before the "
        "evaluation watched drift); the next version will; not applied: accuracy >= trained - "
        "0.1 (version 1 has no test metric to compare with)"
    )
