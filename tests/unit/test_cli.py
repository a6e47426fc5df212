"""The ``model-steps`` command as a user runs it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from model_steps.cli import main
from tests.conftest import EXAMPLES
from tests.definitions import definition


def test_validate_passes_the_examples(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(EXAMPLES)]) == 0
    assert capsys.readouterr().out == ""


def test_validate_prints_one_line_per_problem_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "churn.yaml"
    path.write_text(definition("churn", "statuss: deployed\n").replace("id: fit", "id: 1fit"))
    assert main(["validate", str(path)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{path}:5:5: steps[0].id: '1fit' is not valid: expected a letter, then letters, "
        "digits, '_' or '-' (at most 100 characters)",
        f"{path}:13:1: statuss: unknown field 'statuss'; expected one of: apiVersion, kind, "
        "name, description, tags, domain, status, version, assets, scheduler, schedule, "
        "comments, parameters, metadata, intended_use, limitations, license, airflow, gate, "
        "card, evaluation, steps (did you mean 'status'?)",
    ]


def test_validate_defaults_to_the_airflow_dags_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "churn.yaml").write_text(definition("churn", "kind: Job\n"))
    monkeypatch.delenv("MODEL_STEPS_DAGS_FOLDER", raising=False)
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(tmp_path))
    assert main(["validate"]) == 1
    assert "duplicate key: 'kind' is already set on line 2" in capsys.readouterr().out


def test_list_shows_each_model_with_status_schedules_and_dag_ids(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["list", str(EXAMPLES)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "TRAIN", "INFER", "SCHEDULES", "DAG", "IDS"]
    assert lines[2].split() == [
        "iris",
        "deployed",
        "@daily",
        "on",
        "new",
        "version",
        "paused",
        "iris__train,",
        "iris__infer",
    ]


def test_schema_prints_the_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["properties"]["apiVersion"]["const"] == "model-steps/v1"


def test_settings_read_airflow_cfg_when_the_environment_is_silent(tmp_path: Path) -> None:
    from model_steps.settings import load_settings

    (tmp_path / "airflow.cfg").write_text(
        "[core]\ndags_folder = {AIRFLOW_HOME}/my_dags\n"
        "[model_steps]\nassets_root = s3://models\nallowed_imports = catboost\n"
        "allowed_functions = numpy:log1p\n"
    )
    settings = load_settings({"AIRFLOW_HOME": str(tmp_path)})
    assert settings.dags_folder == tmp_path / "my_dags"
    assert settings.assets_root == "s3://models"
    assert "catboost" in settings.allow_list.packages
    assert settings.allow_list.functions == ("numpy:log1p",)


def test_validate_resolves_what_a_definition_names_and_points_at_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "churn.yaml"
    text = definition("churn", "").replace("class: LinearRegression", "class: LinearRegresion")
    path.write_text(text)
    assert main(["validate", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        f"{path}:10:7: steps[0].parameters.class: module 'sklearn.linear_model' has no class "
        "'LinearRegresion' (did you mean 'LinearRegression' or 'LogisticRegression'?)"
    ]
    assert captured.err.strip() == "0 valid model(s), 1 invalid file(s)"


def test_validate_with_data_reads_the_training_header(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.csv").write_text("tenure,plan,Churned\n3,basic,0\n")
    monkeypatch.setenv("MODEL_STEPS_ALLOWED_DATA", str(tmp_path / "data"))
    (tmp_path / "dags").mkdir()
    path = tmp_path / "dags" / "churn.yaml"
    text = definition("churn", "").replace(
        "s3://data/train.csv", str(tmp_path / "data" / "train.csv")
    )
    path.write_text(text + "      training: {target: churned}\n")
    assert main(["validate", str(path)]) == 0
    assert main(["validate", "--data", str(path)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{path}:13:18: steps[0].parameters.training.target: column 'churned' is not in the "
        "training data; its columns are tenure, plan, Churned (did you mean 'Churned'?)"
    ]


def test_validate_imports_nothing_a_definition_names_into_the_caller() -> None:
    import subprocess
    import sys

    code = (
        "import sys\nfrom model_steps.cli import main\n"
        f"status = main(['validate', {str(EXAMPLES)!r}])\n"
        "print(status, sorted(m for m in ('sklearn', 'pandas', 'model_code') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "0 []", result.stderr


def test_settings_read_the_config_file_airflow_config_names(tmp_path: Path) -> None:
    from model_steps.settings import load_settings

    (tmp_path / "elsewhere.cfg").write_text("[model_steps]\nconn_id = minio\n")
    (tmp_path / "airflow.cfg").write_text("[model_steps]\nconn_id = ignored\n")
    environ = {"AIRFLOW_HOME": str(tmp_path), "AIRFLOW_CONFIG": str(tmp_path / "elsewhere.cfg")}
    assert load_settings(environ).connection(None) == "minio"


def test_the_default_connection_serves_models_without_their_own(tmp_path: Path) -> None:
    from model_steps.settings import load_settings

    (tmp_path / "airflow.cfg").write_text("[model_steps]\nconn_id = minio\n")
    settings = load_settings({"AIRFLOW_HOME": str(tmp_path)})
    assert settings.connection(None) == "minio"
    assert settings.connection("own_s3") == "own_s3"
    overridden = load_settings({"AIRFLOW_HOME": str(tmp_path), "MODEL_STEPS_CONN_ID": "other"})
    assert overridden.connection(None) == "other"
    assert load_settings({"AIRFLOW_HOME": str(tmp_path / "none")}).connection(None) is None


def test_validate_of_a_file_deep_in_a_bundle_allows_the_bundles_own_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As the DAG processor parses it: the loader's folder holds the definition's own code."""
    bundle = tmp_path / "bundle"
    shutil.copytree(EXAMPLES, bundle)
    (bundle / "team").mkdir()
    moved = bundle / "team" / "diabetes.yaml"
    (bundle / "diabetes.yaml").rename(moved)
    assert main(["validate", str(moved)]) == 0, capsys.readouterr().out
