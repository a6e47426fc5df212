"""Models in a DAG bundle away from ``[core] dags_folder``: their own code and data rules.

Airflow 3 parses DAG bundles (a ``LocalDagBundle`` anywhere, a git bundle's checkout) and runs
each task from the bundle its DAG was read from. The bundle here holds the diabetes example under
another model name and with its code package renamed, so nothing of the session's DAGs folder
can stand in for the bundle's own code.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from model_steps.settings import load_settings
from model_steps.store.model_store import open_store
from tests.conftest import EXAMPLES, SESSION_DAGS
from tests.integration.conftest import RunOutcome, run_in

pytestmark = pytest.mark.integration

BUNDLE = "models"
MODEL = "bundled_diabetes"


def bundle_folder(root: Path) -> Path:
    """The diabetes example as a bundle of its own: its code package is ``bundle_code``."""
    folder = root / "bundle"
    folder.mkdir()
    shutil.copy(EXAMPLES / "model_steps_loader.py", folder)
    shutil.copytree(EXAMPLES / "model_code", folder / "bundle_code")
    text = (EXAMPLES / "diabetes.yaml").read_text()
    text = text.replace("name: diabetes\n", f"name: {MODEL}\n")
    text = text.replace("model_code.features:", "bundle_code.features:")
    (folder / f"{MODEL}.yaml").write_text(text)
    return folder


@pytest.fixture(scope="module")
def bundle(airflow_db: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A ``LocalDagBundle`` named ``models``, registered, parsed and synced like the processor."""
    from airflow.dag_processing.bundles.local import LocalDagBundle
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.models.dagbundle import DagBundleModel
    from airflow.utils.session import create_session

    local = LocalDagBundle(name=BUNDLE, path=str(bundle_folder(tmp_path_factory.mktemp("b"))))
    with create_session() as session:
        if session.get(DagBundleModel, BUNDLE) is None:
            session.add(DagBundleModel(name=BUNDLE))
    bag = DagBag(dag_folder=local.path, bundle_path=local.path, bundle_name=BUNDLE)
    assert not bag.import_errors, bag.import_errors
    sync_bag_to_db(bag, bundle_name=BUNDLE, bundle_version=None)
    yield bag


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
