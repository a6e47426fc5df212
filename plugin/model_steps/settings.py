"""Deployment settings, read in one place and passed explicitly (never at import time)."""

from __future__ import annotations

import configparser
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_ALLOWED",
    "ENV_VARS",
    "FUNCTION_ENV_VARS",
    "AllowList",
    "Settings",
    "allow_list",
    "load_settings",
]

DEFAULT_ALLOWED = ("sklearn", "xgboost", "lightgbm")
"""Packages a step's ``class`` may come from unless the deployment adds more: the estimator
libraries. numpy, pandas and scipy hold no estimators, and they do hold functions that read
pickles or evaluate expressions (``pandas.eval``, ``numpy.load``), so they are not on it."""
ENV_VARS = ("MODEL_STEPS_ALLOWED_IMPORTS", "AIRFLOW__MODEL_STEPS__ALLOWED_IMPORTS")
"""Comma-separated packages that extend :data:`DEFAULT_ALLOWED` (both are read)."""
FUNCTION_ENV_VARS = ("MODEL_STEPS_ALLOWED_FUNCTIONS", "AIRFLOW__MODEL_STEPS__ALLOWED_FUNCTIONS")
"""Comma-separated ``package.module:function`` references a definition may name as a
``callable``, a metric or a ``save``/``load`` function besides the DAGs folder's own code."""
LOADER_FILE = "model_steps_loader.py"


@dataclass(frozen=True)
class AllowList:
    """What a model definition may name, decided by the deployment.

    A step's ``class`` comes from one of ``packages`` or from the deployment's own code: the
    modules in ``code_folders`` (the DAGs folder), whose top-level names are ``code_modules``.
    A function (``callable``, ``save``, ``load``, a metric) comes from that own code, from
    ``sklearn.metrics`` for metrics, or is one of ``functions``, named exactly.
    """

    packages: tuple[str, ...] = DEFAULT_ALLOWED
    code_folders: tuple[Path, ...] = ()
    code_modules: tuple[str, ...] = ()
    functions: tuple[str, ...] = ()


def allow_list(environ: Mapping[str, str], code_folders: Iterable[Path]) -> AllowList:
    """The defaults, what the deployment adds, and the modules of its code folders.

    Only file names are read: the folders' code is never imported here. A folder's module named
    like a standard-library one is still listed, so the checks can say why it is refused.
    """
    folders = tuple(dict.fromkeys(folder.resolve() for folder in code_folders))
    modules = (name for folder in folders for name in _folder_modules(folder))
    return AllowList(
        packages=tuple(dict.fromkeys((*DEFAULT_ALLOWED, *_listed(environ, ENV_VARS)))),
        code_folders=folders,
        code_modules=tuple(sorted(set(modules))),
        functions=tuple(dict.fromkeys(_listed(environ, FUNCTION_ENV_VARS))),
    )


def _listed(environ: Mapping[str, str], names: tuple[str, ...]) -> list[str]:
    """The comma-separated entries of every variable in ``names``."""
    return [
        entry.strip()
        for name in names
        for entry in environ.get(name, "").split(",")
        if entry.strip()
    ]


def _folder_modules(folder: Path) -> list[str]:
    """Packages (with ``__init__.py``) and ``*.py`` modules directly in a code folder."""
    if not folder.is_dir():
        return []
    names = []
    with os.scandir(folder) as entries:  # names and types only: this runs at every task start
        for entry in entries:
            if entry.name.endswith(".py") and entry.name != LOADER_FILE:
                names.append(entry.name[:-3])
            elif entry.is_dir() and (Path(entry.path) / "__init__.py").is_file():
                names.append(entry.name)
    return sorted(name for name in names if name.isidentifier())


@dataclass(frozen=True)
class Settings:
    """Where definitions and assets live, and the environment ``${VAR}`` references resolve in."""

    dags_folder: Path
    assets_root: str
    environ: Mapping[str, str]

    @property
    def allow_list(self) -> AllowList:
        """What a definition may name: the estimator packages, the DAGs folder's own code."""
        return allow_list(self.environ, [self.dags_folder])


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from the environment and ``airflow.cfg``, resolved the way Airflow does.

    DAGs folder: ``MODEL_STEPS_DAGS_FOLDER``, ``AIRFLOW__CORE__DAGS_FOLDER``, ``[core]
    dags_folder``, then ``$AIRFLOW_HOME/dags``. Default assets root (for models without
    ``assets.root``): ``MODEL_STEPS_ASSETS_ROOT``, ``AIRFLOW__MODEL_STEPS__ASSETS_ROOT``,
    ``[model_steps] assets_root``, then ``$AIRFLOW_HOME/model-assets``. Extra allowed packages
    and functions: ``[model_steps] allowed_imports`` and ``allowed_functions`` too. Airflow
    itself is not imported: importing it writes a default config file, a side effect a linter
    must not have.
    """
    env = dict(os.environ if environ is None else environ)
    home = Path(env.get("AIRFLOW_HOME") or Path.home() / "airflow").expanduser()
    config = configparser.ConfigParser(interpolation=None)
    config.read(home / "airflow.cfg")

    def setting(names: tuple[str, ...], section: str, key: str, default: str) -> str:
        value = next((env[n] for n in names if env.get(n)), None)
        value = value or config.get(section, key, fallback="") or default
        return value.replace("{AIRFLOW_HOME}", str(home))

    folder = setting(
        ("MODEL_STEPS_DAGS_FOLDER", "AIRFLOW__CORE__DAGS_FOLDER"),
        "core",
        "dags_folder",
        str(home / "dags"),
    )
    root = setting(
        ("MODEL_STEPS_ASSETS_ROOT", "AIRFLOW__MODEL_STEPS__ASSETS_ROOT"),
        "model_steps",
        "assets_root",
        str(home / "model-assets"),
    )
    for key in ("allowed_imports", "allowed_functions"):
        configured = config.get("model_steps", key, fallback="")
        if configured:  # the allow-list reads Airflow's environment-variable form
            env.setdefault(f"AIRFLOW__MODEL_STEPS__{key.upper()}", configured)
    return Settings(dags_folder=Path(folder), assets_root=root, environ=env)
