"""Cluster benchmark: trigger-to-published time of iris under the CeleryExecutor.

Starts the cluster of ``tests/cluster.py`` (PostgreSQL, Redis, a moto S3 server, Airflow's
servers and two Celery workers, the model's steps on different workers), triggers
``iris__train`` through the REST API ``--runs`` times one after another, and reports the time
from the trigger request to the run's success (its publish task moved ``current.json``) and to
the end of the inference run its Asset event started. The baseline, in this process on the same
S3 server, is the same three tasks called directly (``train_step`` twice, then ``publish``):
the ratio is what scheduling, Celery, per-task processes and DAG parsing add.

Usage: ``python bench/cluster.py [--runs 5]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.cluster import REPO, Cluster, prepare, start_cluster
from tests.s3 import MotoServer, storage_options

from model_steps.definition.loader import load_and_validate
from model_steps.runtime.context import RunInfo, environment
from model_steps.runtime.publish import publish
from model_steps.runtime.rendered import Rendered
from model_steps.runtime.train import train_step
from model_steps.settings import load_settings

MODEL = REPO / "tests" / "data" / "cluster" / "iris.yaml"
QUEUES = (("default", "first"), ("default", "second"))


def finished(cluster: Cluster, token: str, dag_id: str, run_id: str | None) -> Any:
    runs = cluster.api("GET", f"/dags/{dag_id}/dagRuns?order_by=-run_after", token=token)
    for run in runs["dag_runs"]:
        if run_id in (None, run["dag_run_id"]) and run["state"] in ("success", "failed"):
            if run["state"] != "success":
                raise RuntimeError(f"{dag_id} {run['dag_run_id']} failed")
            return run
    return None


def wait(cluster: Cluster, probe: Any, timeout: float = 300) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := probe()):
        cluster.check()
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        time.sleep(0.1)
    return found


def celery_runs(cluster: Cluster, runs: int) -> tuple[list[float], list[float]]:
    token = cluster.token()
    wait(cluster, lambda: len(cluster.api("GET", "/dags", token=token)["dags"]) >= 2)
    published, inferred = [], []
    seen: set[str] = set()
    for _ in range(runs):
        start = time.monotonic()
        run = cluster.api("POST", "/dags/iris__train/dagRuns", {"logical_date": None}, token)
        run_id = run["dag_run_id"]
        wait(cluster, lambda: finished(cluster, token, "iris__train", run_id))  # noqa: B023
        published.append(time.monotonic() - start)

        def new_inference() -> Any:
            done = finished(cluster, token, "iris__infer", None)
            return done if done and done["dag_run_id"] not in seen else None

        seen.add(wait(cluster, new_inference)["dag_run_id"])
        inferred.append(time.monotonic() - start)
    return published, inferred


def in_process(s3: dict[str, str], endpoint: str, runs: int) -> list[float]:
    environ = {
        "MODEL_STEPS_ASSETS_ROOT": s3["assets_root"] + "-baseline",
        "MODEL_STEPS_DATA_ROOT": s3["data_root"],
    }
    (loaded,) = load_and_validate([MODEL], environ).models
    spec = loaded.spec
    env = environment(spec, load_settings({**os.environ, **environ}), storage_options(endpoint))
    times = []
    for number in range(runs):
        start = time.monotonic()
        run = RunInfo("iris__train", f"baseline__{number}")
        for step in spec.steps:
            train_step(spec, step.id, run, env, Rendered.templates(step, "train"))
        publish(spec, run, env)
        times.append(time.monotonic() - start)
    return times


def rounded(times: list[float]) -> list[float]:
    return [round(t, 2) for t in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="model-steps-bench-cluster-"))
    with MotoServer(root / "moto.log").start() as moto:
        dags, s3 = prepare(root, moto.endpoint, "bench-cluster", MODEL)
        started = time.monotonic()
        cluster = start_cluster(root, dags, s3, workers=QUEUES)
        print(f"cluster up in {time.monotonic() - started:.1f}s (logs under {root})")
        try:
            published, inferred = celery_runs(cluster, args.runs)
        finally:
            cluster.stop()
        baseline = in_process(s3, moto.endpoint, args.runs)
    median = statistics.median
    print(f"runs: {args.runs}")
    print(
        f"trigger -> published (Celery): median {median(published):.2f}s, all {rounded(published)}"
    )
    print(f"trigger -> inferred (Celery):  median {median(inferred):.2f}s, all {rounded(inferred)}")
    print(f"same tasks in-process:         median {median(baseline):.2f}s")
    print(f"ratio Celery / in-process:     {median(published) / median(baseline):.1f}x")


if __name__ == "__main__":
    main()
