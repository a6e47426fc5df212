"""Deployment settings, read in one place and passed explicitly (never at import time)."""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DEFAULT_ALLOWED", "ENV_VARS", "Settings", "allowed_imports", "load_settings"]

DEFAULT_ALLOWED = ("sklearn", "xgboost", "lightgbm", "numpy", "pandas", "scipy")
ENV_VARS = ("MODEL_STEPS_ALLOWED_IMPORTS", "AIRFLOW__MODEL_STEPS__ALLOWED_IMPORTS")
"""Comma-separated module prefixes that extend :data:`DEFAULT_ALLOWED` (both are read)."""
LOADER_FILE = "model_steps_loader.py"
CACHE_OFF = ("off", "none", "false", "0")
PARSE_CACHE_KEY_VAR = "AIRFLOW__MODEL_STEPS__PARSE_CACHE_KEY"
"""The parse cache's signing key. Deliberately not a ``MODEL_STEPS_`` name: definitions may
interpolate those, and must never read this."""


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
    parse_cache: Path | None = None
    """Where the DAG loader keeps validated definitions between parses; None: no cache."""
    parse_cache_key: str | None = field(default=None, repr=False)
    """The key cache entries are signed with; None: a key file beside the folder."""

    @property
    def allowed_imports(self) -> tuple[str, ...]:
        """Module prefixes a definition may name (the scientific stack and the DAGs folder's)."""
        return allowed_imports(self.environ, self.dags_folder)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from the environment and ``airflow.cfg``, resolved the way Airflow does.

    DAGs folder: ``MODEL_STEPS_DAGS_FOLDER``, ``AIRFLOW__CORE__DAGS_FOLDER``, ``[core]
    dags_folder``, then ``$AIRFLOW_HOME/dags``. Default assets root (for models without
    ``assets.root``): ``MODEL_STEPS_ASSETS_ROOT``, ``AIRFLOW__MODEL_STEPS__ASSETS_ROOT``,
    ``[model_steps] assets_root``, then ``$AIRFLOW_HOME/model-assets``. Extra allowed imports:
    ``[model_steps] allowed_imports`` too. Parse cache: ``MODEL_STEPS_PARSE_CACHE``,
    ``AIRFLOW__MODEL_STEPS__PARSE_CACHE``, ``[model_steps] parse_cache``, then
    ``$AIRFLOW_HOME/model-steps/parse-cache`` (``off`` turns it off); its key
    ``AIRFLOW__MODEL_STEPS__PARSE_CACHE_KEY`` or ``[model_steps] parse_cache_key``. Airflow
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
    configured_imports = config.get("model_steps", "allowed_imports", fallback="")
    if configured_imports:  # the allow-list reads Airflow's environment-variable form
        env.setdefault("AIRFLOW__MODEL_STEPS__ALLOWED_IMPORTS", configured_imports)
    cache = setting(
        ("MODEL_STEPS_PARSE_CACHE", "AIRFLOW__MODEL_STEPS__PARSE_CACHE"),
        "model_steps",
        "parse_cache",
        str(home / "model-steps" / "parse-cache"),
    )
    key = env.get(PARSE_CACHE_KEY_VAR) or config.get("model_steps", "parse_cache_key", fallback="")
    return Settings(
        dags_folder=Path(folder),
        assets_root=root,
        environ=env,
        parse_cache=None if cache.lower() in CACHE_OFF else Path(cache),
        parse_cache_key=key or None,
    )
