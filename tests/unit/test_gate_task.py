"""The gate task without Airflow: one decision per run, whatever the retries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from model_steps.definition.loader import load_and_validate
from model_steps.errors import CandidateRefusedError, PermanentError
from model_steps.runtime.context import RunInfo, environment
from model_steps.runtime.gate import gate
from model_steps.runtime.preflight import check_run
from model_steps.runtime.publish import publish
from model_steps.runtime.rendered import Rendered
from model_steps.runtime.train import train_step
from tests.lab import classifier, local_settings, write_iris


def trained(tmp_path: Path, threshold: float) -> tuple[Any, Any, RunInfo]:
    data = write_iris(tmp_path / "data")
    path = tmp_path / "gated.yaml"
    training = "{target: species, split: {test_size: 0.25, seed: 42, stratify: true}}"
    gated = f'gate: {{rules: ["accuracy >= {threshold}"]}}\n'
    path.write_text(classifier("gated", tmp_path, data, top=gated, training=training))
    (model,) = load_and_validate([path], {}).models
    spec = model.spec
    env = environment(spec, local_settings(tmp_path), {})
    run = RunInfo("gated__train", "manual__1")
    train(spec, env, run)
    return spec, env, run


def train(spec: Any, env: Any, run: RunInfo, C: float = 1.0) -> None:
    step = spec.steps[0]
    values = Rendered.templates(step, "train")
    train_step(spec, step.id, run, env, Rendered({**values.init, "C": C}, values.inputs))


def test_a_retried_gate_repeats_the_refusal_without_staging_again(tmp_path: Path) -> None:
    spec, env, run = trained(tmp_path, threshold=0.99)
    with pytest.raises(CandidateRefusedError, match="version 1 refused by the gate") as first:
        gate(spec, run, env)
    with pytest.raises(CandidateRefusedError) as retried:
        gate(spec, RunInfo(run.dag_id, run.run_id, try_number=2), env)
    assert str(retried.value) == str(first.value)
    assert env.store.versions() == [1]
    assert env.store.pointer() is None


def test_publish_after_an_accepting_gate_makes_the_staged_candidate_live(tmp_path: Path) -> None:
    spec, env, run = trained(tmp_path, threshold=0.5)
    assert gate(spec, run, env) == {
        "version": 1,
        "outcome": "accepted",
        "reason": "passed the gate's rules",
    }
    assert publish(spec, run, env)["version"] == 1
    assert env.store.pointer().version == 1
    assert env.store.versions() == [1]  # publish staged nothing more


def test_a_cleared_run_that_trains_again_is_decided_again(tmp_path: Path) -> None:
    spec, env, run = trained(tmp_path, threshold=0.85)
    weak = RunInfo(run.dag_id, run.run_id, try_number=2)
    train(spec, env, weak, C=0.0005)  # the newest try of the step now fits a weak model
    with pytest.raises(CandidateRefusedError, match="version 1 refused"):
        gate(spec, weak, env)
    cleared = RunInfo(run.dag_id, run.run_id, try_number=3)
    train(spec, env, cleared, C=1.0)
    assert gate(spec, cleared, env)["outcome"] == "accepted"
    assert publish(spec, cleared, env)["version"] == 2
    assert env.store.manifest(2).steps[0].definition["parameters"]["init"]["C"] == 1.0


def test_a_training_table_not_there_yet_is_an_error_the_check_task_retries(
    tmp_path: Path,
) -> None:
    spec, env, _ = trained(tmp_path, threshold=0.5)
    (tmp_path / "data" / "iris" / "train.csv").unlink()  # the daily file has not landed yet
    rendered = {step.id: Rendered.templates(step, "train") for step in spec.steps}
    with pytest.raises(FileNotFoundError) as late:
        check_run(spec, None, env, rendered, {})
    assert not isinstance(late.value, PermanentError)  # so Airflow's retries apply
