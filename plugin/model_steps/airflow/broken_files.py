"""Model files that run their last good definition, counted among Airflow's import errors.

While a model's YAML no longer validates, the loader builds its DAGs from its last good
definition (:meth:`model_steps.definition.cache.ParseCache.last_good`): nothing Airflow parses
fails, so its import-error count and banner would say nothing. Airflow records import errors
only for the DAG files it parses (a YAML is none), keyed by their path: an error recorded under
another path is dropped when Airflow next lists the bundle, and one under the loader's own path
would make Airflow mark every DAG of the loader stale. So each full parse records its files that
stand as their last good definition beside the parse cache, and the loader keeps one more DAG
file, ``model_steps_shards/broken_definitions.py``. It builds no DAG; it fails to import while a
recorded file is still as it was recorded, its error naming each such file: one import error,
cleared by its next parse once every file is fixed.

The error names files and how many problems each has, not the problems: Airflow shows an import
error of a file without DAGs to everyone who may see import errors, while a model's problems
are for those who may read its DAGs (the Models page, ``model-steps validate``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from model_steps.airflow.shards import SHARD_FOLDER, write_if_changed
from model_steps.definition.loader import LoadedModel
from model_steps.definition.owners import relative_name
from model_steps.errors import ModelStepsError
from model_steps.settings import Settings, load_settings

__all__ = ["REPORT_FILE", "StandingInError", "record_standing_in", "report_standing_in"]

log = logging.getLogger(__name__)

REPORT_FILE = f"{SHARD_FOLDER}/broken_definitions.py"
"""The DAG file, relative to the DAGs folder, whose import error counts the broken files."""
SOURCE = '''"""Model files Airflow runs the last good definition of: this DAG file's import error.

Written and kept by airflow-model-steps (model_steps_loader.py): do not edit, move or copy it.
It builds no DAG: it fails to import while a model's YAML no longer validates.
"""

from pathlib import Path

from model_steps.airflow.broken_files import report_standing_in

report_standing_in(Path(__file__).resolve().parents[1])
'''


class StandingInError(ModelStepsError):
    """Model files no longer validate: their models run their last good definitions."""


def record_standing_in(
    settings: Settings, folder: Path, shard: int, models: Iterable[LoadedModel]
) -> None:
    """Keep which of this parse's files stand as their last good definition; none clears it.

    With one or more, the report file is written (once) and its time touched when the record
    changes, so Airflow, which parses the newest files first, counts the change soon.
    """
    records = _records(settings)
    if records is None:
        return
    standing = {
        relative_name(model.path, folder): {
            "stat": _stat(model.path),
            "problems": len(model.problems),
        }
        for model in models
        if model.problems
    }
    record = json.dumps({"folder": str(folder.resolve()), "files": standing}, sort_keys=True)
    try:
        records.mkdir(exist_ok=True)
        changed = write_if_changed(records / f"{_key(folder)}_shard_{shard:03d}.json", record)
        report = folder / REPORT_FILE
        if standing and not report.exists():
            report.parent.mkdir(exist_ok=True)
            write_if_changed(report, SOURCE)
        elif changed and report.exists():
            os.utime(report)
    except OSError as error:
        log.warning("cannot record the broken model files in %s: %s", records, error)


def report_standing_in(folder: Path) -> None:
    """Fail naming each recorded file still broken as recorded; return when there is none.

    Raises:
        StandingInError: one or more files run their last good definition.
    """
    records = _records(load_settings(os.environ))
    if records is None:
        return
    standing = {}
    for path in sorted(records.glob(f"{_key(folder)}_shard_*.json")):
        for name, entry in _files(path).items():
            if _stat(folder / name) == entry.get("stat"):  # a file changed since is parsed anew
                standing[name] = entry.get("problems", 0)
    if standing:
        listing = "; ".join(f"{name} ({count} problem(s))" for name, count in standing.items())
        raise StandingInError(
            f"{len(standing)} model file(s) no longer validate, and their models run their "
            f"last good definitions until they are fixed: {listing}. Their problems are on "
            "the Models page and from `model-steps validate`."
        )


def _records(settings: Settings) -> Path | None:
    return None if settings.parse_cache is None else settings.parse_cache / "standing-in"


def _key(folder: Path) -> str:
    """A short name for the DAGs folder: deployments may parse several into one cache."""
    return hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]


def _stat(path: Path) -> list[int] | None:
    """The file's modification time and size, or None when it is gone."""
    try:
        info = path.stat()
    except OSError:
        return None
    return [info.st_mtime_ns, info.st_size]


def _files(path: Path) -> dict[str, Any]:
    """The files a record lists, or none when it cannot be read."""
    try:
        files = json.loads(path.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return files if isinstance(files, dict) else {}
