"""Run DAGs of a folder with dag.test() in a process of their own, for the lineage tests.

Airflow decides at import whether the OpenLineage provider's listener is on (whether a transport
is configured), so each configuration the tests compare runs in a fresh interpreter. With
``--without-openlineage`` the provider and the OpenLineage client cannot be imported at all, as
in a deployment that never installed them.

Usage: ``python -m tests.integration.lineage_runner FOLDER [--without-openlineage]
DAG_ID[=CONF_JSON]...``; prints one JSON line (after :data:`MARK`): each run's state, task
states and the OpenLineage modules (the provider's, the client's, ours) that were imported.
"""

from __future__ import annotations

import importlib.abc
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HIDDEN = ("openlineage", "airflow.providers.openlineage")
OURS = "model_steps.airflow.lineage"
MARK = "lineage-runner: "
"""Starts the result's line (Airflow logs to standard output too)."""


DISTRIBUTIONS = ("apache-airflow-providers-openlineage", "openlineage-")
"""Names (or prefixes) of the distributions hidden with the modules: Airflow finds providers
through their distributions' entry points."""


class _NotInstalled(importlib.abc.MetaPathFinder):
    """Refuses the provider and the client, as if neither were installed."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> None:
        if any(name == hidden or name.startswith(f"{hidden}.") for hidden in HIDDEN):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


def _hide_distributions() -> None:
    """Leave the hidden distributions out of every listing Airflow reads entry points from."""
    import importlib.metadata

    import importlib_metadata

    for module in (importlib.metadata, importlib_metadata):
        listed = module.distributions

        def distributions(*args: Any, _listed: Any = listed, **kwargs: Any) -> Iterator[Any]:
            for found in _listed(*args, **kwargs):
                if not str(found.metadata["Name"] or "").lower().startswith(DISTRIBUTIONS):
                    yield found

        module.distributions = distributions  # type: ignore[assignment]


def main(argv: list[str]) -> None:
    folder, *rest = argv
    if "--without-openlineage" in rest:
        rest.remove("--without-openlineage")
        sys.meta_path.insert(0, _NotInstalled())
        _hide_distributions()
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.utils.session import create_session

    bag = DagBag(dag_folder=folder, bundle_path=Path(folder), bundle_name="dags-folder")
    assert not bag.import_errors, bag.import_errors
    sync_bag_to_db(bag, bundle_name="dags-folder", bundle_version=None)
    runs = []
    for item in rest:
        dag_id, _, conf = item.partition("=")
        dag_run = bag.dags[dag_id].test(run_conf=json.loads(conf) if conf else None)
        with create_session() as session:
            tasks = {
                ti.task_id: str(ti.state) for ti in dag_run.get_task_instances(session=session)
            }
        runs.append({"dag_id": dag_id, "state": str(dag_run.state), "tasks": tasks})
    imported = sorted(m for m in sys.modules if m.startswith((*HIDDEN, OURS)))
    print(MARK + json.dumps({"runs": runs, "imported": imported}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
