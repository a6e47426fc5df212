"""A DAGs folder's own module resolves to that folder's file, whatever the process ran before.

A worker (and ``dag.test()``) runs tasks of many DAGs folders in one process: Python's import
caches must not make a task resolve nothing, or another folder's code, for a name its folder
holds. Each test imports from folders of its own and leaves the import system as it was.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from model_steps.errors import ImportRefusedError, MissingModuleError
from model_steps.runtime.own_modules import prepare_own_module
from model_steps.runtime.resolution import resolve_function
from model_steps.settings import allow_list
from tests.conftest import DATA

MODULE = "team_code"


@pytest.fixture(autouse=True)
def own_imports(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The test's changes to ``sys.path`` and its importer cache and modules, undone after."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "path_importer_cache", dict(sys.path_importer_cache))
    before = dict(sys.modules)
    yield
    for name in set(sys.modules) - set(before):
        del sys.modules[name]
    sys.modules.update(before)


def write_module(folder: Path, answer: str) -> None:
    """A DAGs folder holding ``team_code.py``, whose ``answer()`` says which folder it is."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{MODULE}.py").write_text(f"def answer():\n    return {answer!r}\n")


def answer_from(folder: Path) -> str:
    """What ``team_code:answer`` resolves to, and returns, for a task of ``folder``."""
    function = resolve_function(f"{MODULE}:answer", "callable", allow_list({}, [folder]))
    return str(function())


def test_a_folder_on_the_import_path_before_it_existed_resolves_once_it_does(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "dags"
    sys.path.append(str(folder))  # as Airflow adds its DAGs folder, existing or not
    assert importlib.util.find_spec("model_steps_no_such_module") is None  # any import walks it
    write_module(folder, "dags")
    assert answer_from(folder) == "dags"


def test_a_module_missing_once_resolves_once_its_file_is_written(tmp_path: Path) -> None:
    write_module(tmp_path, "first")
    allow = allow_list({}, [tmp_path])  # a task's allow-list, read when the file was there
    (tmp_path / f"{MODULE}.py").unlink()
    with pytest.raises(MissingModuleError, match="no module named 'team_code' in the DAGs"):
        resolve_function(f"{MODULE}:answer", "callable", allow)
    write_module(tmp_path, "written again")
    assert resolve_function(f"{MODULE}:answer", "callable", allow)() == "written again"


def test_two_dags_folders_with_a_module_of_the_same_name_each_resolve_their_own(
    tmp_path: Path,
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    write_module(first, "first")
    write_module(second, "second")
    assert [answer_from(first), answer_from(second), answer_from(first)] == [
        "first",
        "second",
        "first",
    ]


def test_a_folder_earlier_on_the_import_path_does_not_lend_its_module(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    write_module(first, "first")
    write_module(second, "second")
    assert answer_from(first) == "first"
    del sys.modules[MODULE]  # imported once, then dropped: the first folder stays on the path
    assert answer_from(second) == "second"


def test_a_same_named_module_from_elsewhere_is_refused_naming_its_file(tmp_path: Path) -> None:
    write_module(tmp_path / "elsewhere", "elsewhere")
    sys.path.append(str(tmp_path / "elsewhere"))
    assert importlib.import_module(MODULE).answer() == "elsewhere"
    write_module(tmp_path / "dags", "dags")
    with pytest.raises(ImportRefusedError) as caught:
        answer_from(tmp_path / "dags")
    assert (
        f"Python imports '{MODULE}' from {tmp_path / 'elsewhere' / MODULE}.py, not the "
        f"DAGs folder's '{MODULE}'" in str(caught.value)
    )


def test_an_installed_module_never_gives_way_to_a_dags_folder_file() -> None:
    import joblib

    prepare_own_module("joblib", [Path(sys.prefix).parent])  # a DAGs folder around the venv
    with pytest.raises(ImportRefusedError, match="Python imports the installed module 'joblib'"):
        resolve_function("joblib:load", "callable", allow_list({}, [DATA / "specs" / "code"]))
    assert sys.modules["joblib"] is joblib
