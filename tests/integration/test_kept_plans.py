"""A DAG file builds from the plans it kept while nothing they came from changed, and only then."""

from __future__ import annotations

import gc
import hashlib
import hmac
import json
import os
import pickle
import shutil
from pathlib import Path
from typing import Any

import pytest

from model_steps.definition.shards import shard_of
from tests.conftest import EXAMPLES
from tests.definitions import definition
from tests.integration.conftest import parse_folder

pytestmark = pytest.mark.integration

LOADER = EXAMPLES / "model_steps_loader.py"
TEAM = "description: kept by ${MODEL_STEPS_TEAM:-nobody}\n"


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A DAGs folder with its own parse cache, spread over three DAG files."""
    dags = tmp_path / "dags"
    dags.mkdir()
    shutil.copy(LOADER, dags)
    monkeypatch.setenv("MODEL_STEPS_PARSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MODEL_STEPS_NAMES_RECORD", str(tmp_path / "names.json"))
    monkeypatch.setenv("MODEL_STEPS_MODELS_PER_SHARD", "2")
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL", "0")
    for name in ("alpha", "beta", "gamma", "delta", "omega"):
        (dags / f"{name}.yaml").write_text(definition(name))
    return dags


def kept_plans(folder: Path) -> list[Path]:
    return sorted((folder.parent / "cache").glob("plans-*.pickle"))


def parsed_until_kept(folder: Path) -> Any:
    """Parse until every DAG file builds from kept plans (the first parse records names)."""
    for _ in range(3):
        bag = parse_folder(folder)
    assert len(kept_plans(folder)) == len({dag.relative_fileloc for dag in bag.dags.values()})
    return bag


def description(bag: Any, name: str) -> str:
    return str(bag.dags[f"{name}__train"].description)


def outline(bag: Any, name: str) -> dict[str, Any]:
    doc = bag.dags[f"{name}__train"].tasks[0].doc_json
    return dict(json.loads(doc))


def test_kept_plans_build_the_same_dags_as_a_fresh_load(folder: Path) -> None:
    kept = parsed_until_kept(folder)
    for entry in kept_plans(folder):
        entry.unlink()
    fresh = parse_folder(folder)
    assert sorted(kept.dag_ids) == sorted(fresh.dag_ids)
    for dag_id, dag in fresh.dags.items():
        assert kept.dags[dag_id].task_ids == dag.task_ids
        assert kept.dags[dag_id].relative_fileloc == dag.relative_fileloc
    assert outline(kept, "alpha") == outline(fresh, "alpha")


def test_an_edited_definition_is_built_from_its_new_text(folder: Path) -> None:
    parsed_until_kept(folder)
    (folder / "beta.yaml").write_text(definition("beta", "description: edited\n"))
    assert description(parse_folder(folder), "beta") == "Train beta: edited"


def test_a_changed_environment_value_a_definition_reads_is_read_again(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (folder / "alpha.yaml").write_text(definition("alpha", TEAM))
    monkeypatch.setenv("MODEL_STEPS_TEAM", "search")
    parsed_until_kept(folder)
    monkeypatch.setenv("MODEL_STEPS_TEAM", "ads")
    assert description(parse_folder(folder), "alpha") == "Train alpha: kept by ads"


def test_a_new_file_in_another_shard_sharing_a_kept_models_store_breaks_both(
    folder: Path,
) -> None:
    parsed_until_kept(folder)
    alpha = shard_of("alpha.yaml", 3)
    thief = next(f"thief_{i}" for i in range(100) if shard_of(f"thief_{i}.yaml", 3) != alpha)
    (folder / f"{thief}.yaml").write_text(definition(thief, "assets:\n  directory: alpha\n"))
    bag = parse_folder(folder)
    assert "alpha__train" not in bag.dag_ids
    assert f"{thief}__train" not in bag.dag_ids


def test_a_link_placed_on_a_data_path_after_a_parse_is_refused_at_the_next(
    folder: Path,
) -> None:
    lane = Path(os.environ["MODEL_STEPS_DATA_ROOT"]) / f"lane-{folder.parent.name}"
    lane.mkdir(parents=True)
    text = definition("alpha").replace("s3://data/train.csv", f"{lane}/train.csv")
    (folder / "alpha.yaml").write_text(text)
    assert "alpha__train" in parsed_until_kept(folder).dag_ids
    store = Path(os.environ["MODEL_STEPS_ASSETS_ROOT"]) / "omega"
    store.mkdir(parents=True, exist_ok=True)
    lane.rmdir()
    lane.symlink_to(store)  # the data folder now leads into omega's store
    bag = parse_folder(folder)
    assert "alpha__train" not in bag.dag_ids
    placeholder = bag.dags["model_steps_invalid__alpha_yaml"]
    assert "train.csv" in str(placeholder.doc_md)


class _Planted:
    """Unpickling this writes a file: proof that a planted pickle was read."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.write_text, (self.marker, "unpickled"))


@pytest.mark.parametrize("signing_key", [b"not-the-cache-key", None])
def test_kept_plans_not_signed_with_the_cache_key_are_never_unpickled(
    folder: Path, tmp_path: Path, signing_key: bytes | None
) -> None:
    fresh = parsed_until_kept(folder)
    marker = tmp_path / "planted"
    for entry in kept_plans(folder):  # the genuine facts, so only the signature can refuse it
        facts = entry.read_bytes().split(b"\n", 2)[1]
        body = facts + b"\n" + pickle.dumps(_Planted(marker))
        mac = hmac.new(signing_key, body, hashlib.sha256).hexdigest() if signing_key else "0" * 64
        entry.write_bytes(mac.encode() + b"\n" + body)
    bag = parse_folder(folder)
    assert not marker.exists()
    assert sorted(bag.dag_ids) == sorted(fresh.dag_ids)


def test_a_folder_that_shrinks_keeps_no_plans_for_the_files_it_no_longer_has(
    folder: Path,
) -> None:
    parsed_until_kept(folder)
    for name in ("beta", "gamma", "delta", "omega"):
        (folder / f"{name}.yaml").unlink()
    bag = parsed_until_kept(folder)
    assert sorted(bag.dag_ids) == ["alpha__train"]
    assert len(kept_plans(folder)) == 1


def test_the_garbage_collector_runs_again_after_a_parse(folder: Path) -> None:
    parsed_until_kept(folder)
    assert gc.isenabled()
