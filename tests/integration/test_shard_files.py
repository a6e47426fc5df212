"""What Airflow sees when the loader spreads a DAGs folder over shard files it writes itself."""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from model_steps.airflow.shards import SHARD_FOLDER, parse_warnings, shard_file
from model_steps.definition.shards import shard_of
from model_steps.settings import load_settings
from tests.conftest import EXAMPLES
from tests.definitions import definition
from tests.integration.conftest import parse_folder

pytestmark = pytest.mark.integration

LOADER = EXAMPLES / "model_steps_loader.py"
NAMES = [f"model_{i:02d}" for i in range(7)]


@pytest.fixture
def sharded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Seven models, at most three per DAG file; Airflow lists a new file at once."""
    folder = tmp_path / "dags"
    folder.mkdir()
    shutil.copy(LOADER, folder)
    for name in NAMES:
        (folder / f"{name}.yaml").write_text(definition(name))
    monkeypatch.setenv("MODEL_STEPS_PARSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MODEL_STEPS_MODELS_PER_SHARD", "3")
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL", "0")
    return folder


def dag_files(bag: Any) -> dict[str, str]:
    """Each DAG id, and the file (relative to the folder) that built it."""
    return {dag_id: dag.relative_fileloc for dag_id, dag in bag.dags.items()}


def expected_dag_ids(names: list[str]) -> set[str]:
    return {f"{name}__train" for name in names}  # the minimal definition has no inference


def test_the_loader_writes_the_shard_files_a_large_folder_needs(sharded: Path) -> None:
    parse_folder(sharded)
    assert sorted(p.name for p in (sharded / SHARD_FOLDER).iterdir()) == [
        "shard_001.py",
        "shard_002.py",
    ]


def test_every_model_s_dags_come_from_exactly_one_file(sharded: Path) -> None:
    parse_folder(sharded)  # the loader writes the shard files; Airflow lists them next time
    bag = parse_folder(sharded)
    assert bag.import_errors == {}
    files = dag_files(bag)
    assert set(files) == expected_dag_ids(NAMES)
    for name in NAMES:
        index = shard_of(f"{name}.yaml", 3)
        source = "model_steps_loader.py" if index == 0 else f"{SHARD_FOLDER}/shard_00{index}.py"
        assert files[f"{name}__train"] == source


def test_a_shard_file_passes_airflows_safe_mode_check(sharded: Path) -> None:
    from airflow.utils.file import might_contain_dag

    parse_folder(sharded)
    assert might_contain_dag(str(shard_file(sharded, 1)), safe_mode=True)


def test_fewer_models_remove_the_shard_files_no_longer_needed(sharded: Path) -> None:
    parse_folder(sharded)
    for name in NAMES[3:]:
        (sharded / f"{name}.yaml").unlink()
    bag = parse_folder(sharded)
    assert list((sharded / SHARD_FOLDER).iterdir()) == []
    bag = parse_folder(sharded)
    assert set(dag_files(bag)) == expected_dag_ids(NAMES[:3])
    assert set(dag_files(bag).values()) == {"model_steps_loader.py"}


def test_until_airflow_lists_a_new_shard_file_the_known_files_keep_its_models(
    sharded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODEL_STEPS_MODELS_PER_SHARD", "4")  # 7 models: two files
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL", "300")
    parse_folder(sharded)
    bag = parse_folder(sharded)  # shard_001.py is new: Airflow may not have listed it yet
    assert shard_file(sharded, 1).exists()
    assert set(dag_files(bag)) == expected_dag_ids(NAMES)
    assert set(dag_files(bag).values()) == {"model_steps_loader.py"}


def test_a_folder_that_more_than_doubles_hands_models_to_the_new_files_at_once(
    sharded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL", "300")
    bag = parse_folder(sharded)  # three files needed: the loader builds only its own part
    own = [name for name in NAMES if shard_of(f"{name}.yaml", 3) == 0]
    assert set(dag_files(bag)) == expected_dag_ids(own)


def test_a_broken_definition_hides_no_model_of_any_shard(sharded: Path) -> None:
    (sharded / "typo.yaml").write_text(definition("typo", "shedule: {}\n"))
    parse_folder(sharded)
    bag = parse_folder(sharded)
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == expected_dag_ids(NAMES) | {"model_steps_invalid__typo_yaml"}


def test_a_task_start_in_any_shard_file_builds_only_its_dag(
    sharded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parse_folder(sharded)
    name = next(n for n in NAMES if shard_of(f"{n}.yaml", 3) == 2)
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", f"{name}__train")
    assert parse_folder(shard_file(sharded, 2)).dag_ids == [f"{name}__train"]


def test_a_parse_near_airflows_timeout_is_logged_and_listed_for_the_models_page(
    sharded: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT", "0.001")
    with caplog.at_level(logging.WARNING, logger="model_steps.airflow.shards"):
        parse_folder(sharded)
    assert "model_steps_loader.py took" in caplog.text
    assert "lower [model_steps] models_per_shard (now 3)" in caplog.text
    settings = load_settings({**os.environ, "MODEL_STEPS_DAGS_FOLDER": str(sharded)})
    (warning,) = [w for w in parse_warnings(settings) if w.startswith("model_steps_loader.py")]
    assert "of Airflow's 0 s import timeout" in warning


def test_a_quick_parse_raises_no_warning(sharded: Path) -> None:
    parse_folder(sharded)
    settings = load_settings({**os.environ, "MODEL_STEPS_DAGS_FOLDER": str(sharded)})
    assert parse_warnings(settings) == []


def test_a_new_yaml_marks_only_its_shard_file_for_airflow_to_parse_next(sharded: Path) -> None:
    parse_folder(sharded)
    parse_folder(sharded)  # every shard has parsed: the folder index knows every file
    past = 1_000_000_000
    for index in (1, 2):
        os.utime(shard_file(sharded, index), (past, past))
    newcomer = next(f"new_{i}" for i in range(100) if shard_of(f"new_{i}.yaml", 3) == 2)
    (sharded / f"{newcomer}.yaml").write_text(definition(newcomer))
    bag = parse_folder(sharded)  # the loader (shard 0) sees the new file first
    assert shard_file(sharded, 2).stat().st_mtime > past
    assert shard_file(sharded, 1).stat().st_mtime == past
    assert f"{newcomer}__train" in bag.dag_ids


def test_a_touched_shard_file_still_counts_as_listed_by_airflow(
    sharded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parse_folder(sharded)
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL", "300")
    for index in (1, 2):  # written an hour ago, touched just now
        path = shard_file(sharded, index)
        an_hour_ago = f"# created {int(time.time()) - 3600}"
        path.write_text(re.sub(r"# created \d+", an_hour_ago, path.read_text()))
        os.utime(path)
    bag = parse_folder(sharded)
    assert set(dag_files(bag)) == expected_dag_ids(NAMES)
    assert len(set(dag_files(bag).values())) == 3


def test_a_linked_shard_folder_is_neither_written_nor_emptied(
    sharded: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "shard_009.py").write_text("kept = True\n")
    (sharded / SHARD_FOLDER).symlink_to(elsewhere)
    bag = parse_folder(sharded)
    assert sorted(p.name for p in elsewhere.iterdir()) == ["shard_009.py"]
    assert bag.import_errors == {}
    assert set(dag_files(bag)) == expected_dag_ids(NAMES)  # the loader builds them all
