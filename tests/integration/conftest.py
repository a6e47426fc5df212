"""Shared Airflow fixtures: one metadata DB, one DAGs folder and one DAG sync per session."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from airflow.listeners import hookimpl

from tests.conftest import DATA, EXAMPLES, REPO, SESSION_DAGS

BUNDLE = "dags-folder"
S3_SECRET = "never-log-this-secret-7f3a"
"""The S3 connection's password: tests check it appears in no manifest, card, log or field."""


def parse_folder(folder: Path) -> Any:
    """Parse a DAGs folder the way Airflow's DAG processor does (DagBag over a bundle)."""
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=folder, bundle_path=folder, bundle_name=BUNDLE)


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """A fresh metadata DB with the DAGs-folder bundle registered."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.utils import db

    db.initdb()
    DagBundlesManager().sync_bundles_to_db()


@pytest.fixture(scope="session")
def example_data() -> Path:
    """The example models' data, written once from scikit-learn's bundled datasets."""
    from model_steps.examples import write_example_data

    root = Path(os.environ["MODEL_STEPS_DATA_ROOT"])
    write_example_data(root)
    return root


@pytest.fixture(scope="session")
def s3_models(s3_server: str) -> dict[str, Any]:
    """A bucket on the session's S3 server and the Airflow connection the S3 model names."""
    import s3fs

    options = {
        "key": "testing",
        "secret": S3_SECRET,
        "client_kwargs": {"endpoint_url": s3_server, "region_name": "us-east-1"},
    }
    s3fs.S3FileSystem(**options).call_s3("create_bucket", Bucket="model-steps-e2e")
    connection = {
        "conn_type": "aws",
        "login": "testing",
        "password": S3_SECRET,
        "extra": {"endpoint_url": s3_server, "region_name": "us-east-1"},
    }
    os.environ["AIRFLOW_CONN_MODEL_STEPS_S3"] = json.dumps(connection)
    os.environ["MODEL_STEPS_S3_ASSETS_ROOT"] = "s3://model-steps-e2e/models"
    return {"root": os.environ["MODEL_STEPS_S3_ASSETS_ROOT"], "storage_options": options}


@pytest.fixture(scope="session")
def session_dags(airflow_db: None, s3_models: dict[str, Any]) -> Path:
    """The session's DAGs folder: the examples, a broken definition and an S3-backed model."""
    shutil.copytree(EXAMPLES, SESSION_DAGS, dirs_exist_ok=True)
    shutil.copytree(DATA / "dagbag", SESSION_DAGS, dirs_exist_ok=True)
    return SESSION_DAGS


@pytest.fixture(scope="session")
def synced_bag(session_dags: Path) -> Any:
    """The session folder parsed and serialized into the DB, as dag.test() needs (Airflow 3.1+)."""
    from airflow.dag_processing.dagbag import sync_bag_to_db

    bag = parse_folder(session_dags)
    assert not bag.import_errors, bag.import_errors
    sync_bag_to_db(bag, bundle_name=BUNDLE, bundle_version=None)
    return bag


@dataclass
class RunOutcome:
    """What a user sees of a finished run: its state, each task's state and failure text."""

    state: str
    task_states: dict[str, str]
    errors: dict[str, str]


class _FailureListener:
    """Collects the exception of each failed task; dag.test() keeps it nowhere else."""

    def __init__(self) -> None:
        self.errors: dict[tuple[str, str], str] = {}

    @hookimpl
    def on_task_instance_failed(self, previous_state: Any, task_instance: Any, error: Any) -> None:
        self.errors[(task_instance.dag_id, task_instance.task_id)] = str(error)


@pytest.fixture(scope="session")
def failure_listener() -> Iterator[_FailureListener]:
    from airflow.sdk.listener import get_listener_manager

    listener = _FailureListener()
    manager = get_listener_manager()
    manager.add_listener(listener)
    yield listener
    manager.pm.unregister(listener)


def run_in(
    bag: Any, dag_id: str, listener: _FailureListener, conf: dict[str, Any] | None = None
) -> RunOutcome:
    """Run one DAG of a parsed, synced folder with dag.test() and report what happened."""
    from airflow.utils.session import create_session

    dag_run = bag.dags[dag_id].test(run_conf=conf)
    with create_session() as session:
        states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances(session=session)}
    errors = {task: text for (dag, task), text in listener.errors.items() if dag == dag_id}
    return RunOutcome(str(dag_run.state), states, errors)


@pytest.fixture(scope="session")
def run_dag(synced_bag: Any, failure_listener: _FailureListener) -> Any:
    """Run one DAG of the session folder with dag.test() and report what happened."""

    def run(dag_id: str, conf: dict[str, Any] | None = None) -> RunOutcome:
        return run_in(synced_bag, dag_id, failure_listener, conf)

    return run


# ---- BEGIN Airflow API server fixture (the plugin's API runs inside it) ----------------------
# One real `airflow api-server` per session, on the session's DB, DAGs folder and connections.

import secrets  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402

import httpx  # noqa: E402

from tests.cluster import login  # noqa: E402
from tests.s3 import free_port  # noqa: E402

API_USERS = {"admin": "admin", "viewer": "viewer", "outsider": "viewer"}
"""SimpleAuthManager users of the session's API server, by name and role."""
API_STARTUP_SECONDS = 90.0


@dataclass
class AirflowApi:
    """A running API server: where it listens and how to log in to it."""

    base_url: str
    passwords_file: Path
    log: Path

    def password(self, user: str) -> str:
        """The password SimpleAuthManager generated for ``user`` when the server started."""
        passwords: dict[str, str] = json.loads(self.passwords_file.read_text())
        return passwords[user]

    def token(self, user: str) -> str:
        """A fresh JWT for ``user`` from Airflow's own login endpoint (``POST /auth/token``)."""
        return login(self.base_url, user, self.password(user))

    def client(self, user: str | None = None) -> httpx.Client:
        """A client for the server, signed in as ``user`` with a bearer token, or anonymous."""
        headers = {"Authorization": f"Bearer {self.token(user)}"} if user else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=60)

    def ready(self) -> bool:
        """Whether the server answers its health check right now."""
        try:
            with urllib.request.urlopen(f"{self.base_url}/api/v2/monitor/health", timeout=1):
                return True
        except (urllib.error.URLError, OSError):
            return False


def _api_server_env(passwords_file: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)  # test mode swaps in test-only defaults
    env.update(
        {
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(
                f"{name}:{role}" for name, role in API_USERS.items()
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
            "AIRFLOW__CORE__AUTH_MANAGER": "tests.team_auth.TeamAuthManager",
            # The auth manager is a test module: the server imports it from the repository.
            "PYTHONPATH": os.pathsep.join(
                [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
            ),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        }
    )
    return env


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """Kill the server's process group (uvicorn and its worker) and reap it."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="session")
def airflow_api(synced_bag: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowApi]:
    """The real Airflow API server with the plugin, as a subprocess on a free loopback port."""
    yield from serve_api(tmp_path_factory.mktemp("api-server"))


def serve_api(folder: Path, settings: dict[str, str] | None = None) -> Iterator[AirflowApi]:
    """Run ``airflow api-server`` until the generator closes; ``settings`` add to its env."""
    port = free_port()
    api = AirflowApi(
        f"http://127.0.0.1:{port}", folder / "passwords.json", folder / "api-server.log"
    )
    airflow = str(Path(sys.executable).with_name("airflow"))
    with api.log.open("ab") as log:
        process = subprocess.Popen(
            [airflow, "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            env={**_api_server_env(api.passwords_file), **(settings or {})},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + API_STARTUP_SECONDS
        while not (api.ready() and api.passwords_file.exists()):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"airflow api-server did not start:\n{api.log.read_text()}")
            time.sleep(0.2)
        yield api
    finally:
        _stop_group(process)


@pytest.fixture(scope="module")
def anonymous(airflow_api: AirflowApi) -> Iterator[httpx.Client]:
    """A client of the API server without credentials."""
    with airflow_api.client() as client:
        yield client


@pytest.fixture(scope="module")
def admin(airflow_api: AirflowApi) -> Iterator[httpx.Client]:
    """A client signed in as the admin, with a bearer token."""
    with airflow_api.client("admin") as client:
        yield client


@pytest.fixture(scope="module")
def viewer(airflow_api: AirflowApi) -> Iterator[httpx.Client]:
    """A client signed in as a viewer (may read, may not change), with a bearer token."""
    with airflow_api.client("viewer") as client:
        yield client


@pytest.fixture
def new_runs(airflow_api: AirflowApi) -> Iterator[list[tuple[str, str]]]:
    """Runs a test starts through the API, deleted after it so later modules never see them."""
    started: list[tuple[str, str]] = []
    yield started
    with airflow_api.client("admin") as admin:
        for dag_id, run_id in started:
            admin.delete(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")


# ---- END Airflow API server fixture ------------------------------------------------------------


# ---- BEGIN cluster fixture (tests/cluster.py) --------------------------------------------------
# PostgreSQL, Redis, Airflow's servers and two Celery workers, on the session's S3 server.

from tests.cluster import Cluster, prepare, start_cluster  # noqa: E402

CLUSTER_BUCKET = "model-steps-cluster"
CLUSTER_QUEUES = (("default", "first"), ("default", "second"))
"""Each worker's queues: the cluster model puts one step on each worker's own queue."""
CLUSTER_SETTINGS = {
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "60",
    "AIRFLOW__MODEL_STEPS__PARSE_WATCH_INTERVAL": "1",
}
"""The DAG processor parses an unchanged DAG file again a minute after its last parse at the
earliest: a new YAML listed sooner was asked for by the parse watcher (looking every second)."""


@pytest.fixture(scope="module")  # stopped before the next module: two cores, two stacks
def cluster(s3_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A running cluster whose DAGs folder holds the loader and the S3-backed iris model."""
    root = tmp_path_factory.mktemp("cluster")
    dags, s3 = prepare(root, s3_server, CLUSTER_BUCKET, DATA / "cluster" / "iris.yaml")
    running = start_cluster(root, dags, s3, workers=CLUSTER_QUEUES, settings=CLUSTER_SETTINGS)
    try:
        yield running
    finally:
        running.stop()


# ---- END cluster fixture -----------------------------------------------------------------------
