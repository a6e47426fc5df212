"""A DAG file's plans kept whole between parses: an unchanged folder is not loaded again.

The parse cache (:mod:`model_steps.definition.cache`) spares each unchanged definition its
validation, but a shard's parse still reads every one of its files, checks its data places and
stores against the whole folder, and plans and outlines its DAGs: at 3,000 models that was
about 30% of a folder's parse, a third more than building the same DAGs by hand, for the same
answer every time nothing changed. So each DAG file keeps its plans (the DAGs to build, as
plain data) whole, with everything they were made from, and builds straight from them while
all of it is unchanged:

- the package's code, the folder, the shard and the number of shards, the import allow-list
  and the deployment's assets root;
- every definition file of the folder (the rules across files read them all), by size,
  modification time, inode and change time (which no user can set), and the model-name
  record as it is on disk;
- the environment values the load read (as keyed hashes, never in clear);
- every local path the data and store checks resolved, as ``lstat`` finds it (device, inode,
  type, and a link's real path): a symbolic link placed, removed or turned anywhere on those
  paths is a miss, so the checks against another model's store are never answered from an old
  disk.

Anything else is a miss: the folder is loaded as before, and its plans kept. Plans are kept as
a pickle, which can run code when read, so the entry is signed like every parse-cache entry,
with a key the cache folder does not hold, and its signature is checked before any byte of it
is unpickled: a file the loader did not write is refused and replaced.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import pickle
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import model_steps
from model_steps.airflow.plan import DagPlan
from model_steps.definition.cache import ParseCache, RecordingEnviron, code_fingerprint
from model_steps.definition.folder_index import file_stamp
from model_steps.definition.loader import LoadedModel, definition_paths
from model_steps.definition.stores import resolving_once

__all__ = ["KeptPlans", "forget_other_shards", "kept_plans"]

log = logging.getLogger(__name__)

FORMAT = 1
PathStamp = list[Any] | None


@dataclass(frozen=True)
class KeptPlans:
    """What a DAG file builds, as its load and planning left it."""

    plans: list[DagPlan]
    outlines: dict[str, str]
    """The outline (the Models API's record of a model) of each DAG that carries one."""
    standing: tuple[LoadedModel, ...]
    """The models whose broken file stands as its last good definition."""
    changed_shards: frozenset[int] = frozenset()
    """Other DAG files holding a definition this load found new or edited."""


Planner = Callable[[Mapping[str, str]], KeptPlans]
"""Loads and plans the DAG file's part of the folder, reading the environment it is given."""


def kept_plans(
    cache: ParseCache | None,
    folder: Path,
    shard: int,
    inputs: Sequence[object],
    environ: Mapping[str, str],
    plan: Planner,
    paths: Sequence[str],
) -> KeptPlans:
    """The plans of DAG file ``shard``: kept ones while nothing they came from changed.

    ``inputs`` are the deployment's choices the load depends on beside the files and the
    environment (the shard count, the allow-list, the assets root, the name record's path);
    ``paths`` the folder's definition files, as the caller just listed them.
    """
    if cache is None:
        return plan(environ)
    entry = _Entry(cache, folder, shard)
    key = _key(folder, shard, inputs, paths)
    kept = entry.read(key, environ)
    if kept is not None:
        return kept
    reads = RecordingEnviron(environ)
    with resolving_once() as resolved:
        fresh = plan(reads)
        listed = list(definition_paths(folder))
        if not reads.listed and _key(folder, shard, inputs, listed) == key:  # nothing moved
            entry.write(key, reads, resolved, fresh)
    return fresh


def forget_other_shards(cache: ParseCache | None, folder: Path, count: int) -> None:
    """Remove the kept plans of DAG files the folder no longer has (it shrank, or went whole)."""
    if cache is None:
        return
    prefix = _Entry(cache, folder, 0).name.removesuffix("000.pickle")
    for path in cache.folder.glob(f"{prefix}*.pickle"):
        index = path.name.removeprefix(prefix).removesuffix(".pickle")
        if not index.isdigit() or int(index) >= count:
            path.unlink(missing_ok=True)


@functools.cache
def _package_code() -> str:
    """Every module of the package by size and time: plans come from all of its layers."""
    package = Path(model_steps.__file__).resolve().parent
    digest = hashlib.sha256(code_fingerprint().encode())
    for file in sorted(package.rglob("*.py")):
        status = file.stat()
        digest.update(f"{file.relative_to(package)}:{status.st_size}:{status.st_mtime_ns}".encode())
    return digest.hexdigest()


def _key(folder: Path, shard: int, inputs: Sequence[object], paths: Sequence[str]) -> str:
    """What the plans depend on that is cheap to look at: code, choices, and every file."""
    digest = hashlib.sha256(f"{FORMAT}\0{_package_code()}\0{folder.absolute()}\0{shard}".encode())
    for value in inputs:
        digest.update(b"\0" + repr(_stamp_of(value)).encode())
    prefix = str(folder).rstrip("/") + "/"
    for path in paths:
        digest.update(f"\0{path[len(prefix) :]}\0{file_stamp(path)}".encode())
    return digest.hexdigest()


def _stamp_of(value: object) -> object:
    """A path stands for its file as it is now (the name record); anything else for itself."""
    return (str(value), file_stamp(str(value))) if isinstance(value, Path) else value


def _path_stamp(path: str) -> PathStamp:
    """What a resolved path is on disk: which file, what kind, and for a link where it leads."""
    try:
        status = os.lstat(path)
    except OSError:
        return None
    kind = stat.S_IFMT(status.st_mode)
    target = os.path.realpath(path) if kind == stat.S_IFLNK else None
    return [status.st_dev, status.st_ino, kind, target]


class _Entry:
    """The signed file holding one DAG file's plans in the parse cache."""

    def __init__(self, cache: ParseCache, folder: Path, shard: int) -> None:
        self.cache = cache
        where = hashlib.sha256(str(folder.absolute()).encode()).hexdigest()[:16]
        self.name = f"plans-{where}-{shard:03d}.pickle"

    def read(self, key: str, environ: Mapping[str, str]) -> KeptPlans | None:
        """The kept plans, if made under ``key``, from these environment values and paths."""
        body = self.cache.read_signed(self.name)  # signature checked: only ours is unpickled
        if body is None:
            return None
        header, _, pickled = body.partition(b"\n")
        try:
            facts = json.loads(header)
            if facts["key"] != key or not self._same_world(facts, environ):
                return None
            kept = pickle.loads(pickled)
        except (ValueError, KeyError, TypeError, pickle.UnpicklingError, AttributeError) as error:
            log.warning("ignoring unreadable kept plans %s: %s", self.name, error)
            return None
        return kept if isinstance(kept, KeptPlans) else None

    def write(
        self, key: str, reads: RecordingEnviron, resolved: Mapping[str, str], kept: KeptPlans
    ) -> None:
        facts = {
            "key": key,
            "reads": {name: self.cache.hide(value) for name, value in sorted(reads.reads.items())},
            "paths": {path: _path_stamp(path) for path in resolved},
        }
        header = json.dumps(facts, separators=(",", ":")).encode()
        self.cache.write_signed(self.name, header + b"\n" + pickle.dumps(kept, protocol=5))

    def _same_world(self, facts: Mapping[str, Any], environ: Mapping[str, str]) -> bool:
        """Whether the environment and the disk give what the kept load read."""
        hide = self.cache.hide
        if any(hide(environ.get(name)) != value for name, value in facts["reads"].items()):
            return False
        return all(_path_stamp(path) == stamp for path, stamp in facts["paths"].items())
