"""What every definition in a DAGs folder claims (name, stores), kept for the other shards.

The rules across files (one model per name, no two models sharing a store, no data URL inside
another model's store) need every definition of the folder, but a shard builds only its own
part. Validating the whole folder in each shard would make a parse of the folder cost
shards x models, so each shard reads the other definitions' claims from this index instead:
one signed document in the parse cache, an entry per file, used only while the file's size,
modification time, inode and change time (which no user can set) are unchanged, and only
while the code, the allow-list, the deployment's assets root and its allowed connections are
the ones it was made with, and the environment values its validation read (kept as one
keyed hash, never in clear).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from model_steps.definition.cache import ParseCache, RecordingEnviron, code_fingerprint
from model_steps.definition.shards import Shard, shard_of
from model_steps.settings import AllowList, allowed_connections

__all__ = [
    "MISSING",
    "FolderIndex",
    "ModelFacts",
    "Stamp",
    "file_stamp",
    "index_context",
    "load_shard",
]

log = logging.getLogger(__name__)

FORMAT = 1


@dataclass(frozen=True)
class ModelFacts:
    """What a valid definition claims across files: its name and its store locations."""

    path: Path
    name: str
    stores: tuple[str, ...]


class _Missing:
    """The index knows nothing (current) of a file: load it."""


MISSING = _Missing()

Stamp = tuple[int, int, int, int]


def _stamp(status: os.stat_result) -> Stamp:
    return (status.st_size, status.st_mtime_ns, status.st_ino, status.st_ctime_ns)


def file_stamp(path: str) -> Stamp | None:
    """The stamp of the file at ``path`` (size, modification time, inode, change time).

    None when it is gone or cannot be read. Taken by path string: callers stat every file of
    a large folder, where ``Path`` objects cost more than the ``stat`` itself.
    """
    try:
        return _stamp(os.stat(path))  # noqa: PTH116
    except OSError:
        return None


def index_context(allowed: AllowList, assets_root: str | None, environ: Mapping[str, str]) -> str:
    """What every entry depends on beside its file; another context empties the index."""
    parts = (
        code_fingerprint(),
        repr(allowed),
        repr(assets_root),
        allowed_connections(environ),
    )
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


@dataclass
class FolderIndex:
    """The claims of a folder's definitions, by path relative to ``root``."""

    cache: ParseCache
    root: Path
    context: str
    environ: Mapping[str, str]
    entries: dict[str, list[Any]] = field(default_factory=dict)
    changed: bool = False
    _digests: dict[tuple[str, ...], str] = field(default_factory=dict)

    @classmethod
    def open(
        cls, cache: ParseCache, root: Path, context: str, environ: Mapping[str, str]
    ) -> FolderIndex:
        """The folder's index as last saved, or an empty one (other context, absent, forged)."""
        index = cls(cache, root, context, environ)
        body = cache.read_signed(index._name())
        if body is None:
            return index
        try:
            data = json.loads(body)
            if data["format"] == FORMAT and data["context"] == context:
                index.entries = dict(data["files"])
        except (ValueError, KeyError, TypeError) as error:
            log.warning("ignoring an unreadable folder index in %s: %s", cache.folder, error)
        return index

    def lookup(
        self, path: Path, relative: str, status: os.stat_result
    ) -> ModelFacts | _Missing | None:
        """The claims of ``path`` (at ``relative`` to the root), or :data:`MISSING`.

        None: the file is no valid definition.
        """
        entry = self.entries.get(relative)
        if entry is None or tuple(entry[0]) != _stamp(status):
            return MISSING
        if entry[4] != self._digest(tuple(entry[3])):
            return MISSING
        name, stores = entry[1], entry[2]
        return None if name is None else ModelFacts(path, name, tuple(stores))

    def record(
        self, relative: str, status: os.stat_result, facts: ModelFacts | None, reads: Sequence[str]
    ) -> None:
        """Remember what the file at ``relative`` (as it is now) claims.

        ``reads`` names the environment variables its validation looked up.
        """
        names = tuple(sorted(reads))
        entry = [
            list(_stamp(status)),
            None if facts is None else facts.name,
            [] if facts is None else list(facts.stores),
            list(names),
            self._digest(names),
        ]
        if self.entries.get(relative) != entry:
            self.entries[relative] = entry
            self.changed = True

    def keep_only(self, present: set[str]) -> None:
        """Forget files that are gone, so the index does not grow with deleted definitions."""
        gone = [name for name in self.entries if name not in present]
        for name in gone:
            del self.entries[name]
        self.changed = self.changed or bool(gone)

    def save(self) -> None:
        """Write the index if it changed (whole: a concurrent reader sees the old or the new)."""
        if not self.changed:
            return
        body = {"format": FORMAT, "context": self.context, "files": self.entries}
        self.cache.write_signed(self._name(), json.dumps(body, separators=(",", ":")).encode())
        self.changed = False

    def _digest(self, names: tuple[str, ...]) -> str:
        """The environment's values of ``names``, as one keyed hash (computed once per set)."""
        digest = self._digests.get(names)
        if digest is None:
            values = json.dumps([[name, self.environ.get(name)] for name in names])
            digest = hmac.new(self.cache.key, values.encode(), hashlib.sha256).hexdigest()
            self._digests[names] = digest
        return digest

    def _name(self) -> str:
        folder = hashlib.sha256(str(self.root.absolute()).encode()).hexdigest()[:16]
        return f"folder-index-{folder}.json"


R = TypeVar("R")
SAVE_EVERY_S = 2.0
"""While claims are worked out, the index is saved this often: a parse cut short by Airflow's
timeout still leaves its progress for the next one."""


def load_shard(
    files: Sequence[Path],
    shard: Shard,
    index: FolderIndex,
    load: Callable[[Path, Mapping[str, str]], tuple[R | None, ModelFacts | None]],
) -> tuple[list[R], list[ModelFacts], set[int]]:
    """The shard's own files, the others' claims, and the shards whose files changed.

    The changed shards are those holding a file the index did not know as it is now (new or
    edited). ``load`` gives a file's result and its claims, reading the environment it is given;
    another shard's file is loaded only when the index has no current entry for it.
    """
    own: list[R] = []
    others: list[ModelFacts] = []
    saved = time.monotonic()
    present = set()
    changed: set[int] = set()
    known = bool(index.entries)
    for path in files:
        relative = shard.relative(path)
        present.add(relative)
        try:
            status = os.stat(path)  # noqa: PTH116  (Path.stat costs more, per file of a folder)
        except OSError:
            status = None  # gone, or unreadable: loading it says which
        mine = shard.owns_relative(relative)
        facts = MISSING if mine or status is None else index.lookup(path, relative, status)
        if isinstance(facts, _Missing):
            if not mine and known:  # a first index marks nothing: every file is new to it
                changed.add(shard_of(relative, shard.count))
            reads = RecordingEnviron(index.environ)
            result, facts = load(path, reads)
            if mine and result is not None:
                own.append(result)
            if status is not None and not reads.listed:
                index.record(relative, status, facts, list(reads.reads))
            if time.monotonic() - saved > SAVE_EVERY_S:
                index.save()
                saved = time.monotonic()
        if facts is not None and not mine:
            others.append(facts)
    index.keep_only(present)
    index.save()
    return own, others, changed
