"""Which DAG file (shard) builds which definition: stable, so a new file moves no other model.

A large DAGs folder is spread over several DAG files so that no one file's parse nears Airflow's
import timeout, and the DAG processor's parsing processes share the work. A definition's shard
is a pure function of its path relative to the DAGs folder and of the number of shards, by
jump consistent hashing (Lamping and Veach, 2014): adding or removing a definition moves no
other one, and going from ``n`` to ``n + 1`` shards moves only the definitions the new shard
takes (about one in ``n + 1``), never one between two old shards.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Shard", "shard_count", "shard_of"]

_MULTIPLIER = 2862933555777941757
_MASK = (1 << 64) - 1


def _key(relative: str) -> int:
    """A 64-bit key from the path: the same on every machine and Python (no salted ``hash``)."""
    return int.from_bytes(hashlib.blake2b(relative.encode(), digest_size=8).digest(), "big")


def shard_of(relative: str, count: int) -> int:
    """The shard (``0 <= shard < count``) of the definition at ``relative`` (POSIX path)."""
    key, bucket, jump = _key(relative), -1, 0
    while jump < count:
        bucket = jump
        key = (key * _MULTIPLIER + 1) & _MASK
        jump = int((bucket + 1) * ((1 << 31) / ((key >> 33) + 1)))
    return max(bucket, 0)


def shard_count(definitions: int, per_shard: int) -> int:
    """Shards for ``definitions`` files at most ``per_shard`` each; 1 when sharding is off (0)."""
    if per_shard <= 0:
        return 1
    return max(1, math.ceil(definitions / per_shard))


@dataclass(frozen=True)
class Shard:
    """The part of a DAGs folder one DAG file builds: definitions whose shard is in ``owned``."""

    root: Path
    count: int
    owned: frozenset[int]

    def relative(self, path: Path) -> str:
        """``path`` relative to ``root``, as a POSIX string (string work: pathlib is slow here)."""
        text, prefix = str(path), str(self.root).rstrip("/") + "/"
        return text[len(prefix) :] if text.startswith(prefix) else text

    def owns(self, path: Path) -> bool:
        """Whether the definition at ``path`` (under ``root``) is this DAG file's to build."""
        return self.owns_relative(self.relative(path))

    def owns_relative(self, relative: str) -> bool:
        """Whether the definition at ``relative`` (to ``root``) is this DAG file's to build."""
        return shard_of(relative, self.count) in self.owned
