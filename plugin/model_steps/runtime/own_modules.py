"""A DAGs folder's own modules, imported from its files whatever the process imported before.

A worker runs many tasks of many DAGs folders in one process, and ``dag.test()`` and the
tests do too, so Python's import caches may hold what another folder's code left behind:

- ``sys.path_importer_cache`` remembers "no finder" (``None``) for a path entry that did not
  exist yet when something was first imported (Airflow puts its DAGs folder on ``sys.path``
  before the folder need exist), and that folder's modules stay unimportable for good;
- ``sys.modules`` holds a module of the same top-level name that another DAGs folder's code
  was resolved from, and ``import`` hands that one out;
- a folder earlier on ``sys.path`` holds a module of the same name, and ``import`` finds it.

:func:`prepare_own_module` runs before a DAGs-folder module is imported and leaves ``import``
finding this folder's file. An installed or standard module of that name still wins (the
folders are searched last, so a file in them cannot shadow one), and so does a module of that
name imported from anywhere but a DAGs folder this process resolved code from (``__main__``,
a folder on the path that no resolution named): only another deployment's own code is ever
put aside. The resolution then refuses the name, because its code lives in no file of this
DAGs folder, rather than hand out the wrong module.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
from collections.abc import Iterable
from importlib.abc import Loader
from importlib.machinery import ModuleSpec, PathFinder
from pathlib import Path
from types import ModuleType

__all__ = ["prepare_own_module"]

_CODE_FOLDERS: set[str] = set()
"""Every DAGs folder this process resolved code from: a module found in one is some
deployment's own code, never an installed module, and may give way to another folder's."""


def prepare_own_module(top: str, folders: Iterable[Path]) -> None:
    """Make ``import top`` give the module file of the same name in ``folders``.

    Nothing changes when an installed module of that name exists or no folder holds one.
    """
    own = [os.path.realpath(folder) for folder in folders if Path(folder).is_dir()]
    _CODE_FOLDERS.update(own)
    _join_import_path(own)
    loaded = sys.modules.get(top)
    if loaded is not None and not _from_another_folder(loaded, own):
        return  # this folder's, or not a DAGs folder's: what it is decides, the checks judge
    if _installed(top):
        return
    spec = PathFinder.find_spec(top, own)
    if spec is None or spec.loader is None:
        return  # no module file here: the import that follows says what is missing
    _forget(top)
    if _spec_entry(PathFinder.find_spec(top)) != _spec_entry(spec):
        _load(spec, spec.loader)  # a DAGs folder earlier on sys.path holds one of that name


def _join_import_path(folders: list[str]) -> None:
    """Append the folders to ``sys.path`` and drop the finders cached for them.

    A cached ``None`` (the folder did not exist when something was imported) would hide the
    folder for good; a cached finder may list the folder as it was. Both are rebuilt on the
    next import, from the folder as it is now.
    """
    for folder in folders:
        if folder not in sys.path:
            sys.path.append(folder)  # appended: it cannot shadow an installed module
    for entry in sys.path:
        if _real(entry) in folders:
            sys.path_importer_cache.pop(entry, None)


def _real(entry: str) -> str:
    """The real path of an import-path entry (``''`` is the current folder, wherever it is)."""
    return _real_absolute(entry) if entry.startswith(os.sep) else os.path.realpath(entry)


@functools.lru_cache(maxsize=1024)
def _real_absolute(entry: str) -> str:
    """Remembered: every resolution looks at every entry of ``sys.path``."""
    return os.path.realpath(entry)


def _from_another_folder(module: ModuleType, own: list[str]) -> bool:
    """Whether ``module`` was found in another DAGs folder than ``own``."""
    entry = _path_entry(getattr(module, "__file__", None), hasattr(module, "__path__"))
    return entry in _CODE_FOLDERS and entry not in own


def _installed(top: str) -> bool:
    """Whether ``top`` is found outside every DAGs folder: built in, installed or standard.

    Judged by the import-path entry a module is found in, not by the folders around its file:
    a DAGs folder that holds a virtual environment must not make its packages its own code.
    """
    elsewhere = [entry for entry in sys.path if _real(entry) not in _CODE_FOLDERS]
    for finder in sys.meta_path:
        if finder is PathFinder:
            spec = PathFinder.find_spec(top, elsewhere)
        elif hasattr(finder, "find_spec"):
            spec = finder.find_spec(top, None)
        else:
            continue
        if spec is not None and _spec_entry(spec) not in _CODE_FOLDERS:
            return True
    return False


def _spec_entry(spec: ModuleSpec | None) -> str | None:
    """The import-path folder a found top-level module is in; None for none or no file."""
    if spec is None or not spec.has_location:
        return None
    return _path_entry(spec.origin, spec.parent == spec.name)


def _path_entry(file: str | None, package: bool) -> str | None:
    """The real import-path folder a top-level module's file was found in; None without one.

    A module ``top.py`` sits in that folder, a package's ``top/__init__.py`` one below it.
    """
    if not file:
        return None
    found = Path(os.path.realpath(file)).parent
    return str(found.parent if package else found)


def _forget(top: str) -> None:
    """Drop ``top`` and its submodules from ``sys.modules``: another DAGs folder's code.

    Functions already resolved from them keep working; they hold their own globals.
    """
    for name in [n for n in sys.modules if n == top or n.startswith(f"{top}.")]:
        del sys.modules[name]


def _load(spec: ModuleSpec, loader: Loader) -> None:
    """Import the module ``spec`` found, as ``import`` would had it looked only there."""
    sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    try:
        loader.exec_module(sys.modules[spec.name])
    except BaseException:
        sys.modules.pop(spec.name, None)
        raise
