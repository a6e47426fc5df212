"""Where each model's versions live, and which definitions would share a store.

Two models writing to one store would publish over each other's versions, prune them and make a
handler serve the other's model (``assets.directory: iris`` in a second file). The loader makes
both definitions invalid when their stores are the same folder or one lies inside the other,
counting each step's own ``assets_root`` too. URLs are compared after normalising what does not
change the place (trailing or doubled slashes, ``file://`` or a plain path, ``s3a://``).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from model_steps.definition.schema import ModelSpec

__all__ = [
    "SharedStore",
    "normal_location",
    "real_path",
    "resolving_once",
    "shared_locations",
    "shared_stores",
    "store_locations",
]

DEFAULT_ROOT = "default-root://"
"""Stands for the deployment's default root when the caller does not know it."""
_SCHEMES = {"s3a": "s3", "local": "file"}
_RESOLVED: ContextVar[dict[str, str] | None] = ContextVar("model_steps_resolved", default=None)


@contextmanager
def resolving_once() -> Iterator[Mapping[str, str]]:
    """Within this block, :func:`real_path` resolves each local path once, as one snapshot.

    A folder of ten thousand models names the same assets root and data folders thousands of
    times, and ``os.path.realpath`` pays an ``lstat`` for every folder of every path: most of
    a cached load's checks. A load (:func:`model_steps.definition.loader.load_and_validate`)
    reads the disk once this way; outside a block every call asks the disk again. A block
    inside another shares its snapshot, and each yields what was resolved (path -> real path):
    the DAG loader keeps it to tell later whether the disk still answers the same.
    """
    known = _RESOLVED.get()
    if known is not None:
        yield known
        return
    known = {}
    token = _RESOLVED.set(known)
    try:
        yield known
    finally:
        _RESOLVED.reset(token)


def real_path(path: str) -> str:
    """``os.path.realpath(path)``; within :func:`resolving_once`, each folder resolved once.

    A path whose last part is a plain name and no symbolic link is its folder's real path and
    that name, so only the folder is resolved (and kept), with one ``lstat`` for the name.
    """
    known = _RESOLVED.get()
    if known is None:
        return os.path.realpath(path)
    found = known.get(path)
    if found is None:
        folder, _, name = path.rpartition("/")
        plain = folder and name not in ("", ".", "..") and not os.path.islink(path)  # noqa: PTH114
        found = real_path(folder).rstrip("/") + "/" + name if plain else os.path.realpath(path)
        known[path] = found
    return found


def normal_location(url: str) -> str:
    """One spelling per place: ``/data/x/``, ``file:///data//x`` -> ``file:///data/x``."""
    text = url.strip()
    scheme, separator, rest = text.partition("://")
    if not separator:
        return "file://" + real_path(os.path.expanduser(text))  # noqa: PTH111
    scheme = _SCHEMES.get(scheme.lower(), scheme.lower())
    if scheme == "file":
        return "file://" + posixpath.normpath("/" + rest.lstrip("/"))
    return f"{scheme}://" + "/".join(part for part in rest.split("/") if part)


def store_locations(spec: ModelSpec, default_root: str | None) -> tuple[str, ...]:
    """The model's store and each step's own asset folder, normalised."""
    root = spec.assets.root or default_root or DEFAULT_ROOT
    roots = [root, *(step.assets_root for step in spec.steps if step.assets_root)]
    return tuple(dict.fromkeys(f"{normal_location(r).rstrip('/')}/{spec.directory}" for r in roots))


@dataclass(frozen=True)
class SharedStore:
    """Model ``first`` (an index) writes at ``location``, at or inside a store of ``second``."""

    first: int
    second: int
    location: str
    other: str


def _ancestors(location: str) -> Iterator[str]:
    scheme, _, path = location.partition("://")
    parts = path.split("/")
    for end in range(len(parts) - 1, 0, -1):
        yield f"{scheme}://{'/'.join(parts[:end])}"


def shared_stores(specs: Sequence[ModelSpec], default_root: str | None) -> list[SharedStore]:
    """Every pair of models whose stores coincide or nest, once for each side."""
    return shared_locations([store_locations(spec, default_root) for spec in specs])


def shared_locations(stores: Sequence[Sequence[str]]) -> list[SharedStore]:
    """Every pair of models (by index in ``stores``, each its store locations) that share.

    Linear in the number of models (a dictionary of locations, then each location's parent
    folders looked up), since a full parse of a large DAGs folder pays it.
    """
    owners: dict[str, list[int]] = {}
    for index, locations in enumerate(stores):
        for location in locations:
            owners.setdefault(location, []).append(index)
    found: list[SharedStore] = []
    for location, indices in owners.items():
        others = [(i, location) for i in indices]
        others += [(i, parent) for parent in _ancestors(location) for i in owners.get(parent, ())]
        for first in indices:
            for second, place in others:
                if second != first:
                    found.append(SharedStore(first, second, location, place))
                    if place != location:  # the outer model learns of the one inside it
                        found.append(SharedStore(second, first, place, location))
    return list(dict.fromkeys(found))
