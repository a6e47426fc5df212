"""A task acts for a model only from the file that owns it: the store's owner record decides.

The store's ``owner.json`` names the model and, since its first publish, the file defining it,
relative to the DAGs folder. Every process reads the same record, so a worker that parsed the
folder without the DAG processor's local name record (:mod:`model_steps.definition.owners`)
still refuses to train, infer or publish a newcomer's definition into another model's store.

When the recorded file no longer defines the model (it was moved or renamed on purpose, in one
change), the running file becomes the recorded one; while it still does, any other file is
refused with a message naming the owner's file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from model_steps.definition.loader import BrokenDefinition, LoadedModel, load_file
from model_steps.definition.owners import relative_name
from model_steps.errors import StoreOwnedError
from model_steps.settings import Settings
from model_steps.store.model_store import OWNER, ModelStore, utc_now

__all__ = ["check_definition_owner", "folder_of"]


def check_definition_owner(
    store: ModelStore, source: Path | None, folder: Path | None, settings: Settings
) -> None:
    """Refuse unless ``source`` is the file the store's owner record names for the model.

    ``folder`` is the DAGs folder ``source`` was found in, as this process sees it (a worker may
    parse a bundle's copy of it at another path): the record holds paths relative to it.

    A store without an owner record, or whose record names no file yet, is left to the
    publish that claims it (``store.definition`` is what it records).

    Raises:
        StoreOwnedError: the record names another file, which still defines this model.
    """
    if source is None or store.owner is None:
        return
    folder = folder or settings.dags_folder
    relative = relative_name(source, folder)
    store.definition = relative
    record = _owner_record(store)
    if record is None or record.get("model") != store.owner:
        return  # unclaimed, or another model's: check_owner refuses that when it writes
    recorded = record.get("definition")
    if recorded == relative:
        return
    if isinstance(recorded, str) and _still_defines(
        settings.dags_folder / recorded, store.owner, settings
    ):
        raise StoreOwnedError(
            f"model {store.owner!r} belongs to the definition in {recorded} (the owner record "
            f"{store.url(OWNER)}); {relative} may not train, infer or publish it: give this "
            "model another name, or move the owner's file instead of copying it",
            owner=store.owner,
            model=store.owner,
        )
    _record_definition(store, record, relative)


def _owner_record(store: ModelStore) -> dict[str, Any] | None:
    try:
        data = store.fs.cat_file(store.path(OWNER))
    except FileNotFoundError:
        return None
    try:
        record = json.loads(data)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _still_defines(path: Path, name: str, settings: Settings) -> bool:
    """Whether ``path`` still claims model ``name`` (broken or not): the owner is still there."""
    if not path.is_file():
        return False
    found = load_file(path, settings.environ, settings.allow_list)
    if isinstance(found, LoadedModel):
        return found.spec.name == name
    return isinstance(found, BrokenDefinition) and found.name in (name, None)


def _record_definition(store: ModelStore, record: dict[str, Any], relative: str) -> None:
    """The owner's file moved (or was never recorded): record the running file as the owner."""
    moved = {**record, "definition": relative, "definition_recorded_at": utc_now()}
    store.fs.pipe_file(store.path(OWNER), json.dumps(moved).encode())


def folder_of(source: Path | None, relative: str | None) -> Path | None:
    """The DAGs folder holding ``source``, found at ``relative`` in it when the DAG was built."""
    if source is None or not relative:
        return None
    depth = len(Path(relative).parts)
    return source.parents[depth - 1] if 0 < depth <= len(source.parents) else None
