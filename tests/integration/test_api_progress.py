"""The Models API's progress of running infer runs: rows done of rows total, per step."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from model_steps.definition.loader import load_and_validate
from model_steps.runtime.context import RunInfo, environment
from model_steps.runtime.partitioned import infer_partition, plan_infer
from model_steps.runtime.rendered import Rendered
from model_steps.settings import load_settings
from tests.conftest import SESSION_DAGS

pytestmark = pytest.mark.integration

PREFIX = "/model-steps"
MODEL = "api_iris"
RUN_ID = "manual__progress"


@pytest.fixture(scope="module")
def running(run_dag: Any, example_data: Path, session_dags: Path) -> Iterator[str]:
    """A trained ``api_iris`` and an infer run of it marked running, its first step done."""
    from airflow.models.dagrun import DagRun
    from airflow.sdk import timezone
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunType

    assert run_dag(f"{MODEL}__train").state == "success"
    settings = load_settings()
    (model,) = load_and_validate([SESSION_DAGS / "api" / f"{MODEL}.yaml"], settings.environ).models
    spec = model.spec
    env = environment(spec, settings, {})
    run = RunInfo(f"{MODEL}__infer", RUN_ID)
    first = spec.steps[0]
    partitions = plan_infer(spec, run, env, Rendered.templates(first, "infer"), 200)
    for index in partitions:
        infer_partition(spec, first.id, index, run, env, Rendered.templates(first, "infer"))
    with create_session() as session:
        session.add(
            DagRun(
                dag_id=f"{MODEL}__infer",
                run_id=RUN_ID,
                run_type=DagRunType.MANUAL,
                state=DagRunState.RUNNING,
                run_after=timezone.utcnow(),
            )
        )
    yield RUN_ID
    with create_session() as session:
        session.query(DagRun).filter(DagRun.run_id == RUN_ID).delete()


def test_progress_shows_a_running_infer_runs_rows_done_of_total_per_step(
    admin: httpx.Client, running: str
) -> None:
    response = admin.get(f"{PREFIX}/models/{MODEL}/progress")
    assert response.status_code == 200, response.text
    (run,) = response.json()["runs"]
    assert run["run_id"] == running
    scale, classify = run["steps"]
    assert (scale["step"], scale["rows_done"], scale["rows_total"]) == ("scale", 30, 30)
    assert scale["partitions_done"] == scale["partitions"] > 1
    assert (classify["rows_done"], classify["partitions_done"]) == (0, 0)


def test_progress_needs_an_airflow_user(airflow_api: Any) -> None:
    with httpx.Client(base_url=airflow_api.base_url) as anonymous:
        assert anonymous.get(f"{PREFIX}/models/{MODEL}/progress").status_code == 401
