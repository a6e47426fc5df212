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
def bypassed(airflow_db: None, failure_listener: Any) -> Iterator[RunOutcome]:
    """The bypassing DAG, run once with the corpus folder as the deployment's DAGs folder."""
    from airflow.dag_processing.dagbag import sync_bag_to_db

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODEL_STEPS_DAGS_FOLDER", str(CODE))
        bag = parse_folder(CODE)
        assert not bag.import_errors, bag.import_errors
        sync_bag_to_db(bag, bundle_name=BUNDLE, bundle_version=None)
        yield run_in(bag, "bypass_validation", failure_listener)


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
