"""``model-steps serve``: the mistakes a user can make before a server starts, each refused clearly.

The running server is tested as a process in tests/integration/test_serve.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from model_steps.cli import main
from tests.definitions import definition


@pytest.fixture
def dags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "dags"
    folder.mkdir()
    monkeypatch.setenv("MODEL_STEPS_DAGS_FOLDER", str(folder))
    monkeypatch.setenv("MODEL_STEPS_ASSETS_ROOT", str(tmp_path / "assets"))
    return folder


def test_serve_refuses_a_model_that_is_not_in_the_dags_folder(
    dags: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "tulips"]) == 1
    assert f"no valid model 'tulips' in {dags}" in capsys.readouterr().err


def test_serve_refuses_a_model_that_is_not_deployed(
    dags: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (dags / "churn.yaml").write_text(definition("churn", "status: undeployed\n"))
    assert main(["serve", "churn"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("error: ") and "deployed" in error


def test_serve_pins_only_a_single_model(dags: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "churn", "iris", "--pin", "3"]) == 2
    assert "--pin needs exactly one MODEL" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--storage-options", "{key: 1}"], "--storage-options: not valid JSON"),
        (["--storage-options", "[1]"], "--storage-options: expected a JSON object"),
        (["--storage-options", "@/no/such/file.json"], "cannot read /no/such/file.json"),
        (["--poll-interval", "0"], "--poll-interval: must be greater than 0, got 0"),
        (["--poll-interval", "soon"], "--poll-interval: expected a number, got 'soon'"),
        (["--max-body-bytes", "-1"], "--max-body-bytes: must be greater than 0, got -1"),
        (["--max-rows", "1.5"], "--max-rows: expected a number, got '1.5'"),
    ],
)
def test_serve_refuses_bad_options_with_a_usage_error(
    dags: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "churn", *arguments])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_serve_names_a_connection_it_cannot_read(
    dags: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = "status: deployed\nassets: {root: s3://bucket/models, conn_id: model_steps_nowhere}\n"
    (dags / "churn.yaml").write_text(definition("churn", extra))
    assert main(["serve", "churn"]) == 1
    assert "cannot read the Airflow connection 'model_steps_nowhere' of model 'churn'" in (
        capsys.readouterr().err
    )
