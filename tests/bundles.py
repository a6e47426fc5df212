"""DAG bundles for the integration tests: a folder registered, parsed and synced as Airflow does."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from tests.conftest import EXAMPLES

LOADER = EXAMPLES / "model_steps_loader.py"


def bundle_with(folder: Path, files: dict[str, str]) -> Path:
    """``folder`` holding the DAG loader and ``files`` (relative path: text)."""
    folder.mkdir(parents=True)
    shutil.copy(LOADER, folder)
    for relative, text in files.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(text)
    return folder


def sync_bundle(
    name: str, folder: Path, version: str | None = None, failing: tuple[str, ...] = ()
) -> Any:
    """Register a ``LocalDagBundle`` at ``folder``, parse it and store its DAGs in the DB.

    What Airflow's DAG processor does with a bundle from ``[dag_processor]
    dag_bundle_config_list`` (``version``: a versioned bundle's, e.g. a git commit); the parsed
    DagBag is returned, to run its DAGs with dag.test(). Only the files ``failing`` names may
    fail to import (their errors are stored, as the DAG processor stores them).
    """
    from airflow.dag_processing.bundles.local import LocalDagBundle
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.models.dagbundle import DagBundleModel
    from airflow.utils.session import create_session

    bundle = LocalDagBundle(name=name, path=str(folder))
    with create_session() as session:
        if session.get(DagBundleModel, name) is None:
            session.add(DagBundleModel(name=name))
    bag = DagBag(dag_folder=bundle.path, bundle_path=bundle.path, bundle_name=name)
    assert set(bag.import_errors) == set(failing), bag.import_errors
    sync_bag_to_db(bag, bundle_name=name, bundle_version=version)
    return bag
