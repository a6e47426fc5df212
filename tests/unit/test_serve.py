"""The serving app's answers, through FastAPI's TestClient on a real handler and a real store.

Quick cases only; the server as users run it (a process, signals, hot reload) is tested in
tests/integration/test_serve.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from model_steps.serving.server import create_app
from tests.lab import CodeStep, Lab, make_lab, wait_for, write_iris

GUARD_CODE = '''\
def guard(data, limit):
    """Passes data through, but fails (not as a ValueError) on a value over ``limit``."""
    if (data.abs() > limit).any().any():
        raise RuntimeError("a value is over the limit")
    return data
'''
FLOWER = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_iris(tmp_path_factory.mktemp("data"))


@pytest.fixture
def lab(tmp_path: Path, data: Path) -> Lab:
    """A deployed model with a step of code beside the YAML, and no version published."""
    guard = CodeStep("guard", f"serve_step_{uuid.uuid4().hex[:8]}", GUARD_CODE, "{limit: 100}")
    return make_lab(tmp_path, data, name="guarded", step=guard)


def client_for(lab: Lab) -> Iterator[TestClient]:
    with TestClient(create_app(lab.handler()), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def unpublished(lab: Lab) -> Iterator[TestClient]:
    yield from client_for(lab)


@pytest.fixture
def served(lab: Lab) -> Iterator[TestClient]:
    lab.train()
    yield from client_for(lab)


def wait_ready(client: TestClient) -> None:
    """Until the app loaded the published version."""
    wait_for(lambda: client.get("/health").status_code == 200)


def test_predict_and_health_answer_503_while_nothing_is_published(
    unpublished: TestClient,
) -> None:
    health = unpublished.get("/health")
    assert health.status_code == 503
    assert "nothing is published for guarded" in health.json()["models"]["guarded"]["last_error"]
    response = unpublished.post("/predict", json=[FLOWER])
    assert response.status_code == 503
    assert response.json()["detail"].startswith("guarded has no version loaded yet")


def test_a_step_failing_unexpectedly_is_a_json_500_and_the_next_request_is_served(
    served: TestClient,
) -> None:
    wait_ready(served)
    failed = served.post("/predict", json=[{**FLOWER, "sepal_length": 1000}])
    assert failed.status_code == 500
    assert failed.json() == {
        "detail": "the server failed to answer (RuntimeError); its log has the details"
    }
    answered = served.post("/predict", json=[FLOWER])
    assert answered.status_code == 200
    assert answered.json()["predictions"] == ["setosa"]


def test_metrics_count_answers_by_route_and_status(served: TestClient) -> None:
    wait_ready(served)
    served.post("/predict", json=[FLOWER])
    served.post("/predict", json=[])
    served.post("/models/nope/predict", json=[])
    text = served.get("/metrics").text
    assert 'model_steps_server_requests_total{route="/predict",status="200"} 1' in text
    assert 'model_steps_server_requests_total{route="/predict",status="422"} 1' in text
    assert 'model_steps_server_requests_total{route="/models/{name}/predict",status="404"} 1' in (
        text
    )
