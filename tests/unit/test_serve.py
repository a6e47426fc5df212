"""The serving app's answers, through FastAPI's TestClient on a real handler and a real store.

Quick cases only; the server as users run it (a process, signals, hot reload) is tested in
tests/integration/test_serve.py.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from model_steps.handler import ModelHandler
from model_steps.loader import load_and_validate
from model_steps.rendered import Rendered
from model_steps.serve import create_app
from model_steps.settings import load_settings
from model_steps.tasks import RunInfo, environment, publish, train_step

STEP_CODE = '''\
def guard(data, limit):
    """Passes data through, but fails (not as a ValueError) on a value over ``limit``."""
    if (data.abs() > limit).any().any():
        raise RuntimeError("a value is over the limit")
    return data
'''

DEFINITION = """\
apiVersion: model-steps/v1
kind: Model
name: guarded
status: deployed
assets: {{root: {root}}}
steps:
  - id: guard
    parameters:
      callable: {module}:guard
      init: {{limit: 100}}
      input:
        train: {{url: {data}}}
      training: {{target: y}}
  - id: fit
    has_assets: true
    assets_identifier: model.joblib
    parameters:
      package: sklearn.linear_model
      class: LinearRegression
"""


@pytest.fixture
def definition(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A deployed model whose first step is code beside the YAML, with no version published.

    The YAML's folder is the DAGs folder, so training may import the code there, as in Airflow.
    """
    monkeypatch.setenv("MODEL_STEPS_DAGS_FOLDER", str(tmp_path))
    monkeypatch.syspath_prepend(str(tmp_path))
    module = f"serve_step_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(STEP_CODE)
    data = tmp_path / "train.csv"
    data.write_text("a,b,y\n" + "".join(f"{i},{i % 3},{2 * i}\n" for i in range(20)))
    path = tmp_path / "guarded.yaml"
    path.write_text(DEFINITION.format(root=tmp_path / "assets", module=module, data=data))
    return path


def publish_version(path: Path) -> int:
    settings = load_settings()
    (model,) = load_and_validate([path], settings.environ).models
    env = environment(model.spec, settings, {})
    run = RunInfo(dag_id="guarded__train", run_id=uuid.uuid4().hex)
    for step in model.spec.steps:
        train_step(model.spec, step.id, run, env, Rendered.templates(step, "train"))
    return int(publish(model.spec, run, env)["version"])


def client_for(path: Path) -> Iterator[TestClient]:
    handler = ModelHandler.from_definition(path, poll_interval=0.05)
    with TestClient(create_app(handler), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def unpublished(definition: Path) -> Iterator[TestClient]:
    yield from client_for(definition)


@pytest.fixture
def served(definition: Path) -> Iterator[TestClient]:
    publish_version(definition)
    yield from client_for(definition)


def wait_ready(client: TestClient) -> None:
    deadline = time.monotonic() + 10
    while client.get("/health").status_code != 200:
        if time.monotonic() > deadline:
            pytest.fail("the app did not load the published version within 10 s")
        time.sleep(0.02)


def test_predict_and_health_answer_503_while_nothing_is_published(
    unpublished: TestClient,
) -> None:
    health = unpublished.get("/health")
    assert health.status_code == 503
    assert "nothing is published for guarded" in health.json()["models"]["guarded"]["last_error"]
    response = unpublished.post("/predict", json=[{"a": 1, "b": 2}])
    assert response.status_code == 503
    assert response.json()["detail"].startswith("guarded has no version loaded yet")


def test_a_step_failing_unexpectedly_is_a_json_500_and_the_next_request_is_served(
    served: TestClient,
) -> None:
    wait_ready(served)
    failed = served.post("/predict", json=[{"a": 1000, "b": 1}])
    assert failed.status_code == 500
    assert failed.json() == {
        "detail": "the server failed to answer (RuntimeError); its log has the details"
    }
    answered = served.post("/predict", json=[{"a": 4, "b": 1}])
    assert answered.status_code == 200
    assert answered.json()["predictions"] == [pytest.approx(8.0)]


def test_metrics_count_answers_by_route_and_status(served: TestClient) -> None:
    wait_ready(served)
    served.post("/predict", json=[{"a": 1, "b": 1}])
    served.post("/predict", json=[])
    served.post("/models/nope/predict", json=[])
    text = served.get("/metrics").text
    assert 'model_steps_server_requests_total{route="/predict",status="200"} 1' in text
    assert 'model_steps_server_requests_total{route="/predict",status="422"} 1' in text
    assert 'model_steps_server_requests_total{route="/models/{name}/predict",status="404"} 1' in (
        text
    )
