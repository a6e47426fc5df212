"""``model-steps versions``, ``rollback`` and ``prune`` on a model's real store."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from model_steps.cli import main
from model_steps.store.manifest import GateRecord, Manifest
from model_steps.store.model_store import ModelStore, open_store, utc_now
from tests.assets import stage_fitted
from tests.definitions import definition


def _churn_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModelStore:
    """churn in a DAGs folder of its own, with its store under ``tmp_path/store``."""
    dags = tmp_path / "dags"
    dags.mkdir()
    extra = f"assets: {{root: {tmp_path / 'store'}}}\n"
    (dags / "churn.yaml").write_text(definition("churn", extra))
    monkeypatch.setenv("MODEL_STEPS_DAGS_FOLDER", str(dags))
    return open_store(f"{tmp_path / 'store'}/churn")


def _stage(
    store: ModelStore,
    at: str,
    metrics: dict[str, dict[str, float]],
    gate: GateRecord | None = None,
) -> Manifest:
    """Stage one more version of churn (a one-step model), not yet live."""
    staged: Manifest = stage_fitted(store, metrics=metrics, at=at, gate=gate)
    return staged


@pytest.fixture
def model_with_three_versions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    store = _churn_store(tmp_path, monkeypatch)
    for accuracy in (0.7, 0.8, 0.9):
        manifest = _stage(store, utc_now(), {"test": {"accuracy": accuracy}})
        store.go_live(manifest.version, manifest.published_at)
    return tmp_path / "dags" / "churn.yaml"


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


def scratch(store_root: Path, run: str, files: dict[str, bytes], days_old: float = 0) -> None:
    """A run's scratch as tasks leave it, last written ``days_old`` days ago."""
    for name, data in files.items():
        path = store_root / "churn" / "runs" / run / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        stamp = time.time() - days_old * 86400
        os.utime(path, (stamp, stamp))


@pytest.fixture
def failed_runs(model_with_three_versions: Path) -> Path:
    store_root = model_with_three_versions.parents[1] / "store"
    shutil.rmtree(store_root / "churn" / "runs")
    scratch(
        store_root,
        "churn__train__failed_today",
        {
            "publish/try-1/claim.txt": b"half",
            "publish/try-2/claim.txt": b"half",
            "fit/try-1/data/train.parquet": b"x" * 2048,
            "fit/try-1/done.json": b"{}",
        },
    )
    scratch(store_root, "churn__train__failed_last_week", {"fit/try-1/x": b"x"}, days_old=7)
    return model_with_three_versions


def test_runs_lists_each_failed_runs_scratch_and_what_prune_will_remove(
    failed_runs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["runs", "churn"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["RUN", "LAST", "WRITE", "FILES", "SIZE", "TASKS", "PRUNE"]
    old, fresh = lines[1], lines[2]
    assert old.startswith("churn__train__failed_last_week") and "7d ago" in old
    assert old.endswith("removes it")
    assert fresh.startswith("churn__train__failed_today") and "0m ago" in fresh
    assert "fit: try 1 finished, publish: try 2 unfinished" in fresh
    assert fresh.endswith("keeps it 23h 59m more")
    assert "so that Airflow can retry its failed tasks" in lines[3]


def test_versions_points_at_the_scratch_runs_left(
    failed_runs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["versions", "churn"]) == 0
    assert "2 run(s) left scratch in the store (2.0 KiB), kept for retries: " in (
        capsys.readouterr().err
    )


def test_prune_removes_only_the_scratch_the_listing_said_it_would(
    failed_runs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["prune", "churn", "--keep", "3"]) == 0
    capsys.readouterr()
    assert main(["runs", "churn"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:-1]]
    assert listed == ["churn__train__failed_today"]


def test_runs_says_when_no_run_left_scratch(
    model_with_three_versions: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.rmtree(model_with_three_versions.parents[1] / "store" / "churn" / "runs")
    assert main(["runs", "churn"]) == 0
    assert "churn: no run left scratch in " in capsys.readouterr().out


def _gated_versions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """churn with a published version, a refused one, an approved one and a waiting one."""
    store = _churn_store(tmp_path, monkeypatch)
    staged_at = "2026-01-01T00:00:00+00:00"
    for outcome in (None, "refused", "pending", "pending"):
        gate = GateRecord(outcome=outcome, reason="r", decided_at=staged_at) if outcome else None
        manifest = _stage(store, staged_at, {}, gate)
        if outcome is None:
            store.go_live(manifest.version, manifest.published_at)
    approved = store.approve(3, by="reviewer", reason="looks right")
    return [staged_at[:19], approved.published_at[:19]]


def test_versions_shows_when_each_version_went_live_and_dashes_for_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    staged_at, approved_at = _gated_versions(tmp_path, monkeypatch)
    assert main(["versions", "churn"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    listing = {row[1] if row[0] == "*" else row[0]: row for row in rows}
    assert listing["1"][1:3] == ["published", staged_at]
    assert listing["2"][1:3] == ["refused", "-"]
    assert listing["3"][2:4] == ["live", approved_at]  # approval time, not staging time
    assert listing["4"][1:3] == ["pending", "-"]
    assert approved_at != staged_at
