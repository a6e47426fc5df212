"""Deployment settings, read in one place and passed explicitly (never at import time)."""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_ALLOWED", "ENV_VARS", "Settings", "allowed_imports", "load_settings"]

DEFAULT_ALLOWED = ("sklearn", "xgboost", "lightgbm", "numpy", "pandas", "scipy")
ENV_VARS = ("MODEL_STEPS_ALLOWED_IMPORTS", "AIRFLOW__MODEL_STEPS__ALLOWED_IMPORTS")
"""Comma-separated module prefixes that extend :data:`DEFAULT_ALLOWED` (both are read)."""
LOADER_FILE = "model_steps_loader.py"


def allowed_imports(environ: Mapping[str, str], dags_folder: Path | None) -> tuple[str, ...]:
    """The defaults, the prefixes the deployment adds and the DAGs folder's top-level modules.

    Only file names are read: the folder's code is never imported here.
    """
    extra = (
        prefix.strip()
        for name in ENV_VARS
        for prefix in environ.get(name, "").split(",")
        if prefix.strip()
    )
    return tuple(dict.fromkeys((*DEFAULT_ALLOWED, *extra, *_dags_folder_modules(dags_folder))))


def _dags_folder_modules(folder: Path | None) -> list[str]:
    """Packages (with ``__init__.py``) and ``*.py`` modules directly in the DAGs folder."""
    if folder is None or not folder.is_dir():
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
    conn_id: str | None = None
    """The Airflow connection of models without ``assets.conn_id`` (e.g. the MinIO endpoint)."""

    def connection(self, model_conn_id: str | None) -> str | None:
        """The connection a model's store is reached with: its own, else the deployment's."""
        return model_conn_id or self.conn_id

    @property
    def allowed_imports(self) -> tuple[str, ...]:
        """Module prefixes a definition may name (the scientific stack and the DAGs folder's)."""
        return allowed_imports(self.environ, self.dags_folder)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from the environment and ``airflow.cfg``, resolved the way Airflow does.

    DAGs folder: ``MODEL_STEPS_DAGS_FOLDER``, ``AIRFLOW__CORE__DAGS_FOLDER``, ``[core]
    dags_folder``, then ``$AIRFLOW_HOME/dags``. Default assets root (for models without
    ``assets.root``): ``MODEL_STEPS_ASSETS_ROOT``, ``AIRFLOW__MODEL_STEPS__ASSETS_ROOT``,
    ``[model_steps] assets_root``, then ``$AIRFLOW_HOME/model-assets``. Default connection (for
    models without ``assets.conn_id``): ``MODEL_STEPS_CONN_ID``,
    ``AIRFLOW__MODEL_STEPS__CONN_ID``, ``[model_steps] conn_id``, else none. Extra allowed imports:
    ``[model_steps] allowed_imports`` too. Airflow itself is not
    imported: importing it writes a default config file, a side effect a linter must not have.
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
    conn_id = setting(
        ("MODEL_STEPS_CONN_ID", "AIRFLOW__MODEL_STEPS__CONN_ID"), "model_steps", "conn_id", ""
    )
    configured_imports = config.get("model_steps", "allowed_imports", fallback="")
    if configured_imports:  # the allow-list reads Airflow's environment-variable form
        env.setdefault("AIRFLOW__MODEL_STEPS__ALLOWED_IMPORTS", configured_imports)
    return Settings(
        dags_folder=Path(folder), assets_root=root, environ=env, conn_id=conn_id or None
    )
