"""The Models API in an API server without DAG files, as the official Helm chart runs it.

Airflow 3's API server reads DAGs from the metadata DB; the chart mounts DAG files (git-sync, a
volume, a bundle) only into the DAG processor, scheduler, workers and triggerer. Here a bundle
away from the DAGs folder holds a model that waits for approval and a broken file; the DAG
processor's work (parse and store) is done, and then an API server whose DAGs folder does not
exist must still list every model, its versions and its errors, and pause, resume, approve and
roll back.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from model_steps.airflow import dags
from tests.bundles import bundle_with, sync_bundle
from tests.conftest import DATA
from tests.integration.conftest import AirflowApi, RunOutcome, run_in, serve_api
from tests.integration.test_api import models, summary

pytestmark = pytest.mark.integration

PREFIX = "/model-steps"
BUNDLE = "db-only"
MODEL = "dbonly_iris"
BROKEN = "team/dbonly_broken.yaml"
OLD_LOADER = "model_steps_loader_old.py"
"""A DAG file of the package's that cannot import: its error shows among the invalid files."""


@pytest.fixture(scope="module")
def bag(airflow_db: None, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The bundle, parsed and stored by 'the DAG processor': a gated model and a broken file."""
    model = (DATA / "dagbag" / "gate" / "reviewed_iris.yaml").read_text()
    broken = (DATA / "dagbag" / "broken" / "iris_typo.yaml").read_text()
    files = {
        f"{MODEL}.yaml": model.replace("name: reviewed_iris\n", f"name: {MODEL}\n"),
        BROKEN: broken.replace("name: iris_broken\n", "name: dbonly_broken\n"),
        OLD_LOADER: "# an airflow DAG loader of an older release\n"
        "from model_steps.airflow.dags import build_all_dags\n",
    }
    folder = bundle_with(tmp_path_factory.mktemp("bundles") / BUNDLE, files)
    return sync_bundle(BUNDLE, folder, failing=(OLD_LOADER,))


@pytest.fixture(scope="module")
def trained(bag: Any, failure_listener: Any, example_data: Path) -> list[RunOutcome]:
    """Two candidates, both waiting for a person: versions 1 and 2, none live."""
    return [run_in(bag, f"{MODEL}__train", failure_listener) for _ in range(2)]


@pytest.fixture(scope="module")
def server(bag: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowApi]:
    """An API server whose DAGs folder does not exist: it knows only the metadata DB."""
    folder = tmp_path_factory.mktemp("api-without-dags")
    nowhere = folder / "no-dags-here"
    yield from serve_api(folder, {"AIRFLOW__CORE__DAGS_FOLDER": str(nowhere)})


@pytest.fixture(scope="module")
def admin(server: AirflowApi) -> Iterator[httpx.Client]:
    with server.client("admin") as client:
        yield client


def post(client: httpx.Client, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return client.post(f"{PREFIX}/models/{MODEL}{path}", json=body or {})


def test_the_server_has_no_dag_files_yet_airflow_lists_the_dags(
    server: AirflowApi, admin: httpx.Client
) -> None:
    assert not server.log.with_name("no-dags-here").exists()
    response = admin.get("/api/v2/dags", params={"dag_id_pattern": MODEL})
    assert [d["dag_id"] for d in response.json()["dags"]] == [f"{MODEL}__train"]


def test_every_model_lists_from_what_the_dag_processor_stored(admin: httpx.Client) -> None:
    model = summary(admin, MODEL)
    assert (model["file"], model["bundle"]) == (f"{MODEL}.yaml", BUNDLE)
    assert model["description"] == "Iris species, published only when a person approves it."
    assert [(d["dag_id"], d["kind"]) for d in model["dags"]] == [(f"{MODEL}__train", "train")]
    assert model["schedule_status"] == "paused"


def test_a_broken_file_lists_with_its_located_problems(admin: httpx.Client) -> None:
    (broken,) = [f for f in models(admin)["invalid"] if f["file"] == BROKEN]
    assert broken["bundle"] == BUNDLE
    typo = next(p for p in broken["problems"] if p["field"] == "steps[0].parameters.clas")
    assert (typo["line"], typo["column"]) == (11, 7)
    assert typo["text"].startswith(f"{BROKEN}:11:7: steps[0].parameters.clas: ")


def test_a_loader_file_that_cannot_import_lists_with_its_error(admin: httpx.Client) -> None:
    (failed,) = [f for f in models(admin)["invalid"] if f["file"] == OLD_LOADER]
    assert failed["bundle"] == BUNDLE
    (problem,) = failed["problems"]
    assert problem["message"] == (
        "ImportError: cannot import name 'build_all_dags' from 'model_steps.airflow.dags' "
        f"({Path(dags.__file__)})"
    )


def test_a_broken_models_page_says_its_file_is_invalid(admin: httpx.Client) -> None:
    response = admin.get(f"{PREFIX}/models/dbonly_broken")
    assert response.status_code == 404
    assert "its definition file is invalid" in response.json()["detail"]


def test_the_detail_shows_steps_and_documentation(admin: httpx.Client) -> None:
    detail = admin.get(f"{PREFIX}/models/{MODEL}").json()
    assert [s["id"] for s in detail["steps"]] == ["scale", "classify"]
    assert detail["parameters"]["C"]["default"] == 1.0


def test_the_versions_of_a_model_are_read_from_its_store(
    admin: httpx.Client, trained: list[RunOutcome]
) -> None:
    assert [run.state for run in trained] == ["success", "success"]
    versions = admin.get(f"{PREFIX}/models/{MODEL}/versions").json()
    assert versions["current"] is None
    assert [(v["version"], v["status"]) for v in versions["versions"]] == [
        (2, "pending"),
        (1, "pending"),
    ]


def test_approve_then_roll_back(admin: httpx.Client, trained: list[RunOutcome]) -> None:
    for version in (1, 2):
        approved = post(admin, f"/versions/{version}/approve", {"reason": "checked"})
        assert approved.status_code == 200, approved.text
        assert approved.json()["live_version"] == version
    rolled = post(admin, "/rollback", {"version": 1})
    assert rolled.status_code == 200, rolled.text
    assert rolled.json() == {"model": MODEL, "version": 1, "previous": 2, "infer_run": None}
    assert summary(admin, MODEL)["live_version"] == 1


def test_resume_then_pause(admin: httpx.Client) -> None:
    try:
        resumed = post(admin, "/resume")
        assert resumed.status_code == 200, resumed.text
        assert summary(admin, MODEL)["schedule_status"] == "active"
    finally:
        paused = post(admin, "/pause")
    assert paused.status_code == 200, paused.text
    assert [d["paused"] for d in paused.json()["dags"]] == [True]
