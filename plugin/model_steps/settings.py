"""Deployment settings, read in one place and passed explicitly (never at import time)."""

from __future__ import annotations

import configparser
import fnmatch
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

__all__ = [
    "ALLOWED_CONNECTIONS_VARS",
    "ALLOWED_DATA_VARS",
    "ALLOWED_ENV_VARS",
    "DEFAULT_ALLOWED",
    "DEFAULT_ALLOWED_CONNECTIONS",
    "ENV_PREFIX",
    "ENV_VARS",
    "FUNCTION_ENV_VARS",
    "LOADER_FILE",
    "REFUSED_CLASS_ENV_VARS",
    "AllowList",
    "Settings",
    "allow_list",
    "allowed_connections",
    "allowed_data",
    "env_refusal",
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
REFUSED_CLASS_ENV_VARS = (
    "MODEL_STEPS_REFUSED_CLASSES",
    "AIRFLOW__MODEL_STEPS__REFUSED_CLASSES",
)
"""Comma-separated ``package.module:Class`` references of classes in the allowed packages that
read files or open connections from their arguments, refused as a step's class (with their
subclasses) besides the ones the plugin knows (:mod:`model_steps.runtime.file_readers`)."""
LOADER_FILE = "model_steps_loader.py"
CACHE_OFF = ("off", "none", "false", "0")
PARSE_CACHE_KEY_VAR = "AIRFLOW__MODEL_STEPS__PARSE_CACHE_KEY"
"""The parse cache's signing key. Deliberately not a ``MODEL_STEPS_`` name: definitions may
interpolate those, and must never read this."""

ENV_PREFIX = "MODEL_STEPS_"
"""``${VAR}`` references to names with this prefix are always interpolated."""
ALLOWED_ENV_VARS = ("MODEL_STEPS_ALLOWED_ENV", "AIRFLOW__MODEL_STEPS__ALLOWED_ENV")
"""Comma-separated variable names (``*`` globs) a definition may reference beside the prefix."""
NEVER_INTERPOLATED = ("AIRFLOW_CONN_", "AIRFLOW_VAR_", "AIRFLOW__")
"""Airflow's connections, variables and configuration (its JWT secret, its database URL): no
setting makes them readable by a definition."""
ALLOWED_CONNECTIONS_VARS = (
    "MODEL_STEPS_ALLOWED_CONNECTIONS",
    "AIRFLOW__MODEL_STEPS__ALLOWED_CONNECTIONS",
)
"""A regular expression the whole of an ``assets.conn_id`` must match."""
DEFAULT_ALLOWED_CONNECTIONS = r"model_steps_.*"
"""Only connections created for model stores: ``aws_default`` or a warehouse's connection would
hand its credentials to whatever URLs a definition's author writes."""
ALLOWED_DATA_VARS = ("MODEL_STEPS_ALLOWED_DATA", "AIRFLOW__MODEL_STEPS__ALLOWED_DATA")
"""Comma or space separated URL prefixes where a definition's data tables may be read and
written (``s3://team-data/, /srv/data/``)."""
DATA_ROOT_VAR = "MODEL_STEPS_DATA_ROOT"
"""Where the example data lives; the only allowed data location when none is configured."""
PARTITION_SIZE_VARS = ("MODEL_STEPS_PARTITION_SIZE", "AIRFLOW__MODEL_STEPS__PARTITION_SIZE")
"""The deployment's infer partition size, for models whose definition sets none."""
_CONFIGURED = (
    "partition_size",
    "allowed_imports",
    "allowed_functions",
    "allowed_env",
    "allowed_connections",
    "allowed_data",
    "refused_classes",
)
"""``[model_steps]`` options of ``airflow.cfg`` read through their environment-variable form."""


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
    refused_classes: tuple[str, ...] = ()
    """Classes (``package.module:Class``) the deployment refuses as a step's class, besides the
    file and connection readers the plugin refuses everywhere."""


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
        refused_classes=tuple(dict.fromkeys(_listed(environ, REFUSED_CLASS_ENV_VARS))),
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


def env_refusal(name: str, environ: Mapping[str, str]) -> str | None:
    """Why a definition may not read the environment variable ``name``; None when it may.

    The answer depends on the name only, never on whether the variable is set, so a definition
    cannot probe the parsing process's environment.
    """
    if name.startswith(NEVER_INTERPOLATED):
        return (
            f"environment variable {name} may not be used in a definition: Airflow's "
            "connections, variables and configuration (AIRFLOW_CONN_*, AIRFLOW_VAR_*, "
            "AIRFLOW__*) hold secrets and are never interpolated"
        )
    if name.startswith(ENV_PREFIX):
        return None
    patterns = _listed(environ, ALLOWED_ENV_VARS)
    if any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns):
        return None
    return (
        f"environment variable {name} may not be used in a definition: only variables "
        f"starting with {ENV_PREFIX} and those the deployment lists in "
        f"{ALLOWED_ENV_VARS[0]} ([model_steps] allowed_env) are interpolated"
    )


def allowed_connections(environ: Mapping[str, str]) -> str:
    """The pattern an ``assets.conn_id`` must match in full (the deployment's, or the default)."""
    configured = next((environ[n] for n in ALLOWED_CONNECTIONS_VARS if environ.get(n)), None)
    pattern = (configured or DEFAULT_ALLOWED_CONNECTIONS).strip()
    re.compile(pattern)  # a broken setting fails loudly, never as "nothing allowed"
    return pattern


def allowed_data(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The prefixes a definition's data URLs must start with, as the deployment wrote them.

    ``MODEL_STEPS_ALLOWED_DATA`` (``[model_steps] allowed_data``), else ``MODEL_STEPS_DATA_ROOT``
    (what ``make run``, the examples and the tests set), else none: nothing is allowed, and
    every data URL's error says which setting to set.
    """
    configured = next((environ[n] for n in ALLOWED_DATA_VARS if environ.get(n)), None)
    text = configured if configured is not None else environ.get(DATA_ROOT_VAR, "")
    return tuple(dict.fromkeys(entry for entry in re.split(r"[,\s]+", text) if entry))


@dataclass(frozen=True)
class Settings:
    """Where definitions and assets live, and the environment ``${VAR}`` references resolve in."""

    dags_folder: Path
    assets_root: str
    environ: Mapping[str, str]
    conn_id: str | None = None
    """The Airflow connection of models without ``assets.conn_id`` (e.g. the MinIO endpoint)."""
    parse_cache: Path | None = None
    """Where the DAG loader keeps validated definitions between parses; None: no cache."""
    parse_cache_key: str | None = field(default=None, repr=False)
    """The key cache entries are signed with; None: a key file beside the folder."""
    names_record: Path | None = None
    """Where the DAG loader records which file owns each model name; None: nowhere (a name
    then goes to the file named after it, else the first by path)."""
    models_per_shard: int = 200
    """Definitions per DAG file (shard) the loader spreads a large folder over; 0: one file."""
    import_timeout: float = 30.0
    """Airflow's ``[core] dagbag_import_timeout``: a DAG file's parse is cut off after it."""
    processor_timeout: float = 50.0
    """Airflow's ``[dag_processor] dag_file_processor_timeout``: the parsing process is killed."""
    bundle_refresh: float = 300.0
    """Airflow's ``[dag_processor] refresh_interval``: how soon a new DAG file is noticed."""
    parse_watch_interval: float = 5.0
    """Seconds between two looks of the DAG processor's parse watcher at the definition files
    (:mod:`model_steps.airflow.parse_watch`); 0 turns the watcher off."""
    bundle_folder: Path | None = None
    """The folder a definition was read from when it is not ``dags_folder``: a DAG bundle's
    (a ``LocalDagBundle`` elsewhere, a git bundle's checkout of one version). Its code is the
    definition's own code, and data stays out of it as out of the DAGs folder."""

    def connection(self, model_conn_id: str | None) -> str | None:
        """The connection a model's store is reached with: its own, else the deployment's."""
        return model_conn_id or self.conn_id

    def in_bundle(self, folder: Path | None) -> Settings:
        """These settings for a definition read from ``folder`` (None: the DAGs folder)."""
        return self if folder is None else replace(self, bundle_folder=folder)

    @property
    def code_folder(self) -> Path:
        """The folder whose modules are the definitions' own code: the bundle's, if any."""
        return self.bundle_folder or self.dags_folder

    @property
    def code_folders(self) -> tuple[Path, ...]:
        """Every folder Airflow runs code from here: the DAGs folder and the bundle's."""
        return tuple(dict.fromkeys((self.dags_folder, self.code_folder)))

    @property
    def allow_list(self) -> AllowList:
        """What a definition may name: the estimator packages, its own folder's code."""
        return allow_list(self.environ, [self.code_folder])


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from the environment and ``airflow.cfg``, resolved the way Airflow does.

    DAGs folder: ``MODEL_STEPS_DAGS_FOLDER``, ``AIRFLOW__CORE__DAGS_FOLDER``, ``[core]
    dags_folder``, then ``$AIRFLOW_HOME/dags``. Default assets root (for models without
    ``assets.root``): ``MODEL_STEPS_ASSETS_ROOT``, ``AIRFLOW__MODEL_STEPS__ASSETS_ROOT``,
    ``[model_steps] assets_root``, then ``$AIRFLOW_HOME/model-assets``. Default connection (for
    models without ``assets.conn_id``): ``MODEL_STEPS_CONN_ID``,
    ``AIRFLOW__MODEL_STEPS__CONN_ID``, ``[model_steps] conn_id``, else none. Extra allowed
    packages, functions, environment variables, connections and data locations:
    ``[model_steps] allowed_imports``, ``allowed_functions``, ``allowed_env``,
    ``allowed_connections`` and ``allowed_data`` too.
    Parse cache: ``MODEL_STEPS_PARSE_CACHE``, ``AIRFLOW__MODEL_STEPS__PARSE_CACHE``,
    ``[model_steps] parse_cache``, then ``$AIRFLOW_HOME/model-steps/parse-cache`` (``off``
    turns it off); its key ``AIRFLOW__MODEL_STEPS__PARSE_CACHE_KEY`` or ``[model_steps]
    parse_cache_key``. Model-name record: ``MODEL_STEPS_NAMES_RECORD``,
    ``[model_steps] names_record``, then ``$AIRFLOW_HOME/model-steps/names.json`` (``off``
    turns it off). Definitions per DAG file: ``MODEL_STEPS_MODELS_PER_SHARD``,
    ``AIRFLOW__MODEL_STEPS__MODELS_PER_SHARD``, ``[model_steps] models_per_shard`` (200; 0 keeps
    one file); Airflow's own parse limits are read as Airflow reads them. Parse watcher:
    ``MODEL_STEPS_PARSE_WATCH_INTERVAL``, ``AIRFLOW__MODEL_STEPS__PARSE_WATCH_INTERVAL``,
    ``[model_steps] parse_watch_interval`` (5 s; 0 turns it off). The config file is
    ``AIRFLOW_CONFIG``, else ``$AIRFLOW_HOME/airflow.cfg``
    (``~/airflow`` when ``AIRFLOW_HOME`` is unset), as for Airflow. Airflow itself is not
    imported: importing it writes a default config file, a side effect a linter must not have.
    """
    env = dict(os.environ if environ is None else environ)
    home = Path(env.get("AIRFLOW_HOME") or Path.home() / "airflow").expanduser()
    config = configparser.ConfigParser(interpolation=None)
    config.read(Path(env.get("AIRFLOW_CONFIG") or home / "airflow.cfg").expanduser())

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
    for key in _CONFIGURED:  # the definition layer reads Airflow's environment-variable form
        configured = config.get("model_steps", key, fallback="")
        if configured:
            env.setdefault(f"AIRFLOW__MODEL_STEPS__{key.upper()}", configured)
    cache = setting(
        ("MODEL_STEPS_PARSE_CACHE", "AIRFLOW__MODEL_STEPS__PARSE_CACHE"),
        "model_steps",
        "parse_cache",
        str(home / "model-steps" / "parse-cache"),
    )
    names = setting(
        ("MODEL_STEPS_NAMES_RECORD", "AIRFLOW__MODEL_STEPS__NAMES_RECORD"),
        "model_steps",
        "names_record",
        str(home / "model-steps" / "names.json"),
    )
    cache_key = env.get(PARSE_CACHE_KEY_VAR) or config.get(
        "model_steps", "parse_cache_key", fallback=""
    )

    def number(names: tuple[str, ...], section: str, key: str, default: float) -> float:
        try:
            return float(setting(names, section, key, str(default)))
        except ValueError:
            return default

    return Settings(
        models_per_shard=int(
            number(
                ("MODEL_STEPS_MODELS_PER_SHARD", "AIRFLOW__MODEL_STEPS__MODELS_PER_SHARD"),
                "model_steps",
                "models_per_shard",
                200,
            )
        ),
        import_timeout=number(
            ("AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT",), "core", "dagbag_import_timeout", 30.0
        ),
        processor_timeout=number(
            ("AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT",),
            "dag_processor",
            "dag_file_processor_timeout",
            50.0,
        ),
        bundle_refresh=number(
            ("AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL",),
            "dag_processor",
            "refresh_interval",
            300.0,
        ),
        parse_watch_interval=max(
            0.0,
            number(
                ("MODEL_STEPS_PARSE_WATCH_INTERVAL", "AIRFLOW__MODEL_STEPS__PARSE_WATCH_INTERVAL"),
                "model_steps",
                "parse_watch_interval",
                5.0,
            ),
        ),
        dags_folder=Path(folder),
        assets_root=root,
        environ=env,
        conn_id=conn_id or None,
        parse_cache=None if cache.lower() in CACHE_OFF else Path(cache),
        parse_cache_key=cache_key or None,
        names_record=None if names.lower() in CACHE_OFF else Path(names),
    )
