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
    """Where definitions live and the environment their ``${VAR}`` references resolve in."""

    dags_folder: Path
    environ: Mapping[str, str]


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from the environment, resolving the DAGs folder the way Airflow does.

    ``MODEL_STEPS_DAGS_FOLDER`` wins, then ``AIRFLOW__CORE__DAGS_FOLDER``, then ``dags_folder``
    in ``$AIRFLOW_HOME/airflow.cfg``, then ``$AIRFLOW_HOME/dags``. Airflow itself is not
    imported: importing it writes a default config file, a side effect a linter must not have.
    """
    env = dict(os.environ if environ is None else environ)
    folder = env.get("MODEL_STEPS_DAGS_FOLDER") or env.get("AIRFLOW__CORE__DAGS_FOLDER")
    return Settings(
        dags_folder=Path(folder) if folder else _airflow_cfg_dags_folder(env), environ=env
    )


def _airflow_cfg_dags_folder(env: Mapping[str, str]) -> Path:
    home = Path(env.get("AIRFLOW_HOME") or Path.home() / "airflow").expanduser()
    config = configparser.ConfigParser(interpolation=None)
    config.read(home / "airflow.cfg")
    configured = config.get("core", "dags_folder", fallback="")
    return Path(configured.replace("{AIRFLOW_HOME}", str(home))) if configured else home / "dags"
