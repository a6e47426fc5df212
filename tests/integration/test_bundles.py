"""Models in a DAG bundle away from ``[core] dags_folder``: their own code and data rules.

Airflow 3 parses DAG bundles (a ``LocalDagBundle`` anywhere, a git bundle's checkout) and runs
each task from the bundle its DAG was read from. The bundle here holds the diabetes example under
another model name and with its code package renamed, so nothing of the session's DAGs folder
can stand in for the bundle's own code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from model_steps.settings import load_settings
from model_steps.store.model_store import open_store
from tests.bundles import bundle_with, sync_bundle
from tests.conftest import EXAMPLES, SESSION_DAGS
from tests.integration.conftest import RunOutcome, run_in

pytestmark = pytest.mark.integration

BUNDLE = "models"
MODEL = "bundled_diabetes"


def bundle_files() -> dict[str, str]:
    """The diabetes example as a bundle of its own: its code package is ``bundle_code``."""
    text = (EXAMPLES / "diabetes.yaml").read_text()
    text = text.replace("name: diabetes\n", f"name: {MODEL}\n")
    text = text.replace("model_code.features:", "bundle_code.features:")
    code = EXAMPLES / "model_code"
    return {
        f"{MODEL}.yaml": text,
        **{f"bundle_code/{f.name}": f.read_text() for f in code.glob("*.py")},
    }


@pytest.fixture(scope="module")
def bundle(airflow_db: None, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A ``LocalDagBundle`` named ``models``, registered, parsed and synced like the processor."""
    folder = bundle_with(tmp_path_factory.mktemp("b") / "bundle", bundle_files())
    return sync_bundle(BUNDLE, folder)


def test_the_bundle_is_not_the_dags_folder(bundle: Any) -> None:
    assert Path(bundle.dag_folder) != SESSION_DAGS
    assert load_settings().dags_folder == SESSION_DAGS


def test_a_bundles_model_loads_with_its_own_code(bundle: Any) -> None:
    assert {f"{MODEL}__train", f"{MODEL}__infer"} <= set(bundle.dags)
    assert bundle.dags[f"{MODEL}__train"].tags >= {"model-steps"}


def test_a_task_runs_the_own_code_of_the_bundle_it_was_read_from(
    bundle: Any, failure_listener: Any, example_data: Path
) -> None:
    """The issue's repro: the callable was refused as not in the DAGs folder's own code."""
    outcome: RunOutcome = run_in(bundle, f"{MODEL}__train", failure_listener)
    assert outcome.errors == {}
    assert outcome.state == "success", outcome.task_states
    store = open_store(f"{load_settings().assets_root}/{MODEL}", {}, owner=MODEL)
    pointer = store.pointer()
    assert pointer is not None and pointer.version == 1
