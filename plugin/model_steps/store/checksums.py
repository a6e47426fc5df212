"""Sizes and sha256 digests of assets, computed while the bytes stream past.

Every asset a manifest names carries both; a reader refuses a file whose bytes differ.
"""

from __future__ import annotations

import hashlib
import io
import os
from typing import IO

from model_steps.errors import ChecksumMismatchError
from model_steps.store.manifest import AssetRecord

__all__ = ["CHUNK", "copy_digest", "file_digest", "handle_digest", "verify"]

CHUNK = 8 * 2**20
"""Bytes read at a time when streaming an asset."""


def copy_digest(source: IO[bytes], target: IO[bytes] | None) -> tuple[int, str]:
    """Size and sha256 of ``source``, read once in chunks (and written to ``target``, if any)."""
    digest = hashlib.sha256()
    size = 0
    while chunk := source.read(CHUNK):
        digest.update(chunk)
        if target is not None:
            target.write(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def file_digest(path: str) -> tuple[int, str]:
    """Size and sha256 of a local file."""
    with open(path, "rb") as handle:
        return handle_digest(handle)


def handle_digest(handle: io.BufferedReader) -> tuple[int, str]:
    """Size and sha256 of an open file, read through the very handle a loader will use."""
    digest = hashlib.file_digest(handle, "sha256")
    return os.fstat(handle.fileno()).st_size, digest.hexdigest()


def verify(record: AssetRecord, size: int, sha256: str) -> None:
    """Refuse bytes that differ from what the manifest recorded.

    Raises:
        ChecksumMismatchError: the size or the sha256 differs.
    """
    if size != record.size or sha256 != record.sha256:
        raise ChecksumMismatchError(
            f"{record.url} does not match its manifest: {size} bytes with sha256 {sha256[:12]}…, "
            f"expected {record.size} bytes with sha256 {record.sha256[:12]}…"
        )
