"""What Airflow itself sees when it parses a DAGs folder holding model definitions."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DATA, EXAMPLES
from tests.definitions import definition
from tests.integration.conftest import parse_folder

pytestmark = pytest.mark.integration

EXAMPLE_DAG_IDS = {
    "iris__train",
    "iris__infer",
    "diabetes__train",
    "diabetes__infer",
    "diabetes__evaluate",
}
LOADER = EXAMPLES / "model_steps_loader.py"


@pytest.fixture(scope="module")
def examples() -> Any:
    return parse_folder(EXAMPLES)


def upstream_chain(dag: Any) -> list[str]:
    """Task ids in dependency order, checking the DAG is one straight line."""
    order = [task.task_id for task in dag.topological_sort()]
    for before, after in itertools.pairwise(order):
        assert dag.get_task(after).upstream_task_ids == {before}
    return order


def test_example_folder_loads_every_model_without_import_errors(examples: Any) -> None:
    assert examples.import_errors == {}
    assert set(examples.dag_ids) == EXAMPLE_DAG_IDS


def test_train_dag_checks_then_runs_each_step_in_order_then_publishes(examples: Any) -> None:
    assert upstream_chain(examples.dags["iris__train"]) == [
        "check",
        "scale",
        "classify",
        "publish",
    ]
    assert upstream_chain(examples.dags["diabetes__train"]) == [
        "check",
        "features",
        "regress",
        "gate",
        "publish",
    ]


def test_infer_dag_plans_partitions_then_runs_each_step_mapped_over_them_then_writes(
    examples: Any,
) -> None:
    infer = examples.dags["iris__infer"]
    order = [task.task_id for task in infer.topological_sort()]
    assert order == ["partitions", "scale", "classify", "output"]
    upstream = {task_id: infer.get_task(task_id).upstream_task_ids for task_id in order}
    assert upstream == {
        "partitions": set(),
        "scale": {"partitions"},
        "classify": {"partitions", "scale"},  # mapped over the partitions, after the step before
        "output": {"classify"},
    }
    assert [type(infer.get_task(t)).__name__ for t in order] == [
        "ModelStepOperator",
        "MappedOperator",
        "MappedOperator",
        "ModelStepOperator",
    ]


def test_mapped_steps_leave_nothing_for_airflows_own_template_environment(examples: Any) -> None:
    """Airflow renders a mapped task's template fields itself, outside our sandbox: a mapped
    step must have none (it renders its values in the sandbox when it runs)."""
    infer = examples.dags["iris__infer"]
    assert infer.get_task("scale").template_fields == ()
    assert infer.get_task("classify").template_fields == ()
    assert infer.get_task("partitions").template_fields == ("rendered",)


def test_schedules_follow_the_definition(examples: Any) -> None:
    assert examples.dags["iris__train"].schedule == "@daily"
    assert examples.dags["diabetes__train"].schedule == "0 3 * * 1"
    assert examples.dags["diabetes__infer"].schedule == "@daily"


def test_infer_on_new_version_is_scheduled_on_the_model_asset_that_publish_updates(
    examples: Any,
) -> None:
    infer = examples.dags["iris__infer"]
    publish = examples.dags["iris__train"].get_task("publish")
    (outlet,) = publish.outlets
    assert outlet.name == "model-steps.iris"
    assert infer.schedule == outlet


def test_schedule_status_sets_pause_on_creation(tmp_path: Path) -> None:
    active = definition("active_one", "schedule: {train: '@hourly', status: active}\n")
    (tmp_path / "active_one.yaml").write_text(active)
    shutil.copy(LOADER, tmp_path)
    bag = parse_folder(tmp_path)
    assert bag.dags["active_one__train"].is_paused_upon_creation is False
    assert parse_folder(EXAMPLES).dags["iris__train"].is_paused_upon_creation is True


def test_model_parameters_become_params_of_the_trigger_form(examples: Any) -> None:
    param = examples.dags["iris__train"].params.get_param("C")
    assert param.value == 1.0
    assert param.schema["type"] == "number"
    assert param.schema["minimum"] == 0.0001
    assert "regularisation" in param.description


def test_tags_owner_and_docs_come_from_the_definition(examples: Any) -> None:
    dag = examples.dags["iris__train"]
    assert set(dag.tags) == {"model-steps", "example", "classification", "botany"}
    assert dag.owner == "ml-platform"
    assert dag.description.startswith("Train iris: Classifies iris flowers")
    assert "| 2 | `classify` | Logistic regression |" in dag.doc_md
    assert "First version, a standard scaler" in dag.doc_md


def test_training_runs_one_at_a_time(examples: Any) -> None:
    assert examples.dags["iris__train"].max_active_runs == 1


def test_task_arguments_pass_through_from_model_and_step(examples: Any) -> None:
    dag = examples.dags["diabetes__train"]
    assert dag.dagrun_timeout == timedelta(hours=1)
    features, regress = dag.get_task("features"), dag.get_task("regress")
    assert features.retries == 2
    assert features.retry_delay == timedelta(minutes=1)
    assert features.retry_exponential_backoff
    assert regress.execution_timeout == timedelta(minutes=20)


def folder_with_broken_models(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLES, tmp_path, dirs_exist_ok=True)
    (tmp_path / "team_a").mkdir()
    (tmp_path / "team_a" / "syntax.yaml").write_text(
        "apiVersion: model-steps/v1\nkind: Model\nname: [unclosed\n"
    )
    shutil.copy(DATA / "dagbag" / "broken" / "iris_typo.yaml", tmp_path / "team_a" / "typo.yaml")
    copy = (EXAMPLES / "iris.yaml").read_text()
    (tmp_path / "team_a" / "iris_copy.yaml").write_text(copy)
    return tmp_path


def test_broken_definitions_never_hide_the_valid_models(tmp_path: Path) -> None:
    bag = parse_folder(folder_with_broken_models(tmp_path))
    assert bag.import_errors == {}
    assert set(bag.dag_ids) >= EXAMPLE_DAG_IDS
    assert set(bag.dag_ids) - EXAMPLE_DAG_IDS == {
        "model_steps_invalid__team_a__syntax_yaml",
        "model_steps_invalid__team_a__typo_yaml",
        "model_steps_invalid__team_a__iris_copy_yaml",
    }


def test_broken_definition_shows_its_errors_in_a_paused_tagged_placeholder(
    tmp_path: Path,
) -> None:
    bag = parse_folder(folder_with_broken_models(tmp_path))
    placeholder = bag.dags["model_steps_invalid__team_a__typo_yaml"]
    assert placeholder.is_paused_upon_creation is True
    assert "model-steps:invalid" in placeholder.tags
    assert placeholder.description.startswith("Invalid model definition team_a/typo.yaml: line 6")
    assert "typo.yaml:6:3: schedule.train: unknown preset '@dayly'" in placeholder.doc_md
    assert "typo.yaml:11:7: steps[0].parameters.clas: unknown field 'clas'" in placeholder.doc_md
    assert placeholder.task_ids == ["report_errors"]


def test_a_definition_reading_outside_the_allowed_data_is_a_placeholder_not_dags(
    tmp_path: Path,
) -> None:
    shutil.copytree(EXAMPLES, tmp_path, dirs_exist_ok=True)
    outside = definition("reader").replace("s3://data/train.csv", "/etc/model-steps.csv")
    (tmp_path / "reader.yaml").write_text(outside)
    bag = parse_folder(tmp_path)
    assert set(bag.dag_ids) - EXAMPLE_DAG_IDS == {"model_steps_invalid__reader_yaml"}
    placeholder = bag.dags["model_steps_invalid__reader_yaml"]
    assert "steps[0].parameters.input.train.url" in placeholder.doc_md
    assert "it is outside the allowed data locations" in placeholder.doc_md


def test_copied_definition_with_the_same_name_is_reported_not_the_original(
    tmp_path: Path,
) -> None:
    bag = parse_folder(folder_with_broken_models(tmp_path))
    placeholder = bag.dags["model_steps_invalid__team_a__iris_copy_yaml"]
    assert "model name 'iris' belongs to the definition in" in placeholder.doc_md
    assert bag.dags["iris__train"].fileloc.endswith("model_steps_loader.py")


def test_task_start_builds_only_its_own_dag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "iris__infer")
    assert parse_folder(EXAMPLES).dag_ids == ["iris__infer"]


def test_task_start_of_a_placeholder_builds_only_the_placeholder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = folder_with_broken_models(tmp_path)
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "model_steps_invalid__team_a__typo_yaml")
    assert parse_folder(folder).dag_ids == ["model_steps_invalid__team_a__typo_yaml"]


def test_parsing_twice_gives_identical_serialized_dags() -> None:
    from airflow.serialization.serialized_objects import DagSerialization

    first, second = parse_folder(EXAMPLES), parse_folder(EXAMPLES)
    for dag_id in EXAMPLE_DAG_IDS:
        assert DagSerialization.to_dict(first.dags[dag_id]) == DagSerialization.to_dict(
            second.dags[dag_id]
        )


def test_parsing_touches_neither_network_nor_metadata_db(tmp_path: Path) -> None:
    script = (
        "import socket, sys\n"
        "def refuse(*args, **kwargs):\n"
        "    raise AssertionError('network used at parse time')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(EXAMPLES)!r}, bundle_path={str(EXAMPLES)!r})\n"
        "assert not bag.import_errors, bag.import_errors\n"
        "print(sorted(bag.dag_ids))\n"
    )
    missing_db = f"sqlite:///{tmp_path}/no/such/dir/airflow.db"
    env = {**os.environ, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": missing_db}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "iris__train" in result.stdout


def test_loader_module_passes_airflows_safe_mode_check() -> None:
    from airflow.utils.file import might_contain_dag

    assert might_contain_dag(str(LOADER), safe_mode=True)
    assert len(LOADER.read_text().splitlines()) <= 15


def test_placeholder_run_fails_with_the_definition_errors(run_dag: Any) -> None:
    outcome = run_dag("model_steps_invalid__broken__iris_typo_yaml")
    assert outcome.state == "failed"
    assert "unknown preset '@dayly'" in outcome.errors["report_errors"]


def test_a_newcomer_sorting_before_the_owner_never_takes_its_dags(tmp_path: Path) -> None:
    """Row 1 of the second attacker pass: ``a/iris.yaml`` with ``name: iris`` took iris's DAGs."""
    shutil.copytree(EXAMPLES, tmp_path, dirs_exist_ok=True)
    parse_folder(tmp_path)  # the DAG processor sees the owner first
    (tmp_path / "a").mkdir()
    intruder = (tmp_path / "iris.yaml").read_text().replace("default: 1.0", "default: 0.0001")
    (tmp_path / "a" / "iris.yaml").write_text(intruder)
    bag = parse_folder(tmp_path)
    check = bag.dags["iris__train"].get_task("check")
    assert (check.source, check.definition) == (str(tmp_path / "iris.yaml"), "iris.yaml")
    placeholder = bag.dags["model_steps_invalid__a__iris_yaml"]
    assert f"model name 'iris' belongs to the definition in {tmp_path / 'iris.yaml'}" in (
        placeholder.doc_md
    )
