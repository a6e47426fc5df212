"""A typo never hides a model: while its file is broken, its last good definition stands.

``typo_iris`` is trained twice, parsed once as the DAG processor does (which keeps its
definition in the deployment's parse cache), then a typo breaks its file. Its DAGs, the command
line, ``model-steps serve`` and the Models API go on from the last good definition and the
store, each saying what is wrong with the file; ``model-steps validate`` still refuses it.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.dag_processing.dagbag import sync_bag_to_db

from model_steps.airflow.broken_files import REPORT_FILE
from model_steps.airflow.dags import build_dags
from model_steps.airflow.outline import ModelOutline, read_outline
from model_steps.cli import main
from tests.conftest import SESSION_DAGS
from tests.integration.conftest import BUNDLE, AirflowApi
from tests.integration.test_serve import FLOWER, predict, serving, wait_ready
from tests.lab import Lab, make_lab

pytestmark = pytest.mark.integration

TYPO = "clas: LogisticRegression"
"""What the typo makes of the classifier's ``class:`` line (line 21 of the file)."""


@pytest.fixture(scope="module")
def broken(
    airflow_api: AirflowApi, example_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Lab]:
    """typo_iris in the session's DAGs folder: versions 1 and 2 published, then a typo.

    The session's DAGs are parsed and its API server started first: the session's own parse
    of the folder is without the typo.
    """
    root = tmp_path_factory.mktemp("typo-assets")
    lab = make_lab(SESSION_DAGS, example_data / "iris" / "train.csv", str(root), name="typo_iris")
    lab.train(C=1.0)
    lab.train(C=0.5)
    build_dags(SESSION_DAGS, os.environ)  # the DAG processor's parse: the good file is cached
    text = lab.definition.read_text()
    lab.definition.write_text(text.replace("class: LogisticRegression", TYPO))
    build_dags(SESSION_DAGS, os.environ)  # and its parse after the typo
    try:
        yield lab
    finally:
        lab.definition.unlink()
        build_dags(SESSION_DAGS, os.environ)
        sync_bag_to_db(report_bag(), bundle_name=BUNDLE, bundle_version=None)


def report_bag() -> Any:
    """The DAG processor's parse of the file whose import error counts broken model files."""
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(
        dag_folder=SESSION_DAGS / REPORT_FILE, bundle_path=SESSION_DAGS, bundle_name=BUNDLE
    )


def import_errors(api: AirflowApi) -> dict[str, str]:
    """Airflow's import errors, as its REST API lists them to an admin: file to stack trace."""
    with api.client("admin") as admin:
        answer = admin.get("/api/v2/importErrors").json()
    return {e["filename"]: e["stack_trace"] for e in answer["import_errors"]}


def test_validate_still_refuses_the_broken_file(broken: Lab, capsys: Any) -> None:
    assert main(["validate", str(broken.definition)]) == 1
    assert "clas" in capsys.readouterr().out


def test_its_dags_run_the_last_good_definition_and_say_the_file_is_broken(broken: Lab) -> None:
    dags = build_dags(SESSION_DAGS, os.environ)
    train = dags["typo_iris__train"]
    assert not any(dag_id.startswith("invalid__typo_iris") for dag_id in dags)
    assert "`typo_iris.yaml` is broken" in (train.doc_md or "")
    outline = read_outline(train.tasks[0].doc_json)
    assert isinstance(outline, ModelOutline)
    assert [p.line for p in outline.problems] == [21]
    assert [s.id for s in outline.steps] == ["scale", "classify"]


def test_a_task_start_builds_the_dag_the_scheduler_runs_from_the_last_good_definition(
    broken: Lab,
) -> None:
    scheduled = build_dags(SESSION_DAGS, os.environ)["typo_iris__train"]
    started = build_dags(SESSION_DAGS, os.environ, "typo_iris__train")
    assert list(started) == ["typo_iris__train"]
    assert started["typo_iris__train"].task_ids == scheduled.task_ids
    assert started["typo_iris__train"].schedule == scheduled.schedule


def test_versions_work_from_the_store_and_say_the_file_is_broken(broken: Lab, capsys: Any) -> None:
    assert main(["versions", "typo_iris"]) == 0
    out, err = capsys.readouterr()
    assert [line.split()[:2] for line in out.splitlines()[1:]] == [["1", "published"], ["*", "2"]]
    assert "typo_iris.yaml:21:" in err
    assert "using the last good definition of 'typo_iris'" in err


def test_rollback_works_while_the_file_is_broken(broken: Lab, capsys: Any) -> None:
    assert main(["rollback", "typo_iris", "--to", "1"]) == 0
    assert "current version is now 1 (was 2)" in capsys.readouterr().out
    pointer = broken.store.pointer()
    assert pointer is not None and pointer.version == 1


def test_serve_starts_and_predicts_while_the_file_is_broken(broken: Lab, tmp_path: Path) -> None:
    environ = {"MODEL_STEPS_DAGS_FOLDER": str(SESSION_DAGS)}
    with serving("typo_iris", log=tmp_path / "server.log", environ=environ) as server:
        wait_ready(server)
        answer = predict(server, [FLOWER])
    assert answer.status_code == 200, answer.text
    assert answer.json()["version"] == broken.store.pointer().version


def test_the_models_api_shows_the_model_with_its_files_problems(
    broken: Lab, airflow_api: AirflowApi
) -> None:
    with airflow_api.client("admin") as admin:
        detail = admin.get("/model-steps/models/typo_iris")
        listing = admin.get("/model-steps/models").json()
    assert detail.status_code == 200, detail.text
    problems = detail.json()["definition_problems"]
    assert [(p["line"], p["text"].split(":")[0]) for p in problems] == [(21, "typo_iris.yaml")]
    assert detail.json()["versions"] == 2
    assert "typo_iris.yaml" not in [broken_file["file"] for broken_file in listing["invalid"]]


def test_the_models_api_lists_versions_and_rolls_back_while_the_file_is_broken(
    broken: Lab, airflow_api: AirflowApi
) -> None:
    with airflow_api.client("admin") as admin:
        versions = admin.get("/model-steps/models/typo_iris/versions")
        rolled = admin.post("/model-steps/models/typo_iris/rollback", json={"version": 2})
    assert sorted(v["version"] for v in versions.json()["versions"]) == [1, 2]
    assert rolled.status_code == 200, rolled.text
    pointer = broken.store.pointer()
    assert pointer is not None and pointer.version == 2


def test_the_rollback_is_in_airflows_audit_log_under_the_os_user(broken: Lab) -> None:
    from airflow.models.log import Log
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(Log.dag_id, Log.owner, Log.extra).where(Log.event == "model_steps_rollback")
        ).all()
    from_cli = [row for row in rows if '"via": "model-steps"' in row[2] and "typo_iris" in row[2]]
    assert [(dag_id, owner) for dag_id, owner, _ in from_cli] == [
        ("typo_iris__train", getpass.getuser())
    ]


def test_airflow_counts_the_broken_file_among_its_import_errors(
    broken: Lab, airflow_api: AirflowApi
) -> None:
    bag = report_bag()
    sync_bag_to_db(bag, bundle_name=BUNDLE, bundle_version=None)
    assert list(bag.import_errors) == [REPORT_FILE]
    assert bag.dags == {}
    error = import_errors(airflow_api)[REPORT_FILE]
    assert "1 model file(s) no longer validate" in error
    assert "typo_iris.yaml (1 problem(s))" in error


def test_fixing_the_file_clears_the_import_error_and_its_problems(
    broken: Lab, airflow_api: AirflowApi
) -> None:
    text = broken.definition.read_text()
    broken.definition.write_text(text.replace(TYPO, "class: LogisticRegression"))
    build_dags(SESSION_DAGS, os.environ)
    bag = report_bag()
    sync_bag_to_db(bag, bundle_name=BUNDLE, bundle_version=None)
    assert bag.import_errors == {}
    assert REPORT_FILE not in import_errors(airflow_api)
    with airflow_api.client("admin") as admin:
        detail = admin.get("/model-steps/models/typo_iris").json()
    assert detail["definition_problems"] == []
