"""One training run on the cluster of tests/cluster.py: Celery workers that share no disk.

The scenario a platform team runs in production (docker/), without containers: the run's two
steps go to two workers through their Celery queues, data and versions live on S3 reached through
the deployment's default connection, and the published version's Asset event starts inference.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from model_steps.store.model_store import open_store
from tests.cluster import Cluster
from tests.s3 import storage_options

pytestmark = pytest.mark.integration

RUN_SECONDS = 150.0
AIRFLOW_OWN = {"airflow.cfg", "webserver_config.py", "airflow-worker.pid"}
"""Files Airflow itself keeps in a home; the model may add nothing beside them."""


def wait(cluster: Cluster, what: str, found: Callable[[], Any], timeout: float) -> Any:
    """Poll ``found`` until it returns something; fail with the services' logs otherwise."""
    deadline = time.monotonic() + timeout
    while not (value := found()):
        cluster.check()
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {s.name}\n{s.tail(2000)}" for s in cluster.services[2:])
            raise AssertionError(f"{what} not within {timeout:.0f}s\n{logs}")
        time.sleep(0.5)
    return value


def finished_run(cluster: Cluster, token: str, dag_id: str, run_id: str | None = None) -> Any:
    """The DAG's run (``run_id``, else its first) once it finished; fails on a failed run."""
    runs = cluster.api("GET", f"/dags/{dag_id}/dagRuns", token=token)["dag_runs"]
    run = next((r for r in runs if run_id in (None, r["dag_run_id"])), None)
    if run is None or run["state"] not in ("success", "failed"):
        return None
    assert run["state"] == "success", f"{dag_id} run {run['dag_run_id']} failed"
    return run


def hosts(cluster: Cluster, token: str, dag_id: str, run_id: str) -> dict[str, str]:
    """Which worker ran each task of a run (the task instances' recorded host)."""
    path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances"
    instances = cluster.api("GET", path, token=token)["task_instances"]
    return {ti["task_id"]: ti["hostname"] for ti in instances}


def local_files(folder: Path) -> list[str]:
    """Files under a worker's folder that Airflow itself did not put there."""
    return sorted(
        str(path.relative_to(folder))
        for path in folder.rglob("*")
        if path.is_file() and path.name not in AIRFLOW_OWN
    )


def test_training_crosses_workers_publishes_on_s3_and_its_asset_event_starts_inference(
    cluster: Cluster, s3_server: str
) -> None:
    token = cluster.token()
    wait(
        cluster,
        "the iris DAGs parsed",
        lambda: dag_ids(cluster, token) >= {"iris__train", "iris__infer"},
        90,
    )
    started = time.monotonic()
    run_id = cluster.api("POST", "/dags/iris__train/dagRuns", {"logical_date": None}, token)[
        "dag_run_id"
    ]
    wait(
        cluster,
        "the training run",
        lambda: finished_run(cluster, token, "iris__train", run_id),
        RUN_SECONDS,
    )
    print(f"\ntrigger to published under Celery: {time.monotonic() - started:.1f}s")

    either = {"check": "either", "publish": "either"}  # the default queue: any worker
    assert hosts(cluster, token, "iris__train", run_id) | either == {
        "scale": "worker-1",
        "classify": "worker-2",
        **either,
    }
    store = open_store(f"{cluster.env['MODEL_STEPS_ASSETS_ROOT']}/iris", storage_options(s3_server))
    pointer = store.pointer()
    assert pointer is not None
    assert pointer.version == 1
    manifest = store.manifest(1)
    assert manifest.run_id == run_id
    assert all(step.asset and step.asset.url.startswith("s3://") for step in manifest.steps)

    infer = wait(
        cluster,
        "the asset-triggered infer run",
        lambda: finished_run(cluster, token, "iris__infer"),
        RUN_SECONDS,
    )
    assert infer["run_type"] == "asset_triggered"
    record = store.inference(infer["dag_run_id"])
    assert record is not None
    assert record.version == 1
    predictions = pd.read_csv(record.output, storage_options=storage_options(s3_server))
    assert len(predictions) == record.rows == 30

    for name, folder in cluster.workers.items():
        assert local_files(folder) == [], f"{name} wrote to its local disk"


def dag_ids(cluster: Cluster, token: str) -> set[str]:
    return {dag["dag_id"] for dag in cluster.api("GET", "/dags", token=token)["dags"]}
