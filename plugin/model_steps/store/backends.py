"""Filesystems and the one conditional write each backend offers.

Publishing needs two atomic operations: create a document exactly once (claim a version
number) and compare-and-swap the pointer. S3 has them as preconditions (``If-None-Match: *``,
``If-Match: <etag>``); local disk has exclusive links and ``flock`` + ``os.replace``; fsspec's
memory filesystem (tests) a process lock. Any other backend can be read but not published to.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import os
import shutil
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import fsspec

from model_steps.errors import StoreUnavailableError

__all__ = [
    "ConditionalWrites",
    "Conflict",
    "conditional_writes",
    "filesystem",
    "is_local",
    "protocols",
    "takes_refresh",
]


def filesystem(url: str, options: Mapping[str, Any]) -> tuple[Any, str]:
    """The filesystem for ``url``; local folders are created on write, as they are on S3."""
    if fsspec.utils.get_protocol(url) in ("file", "local"):
        options = {**options, "auto_mkdir": True}  # its own cached instance, not the shared one
    return fsspec.core.url_to_fs(url, **options)  # type: ignore[no-any-return]


def protocols(fs: Any) -> tuple[str, ...]:
    """The protocol names a filesystem answers to (fsspec gives a string or a tuple)."""
    return tuple(fs.protocol) if isinstance(fs.protocol, tuple | list) else (fs.protocol,)


def takes_refresh(fs: Any) -> bool:
    """Whether reads must pass ``refresh=True`` to skip the filesystem's listing cache."""
    return "s3" in protocols(fs)


def is_local(fs: Any) -> bool:
    """Whether the filesystem is this machine's disk."""
    return bool({"file", "local"} & set(protocols(fs)))


class Conflict(Exception):
    """The document changed since it was read."""


class ConditionalWrites(Protocol):
    """The atomic operations publishing needs, as one backend provides them."""

    def create(self, path: str, data: bytes) -> None:
        """Write a new document; ``FileExistsError`` when the name is taken."""

    def read(self, path: str) -> tuple[bytes, str] | None:
        """A document and the tag :meth:`swap` compares against; None when absent."""

    def tag(self, path: str) -> str:
        """A cheap fingerprint that changes whenever the document is replaced."""

    def swap(self, path: str, data: bytes, tag: str | None) -> None:
        """Replace the document only if its tag is still ``tag``; else raise Conflict."""

    def duplicate(self, source: str, target: str, *, checksum: bool) -> str | None:
        """Copy a file within the backend (server-side, or a link on disk).

        Returns the copy's sha256 (hex) when the backend computed it while copying and
        ``checksum`` asked for it; None when the caller must read the copy back to check it.
        """


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _S3Writes:
    """S3 preconditions: ``If-None-Match: *`` to create once, ``If-Match: <etag>`` to swap."""

    def __init__(self, fs: Any) -> None:
        self.fs = fs

    def create(self, path: str, data: bytes) -> None:
        self.fs.pipe_file(path, data, mode="create")

    def read(self, path: str) -> tuple[bytes, str] | None:
        try:
            tag = self.tag(path)
            return self.fs.cat_file(path), tag
        except FileNotFoundError:
            return None

    def tag(self, path: str) -> str:
        return str(self.fs.info(path, refresh=True)["ETag"])

    def duplicate(self, source: str, target: str, *, checksum: bool) -> str | None:
        """A server-side copy; S3 computes the copy's SHA-256 when asked (one request)."""
        if not checksum:
            self.fs.copy(source, target)
            return None
        bucket, key, _ = self.fs.split_path(target)
        source_bucket, source_key, _ = self.fs.split_path(source)
        response = self.fs.call_s3(
            "copy_object",
            Bucket=bucket,
            Key=key,
            CopySource={"Bucket": source_bucket, "Key": source_key},
            ChecksumAlgorithm="SHA256",
        )
        self.fs.invalidate_cache(target)
        encoded = response.get("CopyObjectResult", {}).get("ChecksumSHA256")
        if not encoded or "-" in encoded:  # none, or a composite of parts: not the file's digest
            return None
        return base64.b64decode(encoded).hex()

    def swap(self, path: str, data: bytes, tag: str | None) -> None:
        try:
            if tag is None:
                self.fs.pipe_file(path, data, mode="create")
            else:
                self.fs.pipe_file(path, data, IfMatch=tag)
        except FileExistsError as error:
            raise Conflict from error
        except OSError as error:
            if "pre-condition" in str(error) or "PreconditionFailed" in str(error):
                raise Conflict from error
            raise


class _LocalWrites:
    """Local disk: ``os.link`` of a complete temporary file to create once; ``flock`` + replace.

    ``os.link`` fails if the name exists, so a document is created exactly once. A crash never
    leaves a half-written document under its final name, and the lock dies with its process,
    so a killed publisher never leaves the pointer locked.
    """

    def __init__(self, fs: Any) -> None:
        self.fs = fs

    def create(self, path: str, data: bytes) -> None:
        temporary = self._write_temporary(path, data)
        try:
            os.link(temporary, path)
        finally:
            os.remove(temporary)

    def read(self, path: str) -> tuple[bytes, str] | None:
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            return None
        return data, _digest(data)

    def tag(self, path: str) -> str:
        """Inode, modification time and size: a pointer move replaces the file, so all change."""
        stat = os.stat(path)
        return f"{stat.st_ino}-{stat.st_mtime_ns}-{stat.st_size}"

    def swap(self, path: str, data: bytes, tag: str | None) -> None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            current = self.read(path)
            if (current[1] if current else None) != tag:
                raise Conflict
            os.replace(self._write_temporary(path, data), path)

    def duplicate(self, source: str, target: str, *, checksum: bool) -> str | None:
        """A hard link: instant, and the staged file stays for a retried publish."""
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.remove(target)  # left by an earlier, interrupted attempt
        try:
            os.link(source, target)
        except OSError:  # another filesystem, or links not supported
            shutil.copyfile(source, target)
        return None

    @staticmethod
    def _write_temporary(path: str, data: bytes) -> str:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        temporary = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        return temporary


class _MemoryWrites:
    """fsspec's in-memory filesystem (tests): one process, so a lock is enough."""

    _lock = threading.Lock()

    def __init__(self, fs: Any) -> None:
        self.fs = fs

    def create(self, path: str, data: bytes) -> None:
        with self._lock:
            if self.fs.exists(path):
                raise FileExistsError(path)
            self.fs.pipe_file(path, data)

    def read(self, path: str) -> tuple[bytes, str] | None:
        with self._lock:
            if not self.fs.exists(path):
                return None
            data: bytes = self.fs.cat_file(path)
            return data, _digest(data)

    def tag(self, path: str) -> str:
        return _digest(self.fs.cat_file(path))

    def duplicate(self, source: str, target: str, *, checksum: bool) -> str | None:
        self.fs.copy(source, target)
        return None

    def swap(self, path: str, data: bytes, tag: str | None) -> None:
        with self._lock:
            exists = self.fs.exists(path)
            current = hashlib.sha256(self.fs.cat_file(path)).hexdigest() if exists else None
            if current != tag:
                raise Conflict
            self.fs.pipe_file(path, data)


_BACKENDS: dict[str, Callable[[Any], ConditionalWrites]] = {
    "s3": _S3Writes,
    "s3a": _S3Writes,
    "file": _LocalWrites,
    "local": _LocalWrites,
    "memory": _MemoryWrites,
}


class _ReadOnly:
    """A backend without conditional writes can be read (served) but not published to."""

    def __init__(self, fs: Any) -> None:
        self.fs = fs
        self.protocol = fs.protocol

    def _refuse(self, *args: Any) -> Any:
        raise StoreUnavailableError(
            f"publishing needs conditional writes, which this release supports on "
            f"{', '.join(sorted(_BACKENDS))}; {self.protocol} can only be read"
        )

    create = read = swap = _refuse

    def tag(self, path: str) -> str:
        info = self.fs.info(path)
        return str(info.get("ETag") or f"{info.get('mtime')}:{info['size']}")

    def duplicate(self, source: str, target: str, *, checksum: bool) -> str | None:
        self.fs.copy(source, target)
        return None


def conditional_writes(fs: Any) -> ConditionalWrites:
    """The conditional writes of ``fs``'s backend; read-only when it has none."""
    for protocol in protocols(fs):
        if protocol in _BACKENDS:
            return _BACKENDS[protocol](fs)
    return _ReadOnly(fs)
