"""Deployment settings, read in one place and passed explicitly (never at import time)."""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Settings", "load_settings"]


@dataclass(frozen=True)
class Settings:
    """Where definitions and assets live, and the environment ``${VAR}`` references resolve in."""

    dags_folder: Path
    assets_root: str
    environ: Mapping[str, str]

    @property
    def allowed_imports(self) -> tuple[str, ...]:
        """Module prefixes a definition may name (the scientific stack and the DAGs folder's)."""
        from model_steps.imports import allowed_imports

        return allowed_imports(self.environ, self.dags_folder)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from the environment and ``airflow.cfg``, resolved the way Airflow does.

    DAGs folder: ``MODEL_STEPS_DAGS_FOLDER``, ``AIRFLOW__CORE__DAGS_FOLDER``, ``[core]
    dags_folder``, then ``$AIRFLOW_HOME/dags``. Default assets root (for models without
    ``assets.root``): ``MODEL_STEPS_ASSETS_ROOT``, ``AIRFLOW__MODEL_STEPS__ASSETS_ROOT``,
    ``[model_steps] assets_root``, then ``$AIRFLOW_HOME/model-assets``. Extra allowed imports:
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
    configured_imports = config.get("model_steps", "allowed_imports", fallback="")
    if configured_imports:  # the allow-list reads Airflow's environment-variable form
        env.setdefault("AIRFLOW__MODEL_STEPS__ALLOWED_IMPORTS", configured_imports)
    return Settings(dags_folder=Path(folder), assets_root=root, environ=env)
