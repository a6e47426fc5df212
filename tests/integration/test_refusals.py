"""Every task refuses what the security corpus names, even when validation was bypassed.

The corpus's folder is parsed as a DAGs folder whose loader skips every check
(``tests/data/specs/code/dags/bypass_validation.py``): each step of each attack file becomes a
train task of its own, with no ``check`` task before it. One real ``dag.test()`` run of that DAG
must fail every task with the refusal ``model-steps validate`` gives for its step, before the
task reads any data or calls what the step names.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import DATA
from tests.integration.conftest import BUNDLE, RunOutcome, parse_folder, run_in

pytestmark = pytest.mark.integration

CODE = DATA / "specs" / "code"
SECURITY = DATA / "specs" / "invalid" / "security" / "imports"
CASES = sorted(SECURITY.glob("*.yaml"))
EXPECTED = re.compile(r"^\d+:\d+: steps\[(\d+)\]\.parameters\.[^:]+: (.*)$")


@pytest.fixture(scope="module")
def bypassed_runs(airflow_db: None, failure_listener: Any) -> Iterator[dict[str, RunOutcome]]:
    """The bypassing DAGs, run once with the corpus folder as the deployment's DAGs folder and
    data allowed under ``/srv/data`` and that folder (which holds the DAGs folder)."""
    from airflow.dag_processing.dagbag import sync_bag_to_db

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODEL_STEPS_DAGS_FOLDER", str(CODE))
        patch.setenv("MODEL_STEPS_ALLOWED_DATA", f"/srv/data/ {CODE}/")
        bag = parse_folder(CODE)
        assert not bag.import_errors, bag.import_errors
        sync_bag_to_db(bag, bundle_name=BUNDLE, bundle_version=None)
        yield {
            dag_id: run_in(bag, dag_id, failure_listener)
            for dag_id in ("bypass_validation", "bypass_data_checks")
        }


@pytest.fixture(scope="module")
def bypassed(bypassed_runs: dict[str, RunOutcome]) -> RunOutcome:
    """The import allow-list attacks' run."""
    return bypassed_runs["bypass_validation"]


def refusals(case: Path) -> dict[str, list[str]]:
    """The messages ``validate`` gives for each step of ``case``, by step id."""
    steps = [step["id"] for step in yaml.safe_load(case.read_text())["steps"]]
    found: dict[str, list[str]] = {}
    for line in case.with_suffix(".expected").read_text().splitlines():
        match = EXPECTED.match(line)
        assert match, line
        found.setdefault(steps[int(match.group(1))], []).append(match.group(2))
    assert set(found) == set(steps), "every step of an attack file is an attack"
    return found


def test_no_attack_task_succeeds(bypassed: RunOutcome) -> None:
    assert bypassed.state == "failed"
    assert len(bypassed.task_states) >= 40
    assert set(bypassed.task_states.values()) == {"failed"}


@pytest.mark.parametrize("case", CASES, ids=lambda path: path.stem)
def test_each_task_refuses_its_step_as_validate_does(bypassed: RunOutcome, case: Path) -> None:
    for step_id, messages in refusals(case).items():
        error = bypassed.errors[f"{case.stem}__{step_id}"]
        assert any(message in error for message in messages), (step_id, error)


DATA_REFUSALS = {
    "data_outside_allowed_places__scale__train": "it is outside the allowed data locations",
    "data_outside_allowed_places__scale__infer": "its protocol http:// is not one of",
    "data_outside_allowed_places__classify__train": "it chains filesystems ('::')",
    "data_outside_allowed_places__classify__infer": "it is a relative path",
    "data_into_code_and_stores__scale__train": "it is inside the DAGs folder",
    "data_into_code_and_stores__scale__infer": "it is inside the store of model 'intruder'",
    "data_template_leaves_allowed__scale__train": "it is outside the allowed data locations",
    "data_template_leaves_allowed__scale__infer": "it is a relative path",
    "data_template_leaves_allowed__evaluate": "it is outside the allowed data locations",
    "data_options_reach_elsewhere__scale__train": "option 'storage_options' is not accepted",
    "data_options_reach_elsewhere__scale__infer": "option 'filesystem' is not accepted",
}
"""Each data attack's task, and the refusal it fails with (the reason ``validate`` gives, or
for a template, the reason its rendering with the defaults is refused)."""


@pytest.mark.parametrize("task", sorted(DATA_REFUSALS))
def test_each_data_attack_task_fails_before_reading_or_writing(
    bypassed_runs: dict[str, RunOutcome], task: str
) -> None:
    outcome = bypassed_runs["bypass_data_checks"]
    assert outcome.task_states[task] == "failed"
    assert DATA_REFUSALS[task] in outcome.errors[task]
    if not DATA_REFUSALS[task].startswith("option"):  # a URL's error says what is allowed
        assert "MODEL_STEPS_ALLOWED_DATA ([model_steps] allowed_data)" in outcome.errors[task]


def test_no_data_attack_wrote_its_file(bypassed_runs: dict[str, RunOutcome]) -> None:
    assert bypassed_runs["bypass_data_checks"].state == "failed"
    assert not (CODE / "pwned.py").exists()
    assert not Path("/srv/data-other").exists()
