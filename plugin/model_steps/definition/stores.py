"""Where each model's versions live, and which definitions would share a store.

Two models writing to one store would publish over each other's versions, prune them and make a
handler serve the other's model (``assets.directory: iris`` in a second file). The loader makes
both definitions invalid when their stores are the same folder or one lies inside the other,
counting each step's own ``assets_root`` too. URLs are compared after normalising what does not
change the place (trailing or doubled slashes, ``file://`` or a plain path, ``s3a://``).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from model_steps.definition.schema import ModelSpec

__all__ = [
    "SharedStore",
    "normal_location",
    "shared_locations",
    "shared_stores",
    "store_locations",
]

DEFAULT_ROOT = "default-root://"
"""Stands for the deployment's default root when the caller does not know it."""
_SCHEMES = {"s3a": "s3", "local": "file"}


def normal_location(url: str) -> str:
    """One spelling per place: ``/data/x/``, ``file:///data//x`` -> ``file:///data/x``."""
    text = url.strip()
    scheme, separator, rest = text.partition("://")
    if not separator:
        return "file://" + Path(text).expanduser().resolve().as_posix()
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
