"""One training run on the cluster of tests/cluster.py: Celery workers that share no disk.

The scenario a platform team runs in production (docker/), without containers: the run's two
steps go to two workers through their Celery queues, data and versions live on S3 reached through
the deployment's default connection, and the published version's Asset event starts inference.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import datetime
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


def parsed(cluster: Cluster, token: str, name: str) -> dict[str, str]:
    """The DAGs of the definition ``name.yaml`` (or its placeholder) with their descriptions."""
    dags = cluster.api("GET", "/dags", token=token)["dags"]
    return {d["dag_id"]: d["description"] for d in dags if name in d["dag_id"]}


def dag_ids(cluster: Cluster, token: str) -> set[str]:
    return {dag["dag_id"] for dag in cluster.api("GET", "/dags", token=token)["dags"]}


PARTITIONED = """\
apiVersion: model-steps/v1
kind: Model
name: iris_parts
description: The cluster's iris model on the default queue, its input cut into small partitions.
assets:
  root: ${MODEL_STEPS_ASSETS_ROOT}
  directory: iris_parts
airflow:
  partition_size: 100B
  task_defaults: {retries: 1, retry_delay: 5s, execution_timeout: 10m}
steps:
  - id: scale
    has_assets: true
    assets_identifier: scaler.joblib
    parameters:
      package: sklearn.preprocessing
      class: StandardScaler
      input:
        train: {url: "${MODEL_STEPS_DATA_ROOT}/iris/train.csv"}
        infer: {url: "${MODEL_STEPS_DATA_ROOT}/iris/score.csv"}
      training: {target: species}
  - id: classify
    has_assets: true
    assets_identifier: model.joblib
    parameters:
      package: sklearn.linear_model
      class: LogisticRegression
      init: {C: 1.0, max_iter: 500}
      output:
        infer: {url: "${MODEL_STEPS_DATA_ROOT}/iris/parts/{{ run_id }}.parquet"}
"""


def test_one_infer_runs_partitions_on_both_workers_and_writes_what_one_process_computes(
    cluster: Cluster, s3_server: str
) -> None:
    from model_steps.runtime.context import Environment
    from model_steps.runtime.infer import infer_frame, version_pipeline
    from model_steps.settings import AllowList

    (cluster.dags / "iris_parts.yaml").write_text(PARTITIONED)  # the parse watcher sees it
    token = cluster.token()
    dags = wait(cluster, "iris_parts parsed", lambda: parsed(cluster, token, "iris_parts"), 120)
    assert "iris_parts__infer" in dags, dags  # else a placeholder: the definition's problems
    for dag_id in ("iris_parts__train", "iris_parts__infer"):
        cluster.api("PATCH", f"/dags/{dag_id}", {"is_paused": False}, token)
    train = cluster.api("POST", "/dags/iris_parts__train/dagRuns", {"logical_date": None}, token)
    wait(
        cluster,
        "the training run",
        lambda: finished_run(cluster, token, "iris_parts__train", train["dag_run_id"]),
        RUN_SECONDS,
    )
    infer = cluster.api("POST", "/dags/iris_parts__infer/dagRuns", {"logical_date": None}, token)
    run_id = infer["dag_run_id"]
    wait(
        cluster,
        "the partitioned infer run",
        lambda: finished_run(cluster, token, "iris_parts__infer", run_id),
        RUN_SECONDS,
    )
    path = f"/dags/iris_parts__infer/dagRuns/{run_id}/taskInstances"
    instances = cluster.api("GET", path, token=token)["task_instances"]
    mapped = [ti for ti in instances if ti["task_id"] in ("scale", "classify")]
    assert len({ti["map_index"] for ti in mapped}) > 2  # the 30 rows made several partitions
    assert {ti["hostname"] for ti in mapped} == {"worker-1", "worker-2"}

    options = storage_options(s3_server)
    store = open_store(f"{cluster.env['MODEL_STEPS_ASSETS_ROOT']}/iris_parts", options)
    record = store.inference(run_id)
    assert record is not None
    written = pd.read_parquet(record.output, storage_options=options)
    data = pd.read_csv(
        f"{cluster.env['MODEL_STEPS_DATA_ROOT']}/iris/score.csv", storage_options=options
    )
    env = Environment(store, options, AllowList())
    one_process = infer_frame(version_pipeline(store.manifest(record.version), env), data)
    assert written.equals(one_process.reset_index(drop=True))  # every row, in input order


WATCHED_SECONDS = 30.0
FRESH_SECONDS = 15.0
"""With the YAML written at most this long after the file's last parse, and listed within
:data:`WATCHED_SECONDS`, Airflow alone (a minute between two parses) could not have done it."""


def last_parsed(cluster: Cluster, token: str, dag_id: str) -> float:
    """When the DAG processor last parsed ``dag_id``'s file (wall time, from Airflow's API)."""
    stamp = cluster.api("GET", f"/dags/{dag_id}", token=token)["last_parsed_time"]
    return datetime.fromisoformat(stamp).timestamp()


def test_a_new_yaml_is_listed_in_seconds_because_the_parse_watcher_asks_for_its_file(
    cluster: Cluster,
) -> None:
    token = cluster.token()
    wait(cluster, "the iris DAGs parsed", lambda: "iris__train" in dag_ids(cluster, token), 90)
    before = last_parsed(cluster, token, "iris__train")
    os.utime(cluster.dags / "iris.yaml")  # an edit: the watcher has the loader parsed at once
    wait(cluster, "a fresh parse", lambda: last_parsed(cluster, token, "iris__train") > before, 30)
    processor = next(s for s in cluster.services if s.name == "dag-processor")
    seen = len(processor.log.read_text(errors="replace"))
    (cluster.dags / "iris_watched.yaml").write_text(
        PARTITIONED.replace("iris_parts", "iris_watched")
    )
    written = time.time()
    assert written - last_parsed(cluster, token, "iris__train") < FRESH_SECONDS
    dags = wait(
        cluster,
        "iris_watched parsed",
        lambda: parsed(cluster, token, "iris_watched"),
        WATCHED_SECONDS,
    )
    print(f"\nnew YAML -> its DAGs listed: {time.time() - written:.1f}s")
    assert set(dags) == {"iris_watched__train", "iris_watched__infer"}
    log = processor.log.read_text(errors="replace")[seen:]
    assert "asked Airflow to parse ['model_steps_loader.py'] of dags-folder next" in log
