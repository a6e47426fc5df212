"""A name belongs to its model: adding a file never changes which definition a model runs.

The attack: ``dags/a/iris.yaml`` with ``name: iris`` sorted before ``dags/iris.yaml``, won the
name, and its training published into iris's store. The loader's name record keeps a name with
the file that held it first; the store's owner record makes every task refuse another file.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from model_steps.definition.loader import LoadedModel, load_and_validate
from model_steps.definition.owners import NameRecord
from model_steps.errors import StoreOwnedError
from model_steps.runtime.ownership import check_definition_owner, folder_of
from model_steps.settings import load_settings
from model_steps.store.model_store import open_store
from tests.definitions import definition


@pytest.fixture
def dags(tmp_path: Path) -> Path:
    folder = tmp_path / "dags"
    (folder / "iris.yaml").parent.mkdir(parents=True)
    (folder / "iris.yaml").write_text(definition("iris", "description: the owner's\n"))
    return folder


@pytest.fixture
def record(tmp_path: Path, dags: Path) -> NameRecord:
    """The DAG processor's record, after it parsed the folder holding only the owner."""
    names = NameRecord(tmp_path / "names.json")
    load_and_validate([dags], {}, names=names)
    return names


def newcomer(dags: Path, relative: str = "a/iris.yaml") -> Path:
    path = dags / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(definition("iris", "description: the newcomer's\n"))
    return path


def only_model(dags: Path, names: NameRecord, only: str | None = None) -> LoadedModel:
    (model,) = load_and_validate([dags], {}, names=names, only=only).models
    return model


def test_the_parse_records_which_file_owns_each_name(dags: Path, record: NameRecord) -> None:
    assert record.read(dags) == {"iris": "iris.yaml"}


def test_a_newcomer_sorting_first_does_not_take_the_name(dags: Path, record: NameRecord) -> None:
    intruder = newcomer(dags)
    catalog = load_and_validate([dags], {}, names=record)
    assert [m.spec.description for m in catalog.models] == ["the owner's"]
    (broken,) = catalog.broken
    assert broken.path == intruder
    (problem,) = broken.problems
    assert problem.line == 3  # at the newcomer's name
    assert problem.message.startswith(
        f"model name 'iris' belongs to the definition in {dags / 'iris.yaml'}"
    )
    assert record.read(dags) == {"iris": "iris.yaml"}


def test_a_task_start_builds_the_owners_model_even_when_the_newcomer_is_named_after_it(
    dags: Path, record: NameRecord
) -> None:
    owner = dags / "botany" / "classifier.yaml"  # an owner not named after its model
    owner.parent.mkdir()
    shutil.move(dags / "iris.yaml", owner)
    load_and_validate([dags], {}, names=record)  # the move, seen by the DAG processor
    newcomer(dags, "iris.yaml")
    assert only_model(dags, record, only="iris").path == owner
    assert only_model(dags, record).path == owner


def test_the_owners_broken_file_still_holds_its_name(dags: Path, record: NameRecord) -> None:
    (dags / "iris.yaml").write_text(definition("iris", "statuss: typo\n"))
    newcomer(dags)
    catalog = load_and_validate([dags], {}, names=record)
    assert catalog.models == ()
    codes = {b.path.relative_to(dags).as_posix(): b.problems[0].code for b in catalog.broken}
    assert codes == {"iris.yaml": "extra_forbidden", "a/iris.yaml": "duplicate_model"}


def test_moving_the_owners_file_on_purpose_moves_the_name(dags: Path, record: NameRecord) -> None:
    moved = dags / "botany" / "iris.yaml"
    moved.parent.mkdir()
    shutil.move(dags / "iris.yaml", moved)
    assert only_model(dags, record).path == moved
    assert record.read(dags) == {"iris": "botany/iris.yaml"}


def test_renaming_the_model_frees_its_old_name(dags: Path, record: NameRecord) -> None:
    (dags / "iris.yaml").write_text(definition("iris_v2"))
    assert only_model(dags, record).spec.name == "iris_v2"
    assert record.read(dags) == {"iris_v2": "iris.yaml"}


def test_without_a_record_the_file_named_after_the_model_wins(dags: Path) -> None:
    newcomer(dags, "a/copy.yaml")
    assert only_model(dags, NameRecord(None)).path == dags / "iris.yaml"


def test_validate_reads_the_record_without_changing_it(dags: Path, record: NameRecord) -> None:
    shutil.move(dags / "iris.yaml", dags / "moved.yaml")
    reader = NameRecord(record.path, writable=False)
    assert only_model(dags, reader).path == dags / "moved.yaml"
    assert record.read(dags) == {"iris": "iris.yaml"}


# -- the store's owner record, checked by every task ----------------------------------------


@pytest.fixture
def owned_store(tmp_path: Path, dags: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """iris's store, claimed by its first publish from ``iris.yaml``."""
    monkeypatch.setenv("MODEL_STEPS_DAGS_FOLDER", str(dags))
    store = open_store(str(tmp_path / "store"), owner="iris")
    store.definition = "iris.yaml"
    store.check_owner(claim=True)
    return tmp_path / "store"


def test_the_first_publish_records_the_defining_file(owned_store: Path) -> None:
    record = json.loads((owned_store / "owner.json").read_text())
    assert (record["model"], record["definition"]) == ("iris", "iris.yaml")


def test_a_task_from_another_file_is_refused_naming_the_owners_file(
    owned_store: Path, dags: Path
) -> None:
    intruder = newcomer(dags)
    store = open_store(str(owned_store), owner="iris")
    with pytest.raises(StoreOwnedError) as refused:
        check_definition_owner(store, intruder, dags, load_settings())
    assert str(refused.value).startswith(
        "model 'iris' belongs to the definition in iris.yaml (the owner record "
    )
    assert "a/iris.yaml may not train, infer or publish it" in str(refused.value)


def test_a_task_from_the_owners_file_goes_ahead(owned_store: Path, dags: Path) -> None:
    store = open_store(str(owned_store), owner="iris")
    check_definition_owner(store, dags / "iris.yaml", dags, load_settings())


def test_a_task_from_the_moved_file_becomes_the_owner(owned_store: Path, dags: Path) -> None:
    moved = dags / "botany" / "iris.yaml"
    moved.parent.mkdir()
    shutil.move(dags / "iris.yaml", moved)
    check_definition_owner(open_store(str(owned_store), owner="iris"), moved, dags, load_settings())
    assert json.loads((owned_store / "owner.json").read_text())["definition"] == "botany/iris.yaml"


def test_a_worker_parsing_a_copy_of_the_folder_elsewhere_is_the_same_owner(
    owned_store: Path, dags: Path, tmp_path: Path
) -> None:
    """A DAG bundle's copy of the folder lies at another path on a worker: paths are relative."""
    copy = tmp_path / "bundle" / "v2"
    shutil.copytree(dags, copy)
    source = copy / "iris.yaml"
    folder = folder_of(source, "iris.yaml")
    assert folder == copy
    check_definition_owner(
        open_store(str(owned_store), owner="iris"), source, folder, load_settings()
    )
    assert json.loads((owned_store / "owner.json").read_text())["definition"] == "iris.yaml"


def test_the_folder_of_a_nested_definition_is_found_from_its_relative_path() -> None:
    assert folder_of(Path("/b/v2/team/iris.yaml"), "team/iris.yaml") == Path("/b/v2")
    assert folder_of(Path("/b/v2/team/iris.yaml"), None) is None
