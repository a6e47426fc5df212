"""docker/compose.yaml, run: the init job as written, every service up, a model trained.

Nothing here knows what the compose file says beyond the service host names it maps (see
tests/compose.py): a broken init script, a variable a service lacks or a secret two services
disagree on fails these tests the way it would stop ``docker compose up``.
"""

from __future__ import annotations

import json
import shlex
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from model_steps.store.model_store import open_store
from tests.cluster import login
from tests.compose import CONTAINER_DAGS, ComposeStack, start_compose
from tests.conftest import REPO
from tests.s3 import MotoServer, storage_options

pytestmark = pytest.mark.integration

RUN_SECONDS = 240.0
GUIDES = (REPO / "docker" / "README.md", REPO / "docs" / "how-to" / "deploy.md")
RUN_PREFIX = "docker compose -f docker/compose.yaml run --rm "


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The stack's own S3 server (what the ``s3`` service runs), empty at the start."""
    with MotoServer(tmp_path_factory.mktemp("compose-s3") / "moto.log").start() as server:
        yield server.endpoint


@pytest.fixture(scope="module")
def stack(s3: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeStack]:
    running = start_compose(tmp_path_factory.mktemp("compose"), s3, {})
    try:
        yield running
    finally:
        running.stop()


def api(stack: ComposeStack, method: str, path: str, token: str, body: Any = None) -> Any:
    request = urllib.request.Request(
        f"{stack.api_url}/api/v2{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method=method,
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def wait(stack: ComposeStack, what: str, found: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := found()):
        for service in stack.running:
            assert service.alive(), f"{service.name} exited:\n{service.tail()}"
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {s.name}\n{s.tail(2000)}" for s in stack.running[2:])
            raise AssertionError(f"{what} not within {timeout:.0f}s\n{logs}")
        time.sleep(1)
    return value


def admin_token(stack: ComposeStack) -> str:
    """Sign in as the admin the init job created, with the compose file's own defaults."""
    init = stack.services["airflow-init"]["environment"]
    return login(
        stack.api_url, init["_AIRFLOW_WWW_USER_USERNAME"], init["_AIRFLOW_WWW_USER_PASSWORD"]
    )


def documented_runs() -> list[list[str]]:
    """Every ``docker compose ... run --rm SERVICE ARGS`` command of the deployment guides."""
    runs = []
    for guide in GUIDES:
        for line in guide.read_text().splitlines():
            start = line.find(RUN_PREFIX)
            if start >= 0:
                command = line[start:].split("`")[0].strip()
                runs.append(shlex.split(command[len(RUN_PREFIX) :]))
    return runs


def test_the_init_job_runs_as_written_and_leaves_the_example_data_in_the_bucket(
    stack: ComposeStack, s3: str
) -> None:
    import s3fs

    assert stack.init is not None and stack.init.returncode == 0
    data_root = stack.services["airflow-worker"]["environment"]["MODEL_STEPS_DATA_ROOT"]
    written = s3fs.S3FileSystem(**storage_options(s3)).find(data_root)
    assert f"{data_root.removeprefix('s3://')}/iris/train.csv" in written


def test_every_documented_compose_run_command_succeeds(stack: ComposeStack) -> None:
    runs = documented_runs()
    assert ["airflow-worker", "model-steps", "validate", CONTAINER_DAGS] in runs
    for service, *argv in runs:
        mapped = [str(stack.dags) if part == CONTAINER_DAGS else part for part in argv]
        done = stack.run_once(service, mapped)
        assert done.returncode == 0, (argv, done.stdout[-2000:], done.stderr[-3000:])
        assert "airflow model-steps" not in done.stderr


def test_iris_training_triggered_through_the_rest_api_publishes_version_1_in_the_bucket(
    stack: ComposeStack, s3: str
) -> None:
    token = admin_token(stack)

    def parsed() -> bool:
        try:
            return bool(api(stack, "GET", "/dags/iris__train", token))
        except urllib.error.HTTPError:
            return False

    wait(stack, "iris__train parsed", parsed, 120)
    api(stack, "PATCH", "/dags/iris__train", token, {"is_paused": False})
    run_id = api(stack, "POST", "/dags/iris__train/dagRuns", token, {"logical_date": None})[
        "dag_run_id"
    ]

    def finished() -> str | None:
        state: str = api(stack, "GET", f"/dags/iris__train/dagRuns/{run_id}", token)["state"]
        return state if state in ("success", "failed") else None

    assert wait(stack, "the training run", finished, RUN_SECONDS) == "success"
    env = stack.services["airflow-worker"]["environment"]
    store = open_store(f"{env['MODEL_STEPS_ASSETS_ROOT']}/iris", storage_options(s3))
    # Unpausing a @daily DAG also starts its scheduled run: either may publish version 1.
    versions = store.versions()
    assert versions[0] == 1
    assert run_id in {store.manifest(version).run_id for version in versions}
    pointer = store.pointer()
    assert pointer is not None and pointer.version in versions
