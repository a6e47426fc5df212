"""The asset store: layout, atomic publish, the current pointer, rollback and retention.

Layout under ``<assets.root>/<assets.directory>/``::

    owner.json                      the model the store belongs to, claimed at first publish
    current.json                    the pointer, moved last
    versions/<N>/claim.json         N taken exactly once (exclusive create); kept for good
    versions/<N>/manifest.json      written once every asset is complete
    versions/<N>/<step>/<file>      assets (or under a step's own assets_root, laid out alike)
    versions/<N>/MODEL_CARD.md
    runs/<run>/...                  one run's scratch; never read by handlers
    inferences/<run>.json           which version each infer run used

The promises: a reader never sees a partial version (the pointer moves after the assets and the
manifest); numbers only grow and two publishes never share one (claims are exclusive creates);
a failed run leaves the pointer alone (it never reached the last write); every promoted asset's
sha256 is checked before the manifest names it; a claim abandoned by a killed publish is
reclaimed (its files removed, its number never reused) once it is older than any try of the
publish could still run; rollback only moves the pointer; retention never deletes the current or
a pinned version; a store opened for a model (``owner``) never publishes, rolls back, prunes or
reads a manifest for another one; an asset a manifest names is read or deleted only inside the
model's own folders (its store, and the steps' own ``assets_root`` folders it was opened with),
so a manifest cannot point a loader or a prune at any other file. The store uses a handful of
fsspec calls on the filesystem it is given, plus one conditional write per backend, and knows
nothing of Airflow.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from model_steps.errors import (
    AssetLocationError,
    ChecksumMismatchError,
    CorruptDocumentError,
    DecisionConflictError,
    NotServableError,
    PublishConflictError,
    StoreOwnedError,
    StoreUnavailableError,
)
from model_steps.store.backends import (
    Conflict,
    conditional_writes,
    filesystem,
    is_local,
    protocols,
    takes_refresh,
)
from model_steps.store.checksums import copy_digest, file_digest, handle_digest, verify
from model_steps.store.manifest import (
    AssetRecord,
    Decision,
    EvaluationRecord,
    InferenceRecord,
    Manifest,
    Pointer,
    VersionStatus,
    version_status,
)
from model_steps.store.runs import RunScratch, scratch_runs

__all__ = [
    "CLAIM_GRACE_SECONDS",
    "ModelStore",
    "PointerRead",
    "StagedAsset",
    "open_store",
    "utc_now",
]

POINTER = "current.json"
MANIFEST = "manifest.json"
CARD = "MODEL_CARD.md"
CLAIM = "claim.json"
DECISION = "decision.json"
EVALUATIONS = "evaluations"
OWNER = "owner.json"
INFERENCES = "inferences"
CLAIM_GRACE_SECONDS = 3600
"""How long a claim without a manifest is left to its publisher before it counts as abandoned:
far beyond a publish (seconds), its retry delay and a worker's heartbeat timeout (minutes)."""
S3_COPY_LIMIT = 5 * 2**30
"""Largest object S3 copies in one request (and so can checksum while copying)."""
_CAS_ATTEMPTS = 20


def utc_now() -> str:
    """A timestamp for documents: ISO 8601, UTC, to the microsecond."""
    return datetime.now(UTC).isoformat()


def open_store(
    url: str,
    storage_options: Mapping[str, Any] | None = None,
    *,
    owner: str | None = None,
    asset_roots: Iterable[str] = (),
) -> ModelStore:
    """The store of one model at ``url`` (``<assets.root>/<assets.directory>``).

    With ``owner`` (the model's name) the store refuses to act for any other model.
    ``asset_roots`` are the model's other folders (``<step assets_root>/<assets.directory>``):
    the only places outside ``url`` where its manifests' assets may be read or deleted.
    """
    options = dict(storage_options or {})
    fs, path = filesystem(url, options)
    return ModelStore(fs, path, options, owner=owner, asset_roots=asset_roots)


@dataclass(frozen=True)
class StagedAsset:
    """An asset written to the run's scratch, waiting for publish to give it a version."""

    step_id: str
    url: str
    size: int
    sha256: str
    serializer: str
    identifier: str
    root: str
    """The model folder the asset is published under (the step's own assets_root, if any)."""


@dataclass(frozen=True)
class PointerRead:
    """The pointer with the tag it was read under, and what reading it cost."""

    pointer: Pointer | None
    tag: str | None
    """The pointer's :meth:`ModelStore.pointer_tag` taken just before its body was read, so a
    change in between shows as a new tag at the next poll, never as a missed version."""
    size: int
    """Bytes of the pointer document read (0 when nothing is published)."""
    requests: int
    """Storage requests the read made."""


class ModelStore:
    """One model's folder in an fsspec filesystem."""

    def __init__(
        self,
        fs: Any,
        root: str,
        storage_options: Mapping[str, Any] | None = None,
        *,
        owner: str | None = None,
        asset_roots: Iterable[str] = (),
    ):
        self.fs = fs
        self.root = root.rstrip("/")
        self.storage_options = dict(storage_options or {})
        self.owner = owner
        """The model this store is opened for; None for a tool that reads any store."""
        self.definition: str | None = None
        """The file defining the model, relative to the DAGs folder: a first publish records
        it in the owner record (:mod:`model_steps.runtime.ownership`)."""
        self._conditional = conditional_writes(fs)
        self.asset_roots = tuple(dict.fromkeys([self.url(), *map(self._full_url, asset_roots)]))
        """Every model folder (full URLs) whose ``versions/`` may hold this model's assets."""

    # -- paths -------------------------------------------------------------------------------

    def path(self, *parts: str) -> str:
        """A path inside the model folder, in the filesystem's own form."""
        return "/".join([self.root, *parts])

    def url(self, *parts: str) -> str:
        """A full URL inside the model folder, as manifests record it."""
        return str(self.fs.unstrip_protocol(self.path(*parts)))

    def scratch_url(self, run_id: str, *parts: str) -> str:
        """Where one run keeps data and staged assets until it publishes."""
        return self.url("runs", _safe(run_id), *parts)

    # -- reading -----------------------------------------------------------------------------

    def pointer(self) -> Pointer | None:
        """The published pointer, ``None`` when nothing was ever published.

        Raises:
            StoreUnavailableError: the store could not be read (not the same as "missing").
            CorruptDocumentError: ``current.json`` is not a valid pointer.
        """
        data = self._read(self.path(POINTER))
        return None if data is None else _parse(Pointer, data, self.url(POINTER))

    def pointer_tag(self) -> str | None:
        """A cheap fingerprint of the pointer; ``None`` when nothing is published.

        On S3 an ETag (one HEAD request); on local disk the file's identity from one ``stat``
        (every pointer move replaces the file); elsewhere a digest of the small file.
        """
        try:
            return self._conditional.tag(self.path(POINTER))
        except FileNotFoundError:
            return None
        except Exception as error:
            raise StoreUnavailableError(f"cannot reach {self.url(POINTER)}: {error}") from error

    def read_pointer(self, since: str | None = None) -> PointerRead | None:
        """The pointer with its tag; ``None`` when its tag is still ``since`` (unchanged).

        One metadata request when unchanged, a second for the body when the pointer moved:
        what a poller needs to follow the pointer cheaply.

        Raises:
            StoreUnavailableError: the store could not be read (not the same as "missing").
            CorruptDocumentError: ``current.json`` is not a valid pointer.
        """
        tag = self.pointer_tag()
        if since is not None and tag == since:
            return None
        data = None if tag is None else self._read(self.path(POINTER))
        if data is None:
            return PointerRead(None, None, 0, 1 if tag is None else 2)
        return PointerRead(_parse(Pointer, data, self.url(POINTER)), tag, len(data), 2)

    def manifest(self, version: int) -> Manifest:
        """The manifest of a complete version."""
        location = self.path("versions", str(version), MANIFEST)
        data = self._read(location)
        if data is None:
            raise CorruptDocumentError(f"version {version} has no manifest at {self.url()}")
        manifest = _parse(Manifest, data, self.fs.unstrip_protocol(location))
        if self.owner is not None and manifest.model != self.owner:
            raise StoreOwnedError(
                f"version {version} in {self.url()} was published by model "
                f"{manifest.model!r}, not {self.owner!r}: it is never loaded for {self.owner!r}",
                owner=manifest.model,
                model=self.owner,
            )
        return manifest

    def versions(self) -> list[int]:
        """Complete versions (with a manifest), oldest first."""
        found = _glob(self.fs, self.path("versions", "*", MANIFEST))
        return sorted(int(n) for n in _version_numbers(found))

    def find(self, pattern: str) -> list[str]:
        """URLs matching the glob ``pattern`` (listed fresh, never from a listing cache)."""
        fs, path = self._fs_for(pattern)
        return [str(fs.unstrip_protocol(found)) for found in _glob(fs, path)]

    def inference(self, run_id: str) -> InferenceRecord | None:
        """What an infer run recorded (the version it used), or None if it recorded nothing."""
        url = self.url(INFERENCES, f"{_safe(run_id)}.json")
        data = self._read(self.path(INFERENCES, f"{_safe(run_id)}.json"))
        return None if data is None else _parse(InferenceRecord, data, url)

    @contextlib.contextmanager
    def open_asset(self, record: AssetRecord) -> Iterator[IO[bytes]]:
        """An asset as a local binary file, verified against the manifest before it is read.

        Loaders stream from the file rather than holding the asset's bytes beside the object
        they build: a serving process already holds two versions during a reload, and a third
        copy as raw bytes would not fit. A local asset is hashed through the very handle
        handed out, so what was verified is what is read; a remote one is downloaded to a
        temporary file first, and only a verified download is opened.
        """
        fs, path = self._asset_location(record.url)
        if not is_local(fs):
            with tempfile.TemporaryDirectory(prefix="model-steps-asset-") as folder:
                local = os.path.join(folder, "asset")
                self.download_asset(record, local)
                with open(local, "rb") as handle:
                    yield handle
            return
        try:
            handle = open(path, "rb")  # noqa: SIM115 (closed below, after the caller's reads)
        except OSError as error:
            raise StoreUnavailableError(f"cannot read {record.url}: {error}") from error
        with handle:
            verify(record, *handle_digest(handle))
            handle.seek(0)
            yield handle

    def verify_asset(self, record: AssetRecord) -> None:
        """Check an asset against its manifest, streaming it once and keeping nothing.

        For a reader that must know a version is whole before it gives something up: a
        handler in unload-first mode checks every asset before it drops the version it serves.
        """
        fs, path = self._asset_location(record.url)
        try:
            with fs.open(path, "rb") as handle:
                size, digest = copy_digest(handle, None)
        except Exception as error:
            raise StoreUnavailableError(f"cannot read {record.url}: {error}") from error
        verify(record, size, digest)

    def download_asset(self, record: AssetRecord, local_path: str) -> None:
        """Copy a large asset to a local file; only a verified file appears at ``local_path``.

        The bytes are hashed where they are local: a local source in parallel with the copy,
        a remote one once it has landed in ``<local_path>.partial``.
        """
        fs, path = self._asset_location(record.url)
        partial = f"{local_path}.partial"
        try:
            with ThreadPoolExecutor(max_workers=1) as pool:
                early = pool.submit(file_digest, path) if is_local(fs) else None
                try:
                    fs.get_file(path, partial)
                except Exception as error:
                    raise StoreUnavailableError(f"cannot read {record.url}: {error}") from error
                size, digest = early.result() if early else file_digest(partial)
            verify(record, min(size, os.path.getsize(partial)), digest)
            os.replace(partial, local_path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(partial)

    # -- writing a run's scratch -------------------------------------------------------------

    def write_bytes(self, url: str, data: bytes) -> tuple[int, str]:
        """Write ``data`` at ``url``; returns its size and sha256 for the manifest."""
        fs, path = self._fs_for(url)
        try:
            fs.pipe_file(path, data)
        except Exception as error:
            raise StoreUnavailableError(f"cannot write {url}: {error}") from error
        return len(data), hashlib.sha256(data).hexdigest()

    def upload_file(self, local_path: str, url: str) -> tuple[int, str]:
        """Copy a large local file to ``url``; returns its size and sha256.

        fsspec's own transfer runs (multipart on S3, a kernel copy on disk) while another
        thread hashes the file, so the checksum costs little beyond the copy itself.
        """
        fs, path = self._fs_for(url)
        with ThreadPoolExecutor(max_workers=1) as pool:
            digest = pool.submit(file_digest, local_path)
            try:
                fs.put_file(local_path, path)
            except Exception as error:
                raise StoreUnavailableError(f"cannot write {url}: {error}") from error
            return digest.result()

    def read_bytes(self, url: str) -> bytes:
        """Scratch data written by an earlier task of the same run."""
        fs, path = self._fs_for(url)
        try:
            data: bytes = fs.cat_file(path)
        except FileNotFoundError:
            raise
        except Exception as error:
            raise StoreUnavailableError(f"cannot read {url}: {error}") from error
        return data

    def record_inference(self, record: InferenceRecord) -> None:
        """Keep which version an infer run used and where its output went."""
        path = self.path(INFERENCES, f"{_safe(record.run_id)}.json")
        try:
            self.fs.pipe_file(path, record.model_dump_json(indent=2).encode())
        except Exception as error:
            raise StoreUnavailableError(f"cannot write {self.url(INFERENCES)}: {error}") from error

    def clean_run(self, run_id: str) -> None:
        """Remove a finished run's scratch."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self.path("runs", _safe(run_id)), recursive=True)

    # -- publishing --------------------------------------------------------------------------

    def publish(
        self,
        staged: Sequence[StagedAsset],
        manifest_for: Callable[[int, Mapping[str, AssetRecord]], Manifest],
        card_for: Callable[[Manifest], str],
        claim_grace: float = CLAIM_GRACE_SECONDS,
    ) -> Pointer:
        """Publish staged assets as the next version; the pointer moves last, forward only.

        Returns this publish's pointer; if a newer version was published meanwhile, the
        current pointer stays on it and this version remains available for rollback. A crash
        anywhere before the pointer write leaves ``current.json`` as it was; the claimed
        number then stays unused (numbers only grow) and a publish at least ``claim_grace``
        seconds later reclaims its files.
        """
        manifest = self.stage(staged, manifest_for, card_for)
        pointer = self.go_live(manifest.version, manifest.published_at)
        self.reclaim(claim_grace)
        return pointer

    def stage(
        self,
        staged: Sequence[StagedAsset],
        manifest_for: Callable[[int, Mapping[str, AssetRecord]], Manifest],
        card_for: Callable[[Manifest], str],
    ) -> Manifest:
        """Make staged assets a complete version, with its card and manifest, not yet live.

        The version's number is claimed, its assets are copied and checked, and the manifest
        is written last: from then on it can be read, rolled back to or approved, but handlers
        only serve it once :meth:`go_live` moves the pointer.

        Raises:
            StoreOwnedError: the store belongs to another model.
        """
        self.check_owner(claim=True)
        version, token = self._claim()
        records = {asset.step_id: self._promote(asset, version) for asset in staged}
        manifest = manifest_for(version, records)
        self.fs.pipe_file(self.path("versions", str(version), CARD), card_for(manifest).encode())
        manifest_path = self.path("versions", str(version), MANIFEST)
        self._check_claim(version, token)  # a stale publisher whose claim was reclaimed stops
        self._conditional.create(manifest_path, manifest.model_dump_json(indent=2).encode())
        return manifest

    def go_live(self, version: int, published_at: str) -> Pointer:
        """Point handlers at a complete version, forward only: a newer live version stays."""
        pointer = Pointer(
            version=version,
            manifest=self.url("versions", str(version), MANIFEST),
            published_at=published_at,
        )
        self._move_pointer(pointer, forward_only=True)
        return pointer

    def rollback(self, version: int) -> Pointer:
        """Point handlers back at an older complete version; nothing is rewritten.

        Raises:
            NotServableError: the gate refused the version, or it waits for or was denied a
                person's approval: it never went live and is not fit to.
        """
        self.check_owner()
        manifest = self.manifest(version)
        current = self.pointer()
        status = version_status(manifest, self.decision(version), None)
        if status != "published":
            raise NotServableError(
                f"version {version} is {status}, not published: {_status_reason(manifest, status)}"
            )
        pointer = Pointer(
            version=version,
            manifest=self.url("versions", str(version), MANIFEST),
            published_at=manifest.published_at,
            rolled_back_from=current.version if current else None,
        )
        return self._move_pointer(pointer, forward_only=False)

    def prune(
        self, keep: int, pinned: Iterable[int] = (), claim_grace: float = CLAIM_GRACE_SECONDS
    ) -> list[int]:
        """Delete all but the newest ``keep`` versions, never the current or a pinned one.

        Claims that never got a manifest (a killed publish) are reclaimed after
        ``claim_grace`` seconds, and the scratch of runs that never published (a failed
        run, kept meanwhile so Airflow can retry it) is removed once untouched for a day, so a
        publish or a run still in flight is never disturbed.
        """
        if keep < 1:
            raise ValueError("keep must be at least 1: the newest version is always kept")
        self.check_owner()
        current = self.pointer()
        complete = self.versions()
        protected = set(complete[-keep:]) | set(pinned) | ({current.version} if current else set())
        doomed = [v for v in complete if v not in protected]
        for version in doomed:
            self._delete_version(version)
        self.reclaim(claim_grace)
        for run in self.runs():
            if run.stale:
                self.fs.rm(self.path("runs", run.key), recursive=True)
        return doomed

    def runs(self) -> list[RunScratch]:
        """The runs whose scratch is still in the store (failed ones, or still running)."""
        return scratch_runs(self.fs, self.path("runs"))

    # -- people's decisions and evaluations ---------------------------------------------------

    def decision(self, version: int) -> Decision | None:
        """A person's decision on a candidate version, if one was recorded."""
        location = self.path("versions", str(version), DECISION)
        data = self._read(location)
        return None if data is None else _parse(Decision, data, self.fs.unstrip_protocol(location))

    def card(self, version: int) -> str:
        """A version's ``MODEL_CARD.md``."""
        self.manifest(version)  # only complete versions have a card to show
        data = self._read(self.path("versions", str(version), CARD))
        if data is None:
            raise CorruptDocumentError(f"version {version} has no model card at {self.url()}")
        return data.decode()

    def status(self, version: int, live: int | None) -> VersionStatus:
        """Where a complete version stands (live, published, pending, refused, rejected)."""
        return version_status(self.manifest(version), self.decision(version), live)

    def approve(self, version: int, by: str, reason: str | None = None) -> Pointer:
        """Record a person's approval of a waiting candidate, then make it the live version.

        The decision is written once, before the pointer moves: a crash in between leaves an
        approved version that a rollback can serve. If a newer version went live meanwhile,
        the pointer stays on it and this one stays available for rollback.

        Raises:
            NotServableError: the version is not waiting for approval.
            DecisionConflictError: someone decided on it first.
        """
        decision = self._decide(version, "approved", by, reason)
        return self.go_live(version, decision.at)

    def reject(self, version: int, by: str, reason: str) -> Decision:
        """Record that a person turned a waiting candidate down, and why; it is never served.

        Raises:
            NotServableError: the version is not waiting for approval.
            DecisionConflictError: someone decided on it first.
        """
        return self._decide(version, "rejected", by, reason)

    def write_evaluation(self, record: EvaluationRecord) -> str:
        """Keep an evaluation beside the version it scored; a retried run replaces its own."""
        name = f"{_safe(record.run_id)}.json"
        location = self.path("versions", str(record.version), EVALUATIONS, name)
        try:
            self.fs.pipe_file(location, record.model_dump_json(indent=2).encode())
        except Exception as error:
            raise StoreUnavailableError(
                f"cannot write {self.fs.unstrip_protocol(location)}: {error}"
            ) from error
        return str(self.fs.unstrip_protocol(location))

    def evaluations(self, version: int) -> list[EvaluationRecord]:
        """A version's evaluations, oldest first."""
        pattern = self.path("versions", str(version), EVALUATIONS, "*.json")
        try:
            found = self.fs.glob(pattern, **({"refresh": True} if takes_refresh(self.fs) else {}))
        except FileNotFoundError:
            return []
        except Exception as error:
            raise StoreUnavailableError(f"cannot list {pattern}: {error}") from error
        records = []
        for path in found:
            data = self._read(path)
            if data is not None:
                records.append(_parse(EvaluationRecord, data, self.fs.unstrip_protocol(path)))
        return sorted(records, key=lambda r: r.start_date_time)

    def _decide(
        self, version: int, action: Literal["approved", "rejected"], by: str, reason: str | None
    ) -> Decision:
        """Write a person's decision on a waiting candidate, once."""
        self.check_owner()
        manifest = self.manifest(version)
        status = version_status(manifest, self.decision(version), None)
        if status != "pending":
            raise NotServableError(
                f"version {version} is {status}, not waiting for approval: "
                f"{_status_reason(manifest, status)}"
            )
        decision = Decision(action=action, by=by, at=utc_now(), reason=reason)
        location = self.path("versions", str(version), DECISION)
        try:
            self._conditional.create(location, decision.model_dump_json(indent=2).encode())
        except FileExistsError as error:
            earlier = self.decision(version)
            who = f" by {earlier.by} at {earlier.at}" if earlier else ""
            done = earlier.action if earlier else "decided"
            raise DecisionConflictError(f"version {version} was already {done}{who}") from error
        return decision

    def check_owner(self, *, claim: bool = False) -> None:
        """Refuse to act for a model other than the one the store belongs to.

        With ``claim`` (publishing), a store without an owner record becomes this model's, in
        one exclusive create, so two models racing for a new store cannot both win. A store
        published before ownership was recorded keeps working until its next publish claims it.

        Raises:
            StoreOwnedError: ``owner.json`` names another model.
        """
        if self.owner is None:
            return
        location = self.path(OWNER)
        if claim:
            record = {"model": self.owner, "definition": self.definition, "claimed_at": utc_now()}
            body = json.dumps({k: v for k, v in record.items() if v is not None}).encode()
            try:
                self._conditional.create(location, body)
                return
            except FileExistsError:
                pass
        data = self._read(location)
        owner = _owner_of(data, self.url(OWNER)) if data is not None else self.owner
        if owner != self.owner:
            raise StoreOwnedError(
                f"{self.url()} belongs to model {owner!r} ({self.url(OWNER)}): model "
                f"{self.owner!r} may not publish, roll back or prune there; give it its own "
                "assets.directory",
                owner=owner,
                model=self.owner,
            )

    def reclaim(self, grace: float = CLAIM_GRACE_SECONDS) -> list[int]:
        """Free the files of claims older than ``grace`` seconds that never got a manifest.

        Their files are removed from every folder of the model (the steps' own ``assets_root``
        folders too), as a publish killed while copying may have left some in each. The claim
        itself stays, marked reclaimed, so its number is never given out again and
        its publisher, if it still runs, finds its claim gone before it writes a manifest.
        Returns the versions reclaimed now.
        """
        self.check_owner()
        reclaimed = []
        for version in self._abandoned_claims(set(self.versions()), grace):
            claim = self.path("versions", str(version), CLAIM)
            body = {"reclaimed_at": utc_now(), "by_pid": os.getpid()}
            self.fs.pipe_file(claim, json.dumps(body).encode())
            for root in self.asset_roots:
                self._clear_version(root, version, claim if root == self.url() else None)
            reclaimed.append(version)
        return reclaimed

    # -- internals ---------------------------------------------------------------------------

    def _clear_version(self, root: str, version: int, keep: str | None) -> None:
        """Remove every file of ``version`` under one model folder, except ``keep`` (the claim)."""
        fs, folder = self._fs_for(f"{root}/versions/{version}")
        fs.invalidate_cache(folder)  # files another process wrote must be seen
        if keep is None:  # another folder of the model: nothing of the claim lives there
            with contextlib.suppress(FileNotFoundError):
                fs.rm(folder, recursive=True)
            return
        for path in fs.find(folder):
            if path != keep:
                with contextlib.suppress(FileNotFoundError):
                    fs.rm_file(path)

    def _read(self, path: str) -> bytes | None:
        try:
            data: bytes = self.fs.cat_file(path)
        except FileNotFoundError:
            return None
        except Exception as error:
            raise StoreUnavailableError(
                f"cannot read {self.fs.unstrip_protocol(path)}: {error}"
            ) from error
        return data

    def _fs_for(self, url: str) -> tuple[Any, str]:
        """The filesystem and path for a URL, which may lie under another root (assets_root)."""
        protocol = url.split("://", 1)[0] if "://" in url else "file"
        if protocol in protocols(self.fs):
            return self.fs, self.fs._strip_protocol(url)
        return filesystem(url, self.storage_options)

    def _claim(self) -> tuple[int, str]:
        """Take the next version number and this claim's token; a lost race moves on."""
        existing = self._claimed()
        version = max(existing, default=0) + 1
        token = uuid.uuid4().hex
        while True:
            claim = {"claimed_at": utc_now(), "pid": os.getpid(), "token": token}
            try:
                self._conditional.create(
                    self.path("versions", str(version), CLAIM), json.dumps(claim).encode()
                )
                return version, token
            except FileExistsError:
                version += 1

    def _check_claim(self, version: int, token: str) -> None:
        """Refuse to complete a version whose claim is no longer this publish's."""
        data = self._read(self.path("versions", str(version), CLAIM))
        if data is None or json.loads(data).get("token") != token:
            raise PublishConflictError(
                f"the claim on version {version} in {self.url()} was reclaimed as abandoned "
                "while this publish ran: its version is given up (a retry publishes a new one)"
            )

    def _claimed(self) -> list[int]:
        return [int(n) for n in _version_numbers(_glob(self.fs, self.path("versions", "*", CLAIM)))]

    def _promote(self, asset: StagedAsset, version: int) -> AssetRecord:
        """Copy a staged asset to its version folder and check its bytes arrived unchanged.

        A copy, not a move: if this publish fails later, a retry finds the scratch intact. The
        copy's sha256 must be the one computed when the asset was staged, so a staged file
        changed since (same size or not) never reaches a manifest. The staged file must be
        the model's own and its target one of the model's folders, as the manifest's assets
        must be: a run's scratch records are as writable as a manifest.
        """
        root = self._full_url(asset.root)
        if root not in self.asset_roots:
            raise AssetLocationError(
                f"a staged asset of step {asset.step_id!r} would be published under {root}, "
                f"which is none of the model's folders ({', '.join(self.asset_roots)})"
            )
        target = f"{root}/versions/{version}/{asset.step_id}/{asset.identifier}"
        source_fs, source = self._asset_location(asset.url)
        target_fs, target_path = self._fs_for(target)
        record = AssetRecord(
            url=str(target_fs.unstrip_protocol(target_path)),
            size=asset.size,
            sha256=asset.sha256,
            serializer=asset.serializer,
        )
        if source_fs is target_fs:
            writes = conditional_writes(target_fs)
            digest = writes.duplicate(source, target_path, checksum=asset.size <= S3_COPY_LIMIT)
            if digest is None:  # the backend did not hash the copy: read it back
                with target_fs.open(target_path, "rb") as copied:
                    verify(record, *copy_digest(copied, None))
            elif digest != asset.sha256:
                raise ChecksumMismatchError(
                    f"{target} has sha256 {digest[:12]}… after publishing, "
                    f"{asset.sha256[:12]}… was staged: {asset.url} changed since it was staged"
                )
        else:
            with source_fs.open(source, "rb") as src, target_fs.open(target_path, "wb") as dst:
                size, digest = copy_digest(src, dst)  # bytes cross machines here: check them all
            verify(record, size, digest)
        return record

    def _move_pointer(self, pointer: Pointer, *, forward_only: bool) -> Pointer:
        """Compare-and-swap the pointer; with ``forward_only`` a newer pointer is left alone."""
        body = pointer.model_dump_json(indent=2, exclude_none=True).encode()
        for attempt in range(_CAS_ATTEMPTS):
            current = self._conditional.read(self.path(POINTER))
            if current is not None and forward_only:
                existing = _parse(Pointer, current[0], self.url(POINTER))
                if existing.version >= pointer.version:
                    return existing  # a newer publish won; ours stays available for rollback
            try:
                self._conditional.swap(self.path(POINTER), body, current[1] if current else None)
                return pointer
            except Conflict:
                time.sleep(min(0.05 * 2**attempt, 1.0))
        raise PublishConflictError(
            f"{self.url(POINTER)} kept changing during {_CAS_ATTEMPTS} attempts to move it"
        )

    def _delete_version(self, version: int) -> None:
        """Remove a version's folder and its assets in the steps' own folders.

        Every asset is checked first, so a manifest naming a file outside this version's
        folders gets nothing deleted at all.
        """
        try:
            manifest = self.manifest(version)
        except CorruptDocumentError:  # nothing can serve it; remove what is in its folder
            self.fs.rm(self.path("versions", str(version)), recursive=True)
            return
        assets = [step.asset.url for step in manifest.steps if step.asset]
        located = [self._asset_location(url, version) for url in assets]
        inside = self.url("versions", str(version)) + "/"
        for url, (fs, path) in zip(assets, located, strict=True):
            if not url.startswith(inside):
                with contextlib.suppress(FileNotFoundError):
                    fs.rm(path)
        self.fs.rm(self.path("versions", str(version)), recursive=True)

    def _asset_location(self, url: str, version: int | None = None) -> tuple[Any, str]:
        """The filesystem and path of an asset a manifest names, once it proves to be ours.

        An asset lies under ``versions/`` of one of the model's folders (of ``version``, when
        given; else also in the store's ``runs/``, where staged assets wait), written without
        ``.`` or ``..`` segments: a manifest edited to name another file, folder, bucket or
        scheme is refused before anything is read or deleted.

        Raises:
            AssetLocationError: the URL leaves the model's folders.
        """
        below = "versions/" + (f"{version}/" if version is not None else "")
        folders = [f"{root}/{below}" for root in self.asset_roots]
        if version is None:  # a candidate's staged assets are read from its run's scratch
            folders.append(self.url("runs") + "/")
        _, separator, rest = url.partition("://")
        if (
            separator
            and not {".", ".."} & set(rest.split("/"))
            and "\\" not in rest
            and any(url.startswith(folder) for folder in folders)
        ):
            return self._fs_for(url)
        raise AssetLocationError(
            f"a manifest in {self.url()} names the asset {url!r}, outside the model's own "
            f"folders ({', '.join(folders)}): it is neither read nor deleted; the manifest was "
            "edited, or written for another store"
        )

    def _full_url(self, url: str) -> str:
        """``url`` as manifests record it (a plain local folder becomes a ``file://`` URL)."""
        fs, path = self._fs_for(url)
        return str(fs.unstrip_protocol(path.rstrip("/")))

    def _abandoned_claims(self, complete: set[int], grace: float) -> Iterator[int]:
        """Claims without a manifest, older than ``grace`` and not reclaimed yet."""
        for version in sorted(set(self._claimed()) - complete):
            data = self._read(self.path("versions", str(version), CLAIM))
            claim = json.loads(data or b"{}")
            if "reclaimed_at" in claim:
                continue
            claimed = claim.get("claimed_at")
            age = (
                (datetime.now(UTC) - datetime.fromisoformat(claimed)).total_seconds()
                if claimed
                else grace
            )
            if age >= grace:
                yield version


def _status_reason(manifest: Manifest, status: VersionStatus) -> str:
    """Why a version stands where it does, in words for an error."""
    if status in ("refused", "pending") and manifest.gate is not None:
        return manifest.gate.reason
    return {
        "live": "it is the live version",
        "published": "it was published",
        "rejected": "a person rejected it",
    }.get(status, status)


def _owner_of(data: bytes, where: str) -> str:
    try:
        owner = json.loads(data)["model"]
    except (ValueError, KeyError, TypeError) as error:
        raise CorruptDocumentError(f"{where} does not name the model owning the store") from error
    if not isinstance(owner, str):
        raise CorruptDocumentError(f"{where} does not name the model owning the store")
    return owner


def _glob(fs: Any, pattern: str) -> list[str]:
    """Paths matching ``pattern``, listed fresh; missing folders are no match, not an error."""
    try:
        found: list[str] = fs.glob(pattern, **({"refresh": True} if takes_refresh(fs) else {}))
    except FileNotFoundError:
        return []
    except Exception as error:
        raise StoreUnavailableError(
            f"cannot list {fs.unstrip_protocol(pattern)}: {error}"
        ) from error
    return found


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_HASHED = re.compile(r"-[0-9a-f]{16}$")


def _safe(run_id: str) -> str:
    """A portable key or file name for a run id (which holds ':', '+', even '/'), one per id.

    Replacing characters alone would give ``manual__a/b`` and ``manual__a_b`` one folder, so a
    name that changed ends with a hash of the id as it was. An id that is already safe keeps
    its name (so folders named before are found), unless it ends like such a hash: it is hashed
    too, so no chosen run id can take another run's name.
    """
    safe = _UNSAFE.sub("_", run_id)
    if safe == run_id and not _HASHED.search(run_id):
        return run_id
    return f"{safe}-{hashlib.sha256(run_id.encode()).hexdigest()[:16]}"


def _version_numbers(paths: Iterable[str]) -> Iterator[str]:
    for path in paths:
        number = path.rstrip("/").split("/")[-2]
        if number.isdigit():
            yield number


_Document = TypeVar("_Document", bound=BaseModel)


def _parse(kind: type[_Document], data: bytes, where: str) -> _Document:
    try:
        return kind.model_validate_json(data)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(map(str, first["loc"])) or "document"
        raise CorruptDocumentError(
            f"{where} is not a valid {kind.__name__.lower()}: {field}: {first['msg']}"
        ) from error
