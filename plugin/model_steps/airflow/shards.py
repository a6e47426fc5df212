"""The DAG files a large folder is spread over (shards), written and kept by the loader.

``dags/model_steps_loader.py`` is shard 0. When the folder holds more definitions than
``models_per_shard``, it writes ``model_steps_shards/shard_NNN.py`` beside itself, one small file
per further shard, and removes those no longer needed; nobody writes them by hand. Each file
builds the definitions :func:`model_steps.definition.shards.shard_of` gives it, so every parse
stays about ``models_per_shard`` definitions long however large the folder, and Airflow's
parsing processes share the files.

Airflow notices a new file only when it next lists the bundle (``[dag_processor]
refresh_interval``). Until a new shard file is that old (its creation time is written in it),
the shards already known keep its
definitions, so growing the folder never leaves a DAG without a file; only a folder that more
than doubles at once (the first parse of a large folder) hands definitions to files Airflow
has not listed yet, rather than have one file build them all past the import timeout.

Each parse's duration is kept beside the parse cache; one that used more than half of Airflow's
import timeout is logged and shown on the Models page (:func:`parse_warnings`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from model_steps.definition.loader import count_definition_files
from model_steps.definition.shards import Shard, shard_count
from model_steps.settings import LOADER_FILE, Settings

__all__ = [
    "SHARD_FOLDER",
    "ShardPlan",
    "dag_file_name",
    "last_parse",
    "live_shards",
    "parse_warnings",
    "plan_shard",
    "record_parse",
    "shard_file",
    "touch_shards",
    "wanted_shards",
    "write_if_changed",
]

log = logging.getLogger(__name__)

SHARD_FOLDER = "model_steps_shards"
WARN_FRACTION = 0.5
"""A parse using more than this share of Airflow's import timeout is reported."""
MATURE_FACTOR = 1.1
"""A shard file is trusted to be listed by Airflow once this many refresh intervals old."""
SOURCE = '''"""Shard {index} of the model definitions in this DAGs folder.

Written and kept by airflow-model-steps (model_steps_loader.py): do not edit, move or copy it.
"""

import os
from pathlib import Path

from airflow.sdk import get_parsing_context

from model_steps.airflow.dags import build_dags

folder = Path(__file__).resolve().parents[1]
dag_id = get_parsing_context().dag_id
globals().update(build_dags(folder, os.environ, dag_id, shard={index}))
# created {created}
'''
_CREATED = re.compile(r"^# created (\d+)$", re.MULTILINE)


def shard_file(folder: Path, index: int) -> Path:
    """Where shard ``index`` (1 and up; 0 is the loader itself) lives in the DAGs ``folder``."""
    return folder / SHARD_FOLDER / f"shard_{index:03d}.py"


def dag_file_name(index: int) -> str:
    """DAG file ``index`` relative to the DAGs folder: the loader (by its name) or a shard."""
    return LOADER_FILE if index == 0 else f"{SHARD_FOLDER}/shard_{index:03d}.py"


@dataclass(frozen=True)
class ShardPlan:
    """What one DAG file builds: a part of the folder (``shard``), all of it, or nothing."""

    shard: Shard | None
    """None with ``builds``: the whole folder, as one file."""
    builds: bool
    definitions: int
    """Definition files in the folder (YAML files, counted by name)."""


def plan_shard(
    folder: Path,
    settings: Settings,
    index: int,
    now: float | None = None,
    definitions: int | None = None,
) -> ShardPlan:
    """The part of ``folder`` DAG file ``index`` builds; shard 0 also keeps the shard files.

    ``definitions``: the folder's definition files, when the caller has just counted them.
    """
    if definitions is None:
        definitions = count_definition_files(folder)
    if index == 0:
        if settings.parse_cache is None and shard_count(definitions, settings.models_per_shard) > 1:
            log.warning(
                "%d definitions in one DAG file: spreading them over shards needs the parse "
                "cache ([model_steps] parse_cache is off)",
                definitions,
            )
        _keep_files(folder, wanted_shards(definitions, settings))
    count = live_shards(folder, settings, definitions, now)
    if index >= count:
        return ShardPlan(None, False, definitions)
    if count == 1:
        return ShardPlan(None, True, definitions)
    return ShardPlan(Shard(folder, count, frozenset({index})), True, definitions)


def wanted_shards(definitions: int, settings: Settings) -> int:
    """The DAG files ``definitions`` call for: one when the parse cache is off."""
    return (
        1 if settings.parse_cache is None else shard_count(definitions, settings.models_per_shard)
    )


def live_shards(
    folder: Path, settings: Settings, definitions: int, now: float | None = None
) -> int:
    """How many DAG files the ``definitions`` of ``folder`` are spread over right now.

    The one answer both the loader (which definitions a file builds) and the parse watcher
    (which file to have parsed for a changed definition) use. A shard file counts once Airflow
    has listed it; a folder that more than doubles counts every file it calls for at once.
    """
    target = wanted_shards(definitions, settings)
    if (folder / SHARD_FOLDER).is_symlink():
        return 1  # not the package's folder: the loader builds everything, as one file
    now = time.time() if now is None else now
    live = 1
    while live < target and _listed_by_airflow(shard_file(folder, live), settings, now):
        live += 1
    return live if target <= 2 * live else target


def _created(path: Path) -> int | None:
    """When the shard file was first written (kept in it: its time changes when touched)."""
    try:
        found = _CREATED.search(path.read_text())
    except OSError:
        return None
    return int(found.group(1)) if found else None


def _listed_by_airflow(path: Path, settings: Settings, now: float) -> bool:
    created = _created(path)
    return created is not None and now - created >= settings.bundle_refresh * MATURE_FACTOR


def touch_shards(folder: Path, shards: Iterable[int]) -> None:
    """Mark the files of ``shards`` as changed, so Airflow parses them next.

    Airflow's default ``[dag_processor] file_parsing_sort_mode`` (``modified_time``) queues a
    file whose time is newer than its last parse first, even inside its
    ``min_file_process_interval``: a new or edited YAML's shard is parsed again soon, and only
    that shard. Shard 0 (the loader, whose name the package does not choose) is left alone.
    """
    for index in shards:
        if index > 0:
            try:
                os.utime(shard_file(folder, index))
            except OSError:
                continue  # not written yet, or removed meanwhile: nothing to hurry


def _keep_files(folder: Path, count: int) -> None:
    """Shard files 1 to ``count - 1`` exist with the current text; no others remain."""
    shards = folder / SHARD_FOLDER
    now = int(time.time())
    wanted = {shard_file(folder, i): i for i in range(1, count)}
    if shards.is_symlink():  # the package writes and deletes files only in a folder of its own
        log.warning(
            "%s is a symbolic link: the loader neither writes nor removes shards there", shards
        )
        return
    try:
        if wanted:
            shards.mkdir(exist_ok=True)
        existing = list(shards.glob("shard_*.py")) if shards.is_dir() else []
        for path in existing:
            if path not in wanted:
                path.unlink(missing_ok=True)
        for path, index in wanted.items():
            created = _created(path) or now
            write_if_changed(path, SOURCE.format(index=index, created=created))
    except OSError as error:
        log.warning(
            "cannot keep the shard files in %s (%s): the files there keep their definitions",
            shards,
            error,
        )


def write_if_changed(path: Path, text: str) -> bool:
    """Write ``path`` whole (a reader sees the old text or the new), unless it holds ``text``.

    Returns whether it wrote.
    """
    try:
        if path.read_text() == text:
            return False
    except FileNotFoundError:
        pass
    with tempfile.NamedTemporaryFile(
        "w", dir=path.parent, prefix=".shard-", suffix=".tmp", delete=False
    ) as temp:
        temp.write(text)
    written = Path(temp.name)
    written.chmod(0o644)
    written.replace(path)
    return True


def _record_folder(settings: Settings) -> Path | None:
    return None if settings.parse_cache is None else settings.parse_cache / "parse-times"


def record_parse(
    settings: Settings, folder: Path, index: int, seconds: float, definitions: int
) -> None:
    """Keep how long DAG file ``index`` took, and log a warning when it nears the timeout."""
    limit = min(settings.import_timeout, settings.processor_timeout)
    source = dag_file_name(index)
    if seconds > WARN_FRACTION * limit:
        log.warning(
            "%s took %.1f s to parse, %.0f%% of Airflow's %.0f s limit: lower "
            "[model_steps] models_per_shard (now %d) so each DAG file builds fewer models",
            source,
            seconds,
            100 * seconds / limit,
            limit,
            settings.models_per_shard,
        )
    records = _record_folder(settings)
    if records is None:
        return
    record = {
        "folder": str(folder.resolve()),
        "file": source,
        "seconds": round(seconds, 3),
        "limit": limit,
        "definitions": definitions,
        "models_per_shard": settings.models_per_shard,
    }
    try:
        records.mkdir(exist_ok=True)
        target = records / f"shard_{index:03d}.json"
        with tempfile.NamedTemporaryFile("w", dir=records, delete=False, suffix=".tmp") as temp:
            json.dump(record, temp)
        Path(temp.name).replace(target)
    except OSError as error:
        log.warning("cannot record the parse time in %s: %s", records, error)


def last_parse(settings: Settings, folder: Path, index: int) -> tuple[float, float] | None:
    """When the last recorded parse of DAG file ``index`` of ``folder`` began and ended.

    Wall times. None when no parse was recorded (the parse cache is off, the file failed).
    """
    records = _record_folder(settings)
    if records is None:
        return None
    path = records / f"shard_{index:03d}.json"
    try:
        ended = path.stat().st_mtime
        record = json.loads(path.read_text())
        if record["folder"] != str(folder.resolve()):
            return None
        return ended - float(record["seconds"]), ended
    except (OSError, ValueError, KeyError, TypeError):
        return None


def parse_warnings(settings: Settings) -> list[str]:
    """A sentence for each DAG file of the folder whose last parse neared Airflow's limit."""
    records = _record_folder(settings)
    if records is None or not records.is_dir():
        return []
    folder = str(settings.dags_folder.resolve())
    warnings = []
    for path in sorted(records.glob("shard_*.json")):
        try:
            record = json.loads(path.read_text())
            if record["folder"] != folder or not (settings.dags_folder / record["file"]).exists():
                continue
            seconds, limit = float(record["seconds"]), float(record["limit"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if seconds > WARN_FRACTION * limit:
            warnings.append(
                f"{record['file']} took {seconds:.1f} s to parse, {100 * seconds / limit:.0f}% "
                f"of Airflow's {limit:.0f} s import timeout: lower [model_steps] "
                f"models_per_shard (now {record['models_per_shard']}) so each DAG file builds "
                "fewer models, before the file times out and its models' DAGs go stale"
            )
    return warnings
