"""Validated definitions kept between parses, so an unchanged file is not validated again.

Airflow parses the DAGs folder every few seconds, and every task start parses it once more;
nearly every time, nothing changed. Reading YAML and validating it is most of what the loader
costs over a hand-written DAG file, so each valid definition is kept, as the JSON of its spec,
in a folder the deployment chooses (``parse_cache``), one file per definition path.

An entry is used only when everything that went into it is the same: the file's bytes, its
path, the import allow-list, the package's definition code, and the value of every environment
variable validation looked up (found or not), recorded as it read them. Anything else is a
miss, and the file is validated as usual.

Whoever can write to the cache folder must not be able to change what a DAG runs, so an entry
is signed (HMAC-SHA256 over its bytes, on its first line) with a key the cache folder does not
hold: the deployment's ``parse_cache_key``, or a random key kept beside the folder
(``<folder>.key``, readable by its owner only, never read through a symbolic link: a link would
let whoever placed it choose the key, or point the cache at another secret of the user's). An
entry whose signature does not match is refused and replaced, and logged. The spec in an entry
is rebuilt by pydantic-core (types and shape checked again) without running the rules it already
passed for exactly these inputs (:mod:`model_steps.definition.trusted`): the signature is what
vouches for them. Environment values are stored as keyed hashes, never in
clear.

Concurrent DAG processors are safe: an entry is written to a temporary file and renamed over
the old one, so a reader sees a whole entry or none.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import hmac
import json
import logging
import os
import secrets
import stat
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from model_steps.definition.schema import ModelSpec
from model_steps.definition.trusted import rebuilding
from model_steps.settings import AllowList

__all__ = ["ParseCache", "RecordingEnviron", "code_fingerprint"]

log = logging.getLogger(__name__)

FORMAT = 1
KEY_BYTES = 32
PRIVATE = 0o077
"""Permission bits no one but the owner may have on the key file."""


class RecordingEnviron(Mapping[str, str]):
    """An environment that remembers every name looked up in it, and what was found."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        self.reads: dict[str, str | None] = {}
        self.listed = False
        """Validation went through every name: what it read cannot be told, so not cached."""

    def __getitem__(self, name: str) -> str:
        value = self._environ.get(name)
        self.reads[name] = value
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        self.reads[name] = self._environ.get(name)
        return name in self._environ

    def __iter__(self) -> Iterator[str]:
        self.listed = True
        return iter(self._environ)

    def __len__(self) -> int:
        self.listed = True
        return len(self._environ)


@dataclass(frozen=True)
class ParseCache:
    """The cache folder and the key entries are signed with."""

    folder: Path
    key: bytes

    @classmethod
    def open(
        cls, folder: Path | None, key: str | None = None, *, create: bool = True
    ) -> ParseCache | None:
        """The cache in ``folder`` with ``key``, or with the key kept beside the folder.

        None when no folder is set, or (parsing goes on without a cache, and says why in the
        log) when the folder cannot be created or the key file is not private to this user.
        Without ``create`` (a task start, on a worker that may never have parsed) nothing is
        made: None unless a DAG processor's cache is already there.
        """
        if folder is None:
            return None
        key_file = folder.with_name(folder.name + ".key")
        if not create and not (folder.is_dir() and (key or os.path.lexists(key_file))):
            return None
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            secret = key.encode() if key else _key_file(key_file)
        except OSError as error:
            log.warning("the parse cache in %s is off: %s", folder, error)
            return None
        return cls(folder, secret)

    def recorder(self, environ: Mapping[str, str]) -> RecordingEnviron:
        """``environ``, recording what validation looks up in it, for :meth:`put`."""
        return RecordingEnviron(environ)

    def get(
        self, path: Path, raw: bytes, environ: Mapping[str, str], allowed: AllowList
    ) -> ModelSpec | None:
        """The spec validated from exactly these bytes at this path, if nothing else changed."""
        return self._spec(path, environ, "key", self._entry_key(path, raw, allowed))

    def last_good(
        self, path: Path, environ: Mapping[str, str], allowed: AllowList
    ) -> ModelSpec | None:
        """The spec last validated at this path, whatever the file holds now.

        What a file that no longer validates defined before: the same package code, allow-list
        and environment values validated it, only the file's bytes differ. The DAG loader keeps
        a model running on it while its file is broken (see ``docs/how-to/versions.md``).
        """
        return self._spec(path, environ, "context", self._context_key(path, allowed))

    def _spec(
        self, path: Path, environ: Mapping[str, str], field: str, expected: str
    ) -> ModelSpec | None:
        """The spec of the entry for ``path`` when its ``field`` and environment reads match."""
        entry_file = self._entry_file(path)
        try:
            mac, _, body = _read_file(entry_file).partition(b"\n")
            if not hmac.compare_digest(mac, self._sign(body)):
                log.warning("refusing a parse-cache entry that is not ours: %s", entry_file)
                return None
            entry = json.loads(body)
            if entry["format"] != FORMAT or entry.get(field) != expected:
                return None
            if any(
                entry_value != self.hide(environ.get(name))
                for name, entry_value in entry["reads"].items()
            ):
                return None
            with rebuilding():  # validated from these very inputs: types again, rules not
                return ModelSpec.model_validate_json(entry["spec"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError, ValidationError) as error:
            log.warning("ignoring unreadable parse-cache entry %s: %s", entry_file, error)
            return None

    def put(
        self,
        path: Path,
        raw: bytes,
        reads: RecordingEnviron,
        allowed: AllowList,
        spec: ModelSpec,
    ) -> None:
        """Keep ``spec``, validated from ``raw``, with what its validation read."""
        if reads.listed:
            return
        entry: dict[str, Any] = {
            "format": FORMAT,
            "path": str(path),
            "key": self._entry_key(path, raw, allowed),
            "context": self._context_key(path, allowed),
            "reads": {name: self.hide(value) for name, value in sorted(reads.reads.items())},
            "spec": spec.model_dump_json(by_alias=True),
        }
        body = json.dumps(entry).encode()
        try:
            _write_atomically(self._entry_file(path), self._sign(body) + b"\n" + body)
        except OSError as error:
            log.warning("cannot write the parse cache in %s: %s", self.folder, error)

    def read_signed(self, name: str) -> bytes | None:
        """The body of the signed document ``name`` in the cache folder; None if absent or forged.

        For other records kept beside the entries (the folder index), under the same key.
        """
        try:
            mac, _, body = _read_file(self.folder / name).partition(b"\n")
        except FileNotFoundError:
            return None
        except OSError as error:
            log.warning("ignoring unreadable parse-cache file %s: %s", self.folder / name, error)
            return None
        if not hmac.compare_digest(mac, self._sign(body)):
            log.warning("refusing a parse-cache file that is not ours: %s", self.folder / name)
            return None
        return body

    def write_signed(self, name: str, body: bytes) -> None:
        """Keep ``body`` as the signed document ``name``, whole or not at all."""
        try:
            _write_atomically(self.folder / name, self._sign(body) + b"\n" + body)
        except OSError as error:
            log.warning("cannot write the parse cache in %s: %s", self.folder, error)

    def _entry_file(self, path: Path) -> Path:
        name = hashlib.sha256(str(path.absolute()).encode()).hexdigest()[:32]
        return self.folder / f"{name}.json"

    def _entry_key(self, path: Path, raw: bytes, allowed: AllowList) -> str:
        digest = _context_digest(path, allowed)
        digest.update(raw)
        return digest.hexdigest()

    def _context_key(self, path: Path, allowed: AllowList) -> str:
        """What an entry was validated with besides the file's bytes and the environment."""
        return _context_digest(path, allowed).hexdigest()

    def hide(self, value: str | None) -> str | None:
        """An environment value as a keyed hash: comparable, never readable."""
        if value is None:
            return None
        return hmac.new(self.key, value.encode(), hashlib.sha256).hexdigest()

    def _sign(self, body: bytes) -> bytes:
        """The entry's signature: its first line, over every byte after it."""
        return hmac.new(self.key, body, hashlib.sha256).hexdigest().encode()


def _context_digest(path: Path, allowed: AllowList) -> hashlib._Hash:
    """A digest of the package's code, the path and the allow-list, to add a file's bytes to."""
    digest = hashlib.sha256()
    for part in (code_fingerprint(), str(path.absolute()), repr(allowed)):
        digest.update(part.encode() + b"\0")
    return digest


def _key_file(path: Path) -> bytes:
    """The cache's key, created on first use (whole or not at all), and refused if not private."""
    if not os.path.lexists(path):
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".key-", delete=False) as temp:
            temp.write(secrets.token_hex(KEY_BYTES).encode())  # mode 0600, as mkstemp makes it
        made = Path(temp.name)
        try:
            path.hardlink_to(made)  # fails if another process made it first: theirs is used
        except FileExistsError:
            pass
        finally:
            made.unlink()
    key = _read_file(path, private=True).strip()
    if len(key) < KEY_BYTES:
        raise PermissionError(f"{path} holds no usable key: remove it to have a new one made")
    return key


def _read_file(path: Path, *, private: bool = False) -> bytes:
    """A regular file's bytes, never through a symbolic link; ``private``: ours, mode 0600.

    Checked on the opened file, so a link or a file swapped in between check and read is
    refused too; a FIFO or a device cannot hold the read up.

    Raises:
        PermissionError: a link, not a regular file, or (``private``) not private to this user.
        OSError: it cannot be read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise PermissionError(
                f"{path} is a symbolic link: it must be a file of its own"
            ) from error
        raise
    with os.fdopen(fd, "rb") as file:
        status = os.fstat(file.fileno())
        if not stat.S_ISREG(status.st_mode):
            raise PermissionError(f"{path} is not a regular file")
        if private and (status.st_uid != os.geteuid() or status.st_mode & PRIVATE):
            raise PermissionError(
                f"{path} must belong to this user and be readable by no one else (chmod 600)"
            )
        return file.read()


def _write_atomically(target: Path, data: bytes) -> None:
    with tempfile.NamedTemporaryFile(dir=target.parent, prefix=".entry-", delete=False) as temp:
        temp.write(data)
    written = Path(temp.name)
    try:
        written.replace(target)
    except OSError:
        written.unlink()
        raise


@functools.cache
def code_fingerprint() -> str:
    """What the validating code is: its files' sizes and times, and the validator's version.

    An upgrade or an edited schema then misses every entry, with no version bump to forget.
    """
    import pydantic_core

    package = Path(__file__).resolve().parent
    files = sorted([*package.glob("*.py"), package.parent / "settings.py"])
    parts = [f"{FORMAT}", sys.version, pydantic_core.__version__]
    for file in files:
        status = file.stat()
        parts.append(f"{file.name}:{status.st_size}:{status.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()
