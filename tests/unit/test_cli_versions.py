"""``model-steps versions``, ``rollback`` and ``prune`` on a model's real store."""

from __future__ import annotations

from pathlib import Path

import pytest

from model_steps.cli import main
from model_steps.store.manifest import Manifest
from model_steps.store.model_store import StagedAsset, open_store, utc_now
from tests.definitions import definition


@pytest.fixture
def model_with_three_versions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    dags = tmp_path / "dags"
    dags.mkdir()
    extra = f"assets: {{root: {tmp_path / 'store'}}}\n"
    (dags / "churn.yaml").write_text(definition("churn", extra))
    monkeypatch.setenv("MODEL_STEPS_DAGS_FOLDER", str(dags))
    store = open_store(f"{tmp_path / 'store'}/churn")
    for accuracy in (0.7, 0.8, 0.9):
        url = store.scratch_url("run", "model.joblib")
        size, sha256 = store.write_bytes(url, b"fitted")
        staged = [StagedAsset("fit", url, size, sha256, "joblib", "model.joblib", store.url())]

        def manifest_for(version: int, assets: object, accuracy: float = accuracy) -> Manifest:
            return Manifest(
                model="churn",
                version=version,
                definition_version="1",
                spec_hash="0" * 64,
                dag_id="churn__train",
                run_id=f"run{version}",
                created_at=utc_now(),
                published_at=utc_now(),
                steps=[],
                metrics={"test": {"accuracy": accuracy}},
                parameters={},
                environment={},
                comments=[],
            )

        store.publish(staged, manifest_for, lambda manifest: "card")
    return dags / "churn.yaml"


def test_versions_lists_each_version_with_its_metrics_and_marks_the_current(
    model_with_three_versions: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["versions", "churn"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "VERSION",
        "STATUS",
        "PUBLISHED",
        "DEFINITION",
        "RUN",
        "METRICS",
        "NOTE",
    ]
    assert [line.split()[:2] for line in lines[1:]] == [
        ["1", "published"],
        ["2", "published"],
        ["*", "3"],
    ]
    assert lines[3].split()[2] == "live" and lines[3].endswith("accuracy=0.9  -")


def test_rollback_moves_the_current_version_back(
    model_with_three_versions: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rollback", str(model_with_three_versions), "--to", "1"]) == 0
    assert "current version is now 1 (was 3)" in capsys.readouterr().out
    assert (
        open_store(f"{model_with_three_versions.parents[1] / 'store'}/churn").pointer().version == 1
    )


def test_prune_keeps_the_newest_and_the_current(
    model_with_three_versions: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["rollback", "churn", "--to", "1"])
    assert main(["prune", "churn", "--keep", "1"]) == 0
    assert "deleted versions 2" in capsys.readouterr().out
    store = open_store(f"{model_with_three_versions.parents[1] / 'store'}/churn")
    assert store.versions() == [1, 3]


def test_an_unknown_model_is_an_error(
    model_with_three_versions: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["versions", "nope"]) == 1
    assert "no valid model 'nope'" in capsys.readouterr().err


def test_rolling_back_to_a_missing_version_is_an_error_not_a_crash(
    model_with_three_versions: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rollback", "churn", "--to", "7"]) == 1
    assert "version 7 has no manifest" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["rollback", "--to", "1"], ["prune", "--keep", "1"]])
def test_a_store_another_model_owns_is_refused(
    model_with_three_versions: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    store = open_store(f"{model_with_three_versions.parents[1] / 'store'}/churn")
    store.fs.pipe_file(store.path("owner.json"), b'{"model": "iris"}')
    assert main([command[0], str(model_with_three_versions), *command[1:]]) == 1
    assert "belongs to model 'iris'" in capsys.readouterr().err
    assert (store.pointer().version, store.versions()) == (3, [1, 2, 3])
