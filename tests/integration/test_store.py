"""The store's contract, run unchanged against local disk, fsspec's memory filesystem and S3.

Like fsspec's own abstract test suite, one class of behaviours is reused per backend: the
``backend`` fixture hands each test an empty folder on one of them. The S3 runs use the session's
moto server (``tests/s3.py``) and a fresh bucket per test. The helpers at the top are shared with
``test_store_faults.py`` and with the publisher processes it starts.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fsspec
import pytest

from model_steps.errors import (
    AssetLocationError,
    ChecksumMismatchError,
    CorruptDocumentError,
    PublishConflictError,
    StoreOwnedError,
)
from model_steps.store.manifest import AssetRecord, Manifest, Pointer, StepRecord
from model_steps.store.model_store import ModelStore, StagedAsset, open_store, utc_now
from tests.assets import asset_bytes

MODEL = "churn"
IDENTIFIER = "model.bin"

# -- helpers shared with the fault tests and their child processes ---------------------------


def manifest_for(
    run_id: str, seen: list[int] | None = None
) -> Callable[[int, Mapping[str, AssetRecord]], Manifest]:
    """A ``manifest_for`` callback building a minimal valid manifest; records the version."""

    def build(version: int, records: Mapping[str, AssetRecord]) -> Manifest:
        if seen is not None:
            seen.append(version)
        now = utc_now()
        steps = [
            StepRecord(
                step_id=step_id,
                started_at=now,
                ended_at=now,
                rows_in=10,
                rows_out=10,
                columns_in=["x"],
                fit_seconds=0.0,
                cpu_seconds=0.0,
                peak_memory_bytes=0,
                asset=record,
            )
            for step_id, record in records.items()
        ]
        return Manifest(
            model=MODEL,
            version=version,
            definition_version="1.0.0",
            spec_hash="0" * 64,
            dag_id=f"{MODEL}__train",
            run_id=run_id,
            created_at=now,
            published_at=utc_now(),
            steps=steps,
            metrics={},
            parameters={},
            environment={"python": "3.11"},
            comments=[],
        )

    return build


def card_for(manifest: Manifest) -> str:
    """A model card naming the version, enough to check it was written."""
    return f"# {manifest.model} version {manifest.version}\n"


def stage(
    store: ModelStore,
    run_id: str,
    step_id: str,
    data: bytes,
    *,
    root: str | None = None,
    identifier: str = IDENTIFIER,
) -> StagedAsset:
    """Write an asset to the run's scratch, as a training task does before publish."""
    url = store.scratch_url(run_id, step_id, identifier)
    size, sha256 = store.write_bytes(url, data)
    return StagedAsset(
        step_id=step_id,
        url=url,
        size=size,
        sha256=sha256,
        serializer="pickle",
        identifier=identifier,
        root=root or store.url(),
    )


def publish(
    store: ModelStore,
    assets: Mapping[str, bytes] | None = None,
    *,
    run_id: str | None = None,
    root: str | None = None,
) -> tuple[int, Pointer]:
    """Stage ``assets`` (step id -> bytes) for a new run and publish them: (version, pointer)."""
    run = run_id or f"manual__{uuid.uuid4().hex[:8]}"
    payload = assets if assets is not None else {"scaler": f"fitted by {run}".encode()}
    staged = [stage(store, run, step, data, root=root) for step, data in payload.items()]
    seen: list[int] = []
    pointer = store.publish(staged, manifest_for(run, seen), card_for)
    return seen[0], pointer


def location(url: str, options: Mapping[str, Any]) -> tuple[Any, str]:
    """The filesystem and path of a URL, with fresh listings (s3fs caches them)."""
    fs, path = fsspec.core.url_to_fs(url, **options)
    fs.invalidate_cache()
    return fs, path


def exists(url: str, options: Mapping[str, Any]) -> bool:
    """Whether anything is at ``url`` (a file, or a folder/prefix holding files)."""
    fs, path = location(url, options)
    return bool(fs.exists(path))


def read(url: str, options: Mapping[str, Any]) -> bytes:
    """The bytes at ``url``, bypassing the store."""
    fs, path = location(url, options)
    data: bytes = fs.cat_file(path)
    return data


def write(url: str, data: bytes, options: Mapping[str, Any]) -> None:
    """Write bytes at ``url`` behind the store's back (corruption, leftovers)."""
    fs, path = location(url, options)
    if "file" in fs.protocol:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    fs.pipe_file(path, data)


def abandon(store: ModelStore, backend: Backend, version: int, age: timedelta) -> None:
    """Leave what a publish killed after its claim leaves: a claim and an asset, no manifest."""
    claimed_at = (datetime.now(UTC) - age).isoformat()
    claim = {"claimed_at": claimed_at, "pid": 1, "token": "killed"}
    write(
        store.url("versions", str(version), "claim.json"),
        json.dumps(claim).encode(),
        backend.options,
    )
    write(
        store.url("versions", str(version), "scaler", IDENTIFIER),
        b"half-published leftover",
        backend.options,
    )


def same_location(actual: str, expected: str, options: Mapping[str, Any]) -> bool:
    """Whether two full URLs name the same object (``memory://a`` and ``memory:///a`` do)."""
    if "://" not in actual:
        return False
    (fs_a, path_a), (fs_b, path_b) = location(actual, options), location(expected, options)
    return type(fs_a) is type(fs_b) and path_a.rstrip("/") == path_b.rstrip("/")


# -- backends ---------------------------------------------------------------------------------


@dataclass
class Backend:
    """An empty folder on one filesystem: ``root`` as a user configures it, ``base`` as a URL."""

    name: str
    root: str
    base: str
    options: dict[str, Any] = field(default_factory=dict)

    def url(self, *parts: str) -> str:
        """A full URL under this test's folder."""
        return "/".join([self.base, *parts])

    def store(
        self, model: str = MODEL, *, owner: str | None = None, asset_roots: Sequence[str] = ()
    ) -> ModelStore:
        """The store of one model in this folder, opened for ``owner`` (a model) if given."""
        return open_store(
            f"{self.root}/{model}", self.options, owner=owner, asset_roots=asset_roots
        )


@pytest.fixture(params=["local", "memory", pytest.param("s3", marks=pytest.mark.integration)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """An empty folder on local disk, in memory, or in a fresh bucket on the moto server."""
    if request.param == "local":
        yield Backend("local", str(tmp_path), f"file://{tmp_path}")
    elif request.param == "memory":
        base = f"memory://store-{uuid.uuid4().hex}"
        yield Backend("memory", base, base)
        fs = fsspec.filesystem("memory")
        if fs.exists(base):
            fs.rm(base, recursive=True)
    else:
        bucket = request.getfixturevalue("s3_bucket")
        options = request.getfixturevalue("s3_storage_options")
        yield Backend("s3", f"s3://{bucket}", f"s3://{bucket}", options)


# -- the contract -----------------------------------------------------------------------------


class TestStoreContract:
    """What every backend promises readers and publishers."""

    def test_empty_store_has_no_pointer_and_no_versions(self, backend: Backend) -> None:
        store = backend.store()
        assert store.pointer() is None
        assert store.versions() == []
        assert store.pointer_tag() is None

    def test_publish_numbers_versions_from_one_and_moves_the_pointer(
        self, backend: Backend
    ) -> None:
        store = backend.store()
        first, pointer = publish(store)
        assert (first, pointer.version) == (1, 1)
        assert store.pointer() == pointer
        second, pointer = publish(store)
        assert (second, pointer.version) == (2, 2)
        assert store.pointer() == pointer
        assert store.versions() == [1, 2]
        assert pointer.rolled_back_from is None
        assert pointer.manifest == store.url("versions", "2", "manifest.json")
        assert pointer.published_at == store.manifest(2).published_at

    def test_manifest_records_full_asset_urls_with_size_and_sha256(
        self, backend: Backend, tmp_path: Path
    ) -> None:
        store = backend.store()
        assets = {"scaler": b"scaler bytes", "model": bytes(range(256)) * 1000}
        version, _ = publish(store, assets)
        manifest = store.manifest(version)
        assert [s.step_id for s in manifest.steps] == ["scaler", "model"]
        for step_id, data in assets.items():
            record = manifest.asset(step_id)
            assert record is not None
            assert record.url == store.url("versions", str(version), step_id, IDENTIFIER)
            assert "://" in record.url
            assert record.size == len(data)
            assert record.sha256 == hashlib.sha256(data).hexdigest()
            assert asset_bytes(store, record) == data
            target = tmp_path / f"downloaded-{step_id}"
            store.download_asset(record, str(target))
            assert target.read_bytes() == data
        card = read(store.url("versions", str(version), "MODEL_CARD.md"), backend.options)
        assert card.decode() == card_for(manifest)

    def test_verify_asset_passes_a_whole_asset_and_refuses_changed_bytes(
        self, backend: Backend
    ) -> None:
        store = backend.store()
        version, _ = publish(store, {"scaler": b"the fitted scaler"})
        record = store.manifest(version).asset("scaler")
        assert record is not None
        store.verify_asset(record)
        write(record.url, b"the fitted scalar", backend.options)
        with pytest.raises(ChecksumMismatchError):
            store.verify_asset(record)

    def test_corrupted_asset_is_refused_when_opened(self, backend: Backend) -> None:
        store = backend.store()
        version, _ = publish(store, {"scaler": b"the fitted scaler"})
        record = store.manifest(version).asset("scaler")
        assert record is not None
        write(record.url, b"the fitted scalar", backend.options)  # same size, other bytes
        with pytest.raises(ChecksumMismatchError):
            asset_bytes(store, record)
        write(record.url, b"truncated", backend.options)
        with pytest.raises(ChecksumMismatchError):
            asset_bytes(store, record)

    def test_corrupted_asset_is_refused_by_download_asset(
        self, backend: Backend, tmp_path: Path
    ) -> None:
        store = backend.store()
        version, _ = publish(store, {"scaler": b"the fitted scaler"})
        record = store.manifest(version).asset("scaler")
        assert record is not None
        write(record.url, b"the fitted scalar", backend.options)
        with pytest.raises(ChecksumMismatchError):
            store.download_asset(record, str(tmp_path / "scaler.bin"))

    def test_refused_download_leaves_no_file_behind(self, backend: Backend, tmp_path: Path) -> None:
        """A corrupt asset is never loaded: no file a caller could pick up later is left."""
        store = backend.store()
        version, _ = publish(store, {"scaler": b"the fitted scaler"})
        record = store.manifest(version).asset("scaler")
        assert record is not None
        write(record.url, b"the fitted scalar", backend.options)
        target = tmp_path / "scaler.bin"
        with pytest.raises(ChecksumMismatchError):
            store.download_asset(record, str(target))
        assert not target.exists()

    def test_assets_are_complete_before_the_manifest_and_the_pointer(
        self, backend: Backend
    ) -> None:
        """At the last callback before the manifest is written, the assets are whole and final
        while neither the new version nor a moved pointer can be seen."""
        store = backend.store()
        publish(store)
        before = store.pointer()
        observed: list[int] = []
        build = manifest_for("manual__ordered")

        def card(manifest: Manifest) -> str:
            for step in manifest.steps:
                assert step.asset is not None
                assert asset_bytes(store, step.asset) == b"final bytes"
            assert store.versions() == [1]
            assert store.pointer() == before
            observed.append(manifest.version)
            return card_for(manifest)

        staged = [stage(store, "manual__ordered", "scaler", b"final bytes")]
        pointer = store.publish(staged, build, card)
        assert observed == [2]
        assert pointer.version == 2
        assert store.versions() == [1, 2]

    def test_publish_failing_in_manifest_for_changes_nothing_visible(
        self, backend: Backend
    ) -> None:
        store = backend.store()
        publish(store)
        before = read(store.url("current.json"), backend.options)

        def broken(version: int, records: Mapping[str, AssetRecord]) -> Manifest:
            raise RuntimeError("metrics could not be gathered")

        staged = [stage(store, "manual__broken", "scaler", b"never published")]
        with pytest.raises(RuntimeError, match="metrics"):
            store.publish(staged, broken, card_for)
        assert read(store.url("current.json"), backend.options) == before
        assert store.versions() == [1]
        assert publish(store)[0] == 3  # the failed claim stays unused; numbers only grow

    def test_publish_failing_in_card_for_changes_nothing_visible(self, backend: Backend) -> None:
        store = backend.store()
        publish(store)
        before = read(store.url("current.json"), backend.options)

        def broken(manifest: Manifest) -> str:
            raise RuntimeError("card template missing")

        staged = [stage(store, "manual__broken", "scaler", b"never published")]
        with pytest.raises(RuntimeError, match="card"):
            store.publish(staged, manifest_for("manual__broken"), broken)
        assert read(store.url("current.json"), backend.options) == before
        assert store.versions() == [1]
        assert not exists(store.url("versions", "2", "manifest.json"), backend.options)

    def test_rollback_moves_only_the_pointer(self, backend: Backend) -> None:
        store = backend.store()
        publish(store, {"scaler": b"v1"})
        publish(store, {"scaler": b"v2"})
        publish(store, {"scaler": b"v3"})
        documents = [store.url("versions", str(v), "manifest.json") for v in (1, 2, 3)]
        assets = [store.url("versions", str(v), "scaler", IDENTIFIER) for v in (1, 2, 3)]
        before = {url: read(url, backend.options) for url in documents + assets}
        pointer = store.rollback(1)
        assert pointer.version == 1
        assert pointer.rolled_back_from == 3
        assert pointer.manifest == store.url("versions", "1", "manifest.json")
        assert pointer.published_at == store.manifest(1).published_at
        assert store.pointer() == pointer
        assert store.versions() == [1, 2, 3]
        assert {url: read(url, backend.options) for url in before} == before

    def test_rollback_to_a_missing_version_is_a_corrupt_document_error(
        self, backend: Backend
    ) -> None:
        store = backend.store()
        publish(store)
        publish(store)
        before = read(store.url("current.json"), backend.options)
        with pytest.raises(CorruptDocumentError):
            store.rollback(7)
        assert read(store.url("current.json"), backend.options) == before

    def test_publish_after_rollback_takes_the_next_number(self, backend: Backend) -> None:
        store = backend.store()
        for _ in range(3):
            publish(store)
        store.rollback(1)
        version, pointer = publish(store)
        assert version == pointer.version == 4
        assert pointer.rolled_back_from is None
        assert store.pointer() == pointer

    def test_prune_keeps_newest_pinned_and_current(self, backend: Backend) -> None:
        store = backend.store()
        for n in range(1, 7):
            publish(store, {"scaler": f"v{n}".encode()})
        assert store.prune(keep=2, pinned=[1]) == [2, 3, 4]
        assert store.versions() == [1, 5, 6]
        assert store.pointer() is not None
        assert store.pointer().version == 6  # type: ignore[union-attr]
        for gone in (2, 3, 4):
            assert not exists(store.url("versions", str(gone)), backend.options)
        for kept in (1, 5, 6):
            record = store.manifest(kept).asset("scaler")
            assert record is not None
            assert asset_bytes(store, record) == f"v{kept}".encode()

    def test_prune_never_deletes_current_after_rollback(self, backend: Backend) -> None:
        store = backend.store()
        for n in range(1, 5):
            publish(store, {"scaler": f"v{n}".encode()})
        store.rollback(2)
        assert store.prune(keep=1) == [1, 3]
        assert store.versions() == [2, 4]
        pointer = store.pointer()
        assert pointer is not None
        assert pointer.version == 2
        record = store.manifest(2).asset("scaler")
        assert record is not None
        assert asset_bytes(store, record) == b"v2"

    def test_publish_reclaims_claims_abandoned_past_the_grace_period_only(
        self, backend: Backend
    ) -> None:
        store = backend.store()
        publish(store)
        abandon(store, backend, 2, timedelta(hours=2))
        abandon(store, backend, 3, timedelta(minutes=10))  # its publisher may still be running
        assert publish(store)[0] == 4
        assert not exists(store.url("versions", "2", "scaler", IDENTIFIER), backend.options)
        reclaimed = json.loads(read(store.url("versions", "2", "claim.json"), backend.options))
        assert "reclaimed_at" in reclaimed
        assert exists(store.url("versions", "3", "scaler", IDENTIFIER), backend.options)
        assert store.versions() == [1, 4]

    def test_a_reclaimed_number_is_never_given_out_again(self, backend: Backend) -> None:
        store = backend.store()
        publish(store)
        abandon(store, backend, 2, timedelta(hours=2))  # the highest number so far
        assert publish(store)[0] == 3
        assert publish(store)[0] == 4
        assert store.versions() == [1, 3, 4]

    def test_reclaim_of_a_claim_that_copied_nothing_to_a_steps_own_root(
        self, backend: Backend
    ) -> None:
        elsewhere = backend.url("shared-assets", MODEL)
        store = backend.store(asset_roots=[elsewhere])
        publish(store, root=elsewhere)
        abandon(store, backend, 2, timedelta(hours=2))  # killed before any copy elsewhere
        assert store.reclaim() == [2]
        assert not exists(store.url("versions", "2", "scaler", IDENTIFIER), backend.options)
        assert exists(f"{elsewhere}/versions/1/scaler/{IDENTIFIER}", backend.options)

    def test_a_publish_whose_claim_was_reclaimed_meanwhile_completes_nothing(
        self, backend: Backend
    ) -> None:
        store = backend.store()
        publish(store, {"scaler": b"v1"})
        late = manifest_for("late-run")

        def reclaimed_while_promoting(version: int, records: Mapping[str, AssetRecord]) -> Any:
            assert backend.store().reclaim(grace=0) == [version]  # a later publish's reclaim
            return late(version, records)

        staged = [stage(store, "late-run", "scaler", b"stale")]
        with pytest.raises(PublishConflictError, match="reclaimed"):
            store.publish(staged, reclaimed_while_promoting, card_for)
        assert store.versions() == [1]
        pointer = store.pointer()
        assert pointer is not None
        assert pointer.version == 1
        assert publish(store)[0] == 3

    def test_prune_reclaims_abandoned_claims_too(self, backend: Backend) -> None:
        store = backend.store()
        publish(store)
        abandon(store, backend, 2, timedelta(days=2))
        assert store.prune(keep=1) == []
        assert not exists(store.url("versions", "2", "scaler", IDENTIFIER), backend.options)
        assert publish(store)[0] == 3

    def test_a_staged_asset_changed_before_publish_is_refused_unpublished(
        self, backend: Backend
    ) -> None:
        store = backend.store()
        publish(store, {"scaler": b"v1"})
        staged = stage(store, "run-2", "scaler", b"fitted-A")
        write(staged.url, b"fitted-B", backend.options)  # same size, other bytes
        with pytest.raises(ChecksumMismatchError, match="sha256"):
            store.publish([staged], manifest_for("run-2"), card_for)
        assert store.versions() == [1]
        pointer = store.pointer()
        assert pointer is not None
        assert pointer.version == 1

    def test_clean_run_removes_the_run_scratch(self, backend: Backend) -> None:
        store = backend.store()
        run = "scheduled__2025-01-01T00:00:00+00:00"
        other = "manual__2025-01-02T00:00:00+00:00"
        store.write_bytes(store.scratch_url(run, "data", "part-0.parquet"), b"rows")
        store.write_bytes(store.scratch_url(other, "data", "part-0.parquet"), b"rows")
        version, _ = publish(store, {"scaler": b"fitted"}, run_id=run)
        assert exists(store.scratch_url(run), backend.options)
        store.clean_run(run)
        assert not exists(store.scratch_url(run), backend.options)
        assert exists(store.scratch_url(other, "data", "part-0.parquet"), backend.options)
        record = store.manifest(version).asset("scaler")
        assert record is not None
        assert asset_bytes(store, record) == b"fitted"
        store.clean_run(run)  # cleaning twice (a retried task) is harmless

    @pytest.mark.parametrize(
        "body",
        [b"{not json", b'{"version": 0, "manifest": "x", "published_at": "y"}', b""],
        ids=["not-json", "invalid-version", "empty"],
    )
    def test_malformed_pointer_is_corrupt_not_missing(self, backend: Backend, body: bytes) -> None:
        store = backend.store()
        publish(store)
        write(store.url("current.json"), body, backend.options)
        with pytest.raises(CorruptDocumentError):
            store.pointer()

    def test_pointer_tag_changes_with_the_pointer_and_only_then(self, backend: Backend) -> None:
        store = backend.store()
        assert store.pointer_tag() is None
        publish(store)
        first = store.pointer_tag()
        assert first is not None
        assert store.pointer_tag() == first
        store.versions()
        store.pointer()
        assert store.pointer_tag() == first
        publish(store)
        second = store.pointer_tag()
        assert second not in (None, first)
        assert store.pointer_tag() == second
        store.rollback(1)
        third = store.pointer_tag()
        assert third not in (None, first, second)
        assert store.pointer_tag() == third

    def test_read_pointer_reads_the_body_only_when_the_tag_moved(self, backend: Backend) -> None:
        store = backend.store()
        empty = store.read_pointer()
        assert empty is not None
        assert (empty.pointer, empty.tag, empty.size, empty.requests) == (None, None, 0, 1)
        _, pointer = publish(store)
        first = store.read_pointer()
        assert first is not None
        assert (first.pointer, first.tag, first.requests) == (pointer, store.pointer_tag(), 2)
        assert first.size == len(read(store.url("current.json"), backend.options))
        assert store.read_pointer(since=first.tag) is None
        _, pointer = publish(store)
        second = store.read_pointer(since=first.tag)
        assert second is not None
        assert second.pointer == pointer and second.tag not in (None, first.tag)

    def test_read_pointer_reports_a_malformed_pointer_as_corrupt(self, backend: Backend) -> None:
        store = backend.store()
        publish(store)
        write(store.url("current.json"), b"{not json", backend.options)
        with pytest.raises(CorruptDocumentError, match="not a valid pointer"):
            store.read_pointer()

    def test_asset_under_another_root_is_published_there(self, backend: Backend) -> None:
        elsewhere = backend.url("shared-assets", MODEL)
        store = backend.store(asset_roots=[elsewhere])
        run = "manual__elsewhere"
        staged = [
            stage(store, run, "scaler", b"kept with the model"),
            stage(store, run, "embedding", b"kept elsewhere", root=elsewhere),
        ]
        pointer = store.publish(staged, manifest_for(run), card_for)
        manifest = store.manifest(pointer.version)
        record = manifest.asset("embedding")
        assert record is not None
        expected = f"{elsewhere}/versions/{pointer.version}/embedding/{IDENTIFIER}"
        assert same_location(record.url, expected, backend.options), record.url
        assert read(expected, backend.options) == b"kept elsewhere"
        assert asset_bytes(store, record) == b"kept elsewhere"
        own = store.url("versions", str(pointer.version), "embedding", IDENTIFIER)
        assert not exists(own, backend.options)
        scaler = manifest.asset("scaler")
        assert scaler is not None
        assert scaler.url == store.url("versions", str(pointer.version), "scaler", IDENTIFIER)

    def test_prune_deletes_assets_under_another_root(self, backend: Backend) -> None:
        elsewhere = backend.url("shared-assets", MODEL)
        store = backend.store(asset_roots=[elsewhere])
        publish(store, {"embedding": b"v1"}, root=elsewhere)
        publish(store, {"embedding": b"v2"}, root=elsewhere)
        assert store.prune(keep=1) == [1]
        assert not exists(f"{elsewhere}/versions/1/embedding/{IDENTIFIER}", backend.options)
        assert read(f"{elsewhere}/versions/2/embedding/{IDENTIFIER}", backend.options) == b"v2"


class TestAssetLocations:
    """A manifest names its assets, but only files in the model's own folders are touched."""

    FORGERIES = ("parent segments", "another folder", "a lookalike model", "another scheme")

    def forged(self, backend: Backend, store: ModelStore, kind: str) -> str:
        """An asset URL outside the model, reached as ``kind`` says."""
        return {
            "parent segments": f"{store.url()}/versions/1/../../../victim/{IDENTIFIER}",
            "another folder": backend.url("victim", IDENTIFIER),
            "a lookalike model": backend.url(f"{MODEL}-other", "versions", "1", IDENTIFIER),
            "another scheme": f"http://127.0.0.1:9/{MODEL}/versions/1/{IDENTIFIER}",
        }[kind]

    def point_at(self, backend: Backend, store: ModelStore, version: int, url: str) -> None:
        """Edit a published manifest so its asset is ``url``, as a writer of the store could."""
        location = store.url("versions", str(version), "manifest.json")
        document = json.loads(read(location, backend.options))
        document["steps"][0]["asset"]["url"] = url
        write(location, json.dumps(document).encode(), backend.options)

    @pytest.mark.parametrize("kind", FORGERIES)
    def test_an_asset_outside_the_model_is_never_read(self, backend: Backend, kind: str) -> None:
        store = backend.store()
        version, _ = publish(store, {"scaler": b"secret"})
        url = self.forged(backend, store, kind)
        self.point_at(backend, store, version, url)
        record = store.manifest(version).asset("scaler")
        assert record is not None
        for reads in (
            lambda: asset_bytes(store, record),
            lambda: store.verify_asset(record),
            lambda: store.download_asset(record, os.devnull),
        ):
            with pytest.raises(AssetLocationError, match="outside the model's own folders"):
                reads()

    @pytest.mark.parametrize("kind", ["parent segments", "another folder", "a lookalike model"])
    def test_prune_deletes_nothing_a_manifest_names_outside_the_model(
        self, backend: Backend, kind: str
    ) -> None:
        store = backend.store()
        version, _ = publish(store)
        url = self.forged(backend, store, kind)
        victim = url if kind == "a lookalike model" else backend.url("victim", IDENTIFIER)
        write(victim, b"not the store's", backend.options)
        self.point_at(backend, store, version, url)
        publish(store)
        with pytest.raises(AssetLocationError):
            store.prune(keep=1)
        assert read(victim, backend.options) == b"not the store's"
        assert store.versions() == [1, 2]

    def test_publish_copies_no_staged_file_from_outside_the_model(self, backend: Backend) -> None:
        """A run's scratch records are as writable as a manifest: publish checks them too."""
        store = backend.store()
        victim = backend.url("victim", IDENTIFIER)
        write(victim, b"secret", backend.options)
        digest = hashlib.sha256(b"secret").hexdigest()
        forged = StagedAsset("scaler", victim, 6, digest, "joblib", IDENTIFIER, store.url())
        with pytest.raises(AssetLocationError, match="outside the model's own folders"):
            store.publish([forged], manifest_for("manual__forged"), card_for)
        assert store.versions() == []
        assert not exists(store.url("versions", "1", "scaler"), backend.options)

    def test_publish_writes_under_no_folder_the_model_does_not_have(self, backend: Backend) -> None:
        store = backend.store()
        elsewhere = backend.url("elsewhere", MODEL)
        staged = [stage(store, "manual__forged", "scaler", b"fitted", root=elsewhere)]
        with pytest.raises(AssetLocationError, match="none of the model's folders"):
            store.publish(staged, manifest_for("manual__forged"), card_for)
        assert not exists(elsewhere, backend.options)

    def test_a_steps_own_root_is_read_only_by_a_store_opened_with_it(
        self, backend: Backend
    ) -> None:
        elsewhere = backend.url("shared-assets", MODEL)
        version, _ = publish(backend.store(asset_roots=[elsewhere]), root=elsewhere)
        record = backend.store().manifest(version).asset("scaler")
        assert record is not None
        with pytest.raises(AssetLocationError):
            asset_bytes(backend.store(), record)
        assert asset_bytes(backend.store(asset_roots=[elsewhere]), record).startswith(b"fitted")


class TestStoreOwnership:
    """A store belongs to the model that first published in it; no other model acts there."""

    def test_the_first_publish_claims_the_store_for_its_model(self, backend: Backend) -> None:
        store = backend.store(owner=MODEL)
        publish(store)
        assert json.loads(read(backend.url(MODEL, "owner.json"), backend.options))["model"] == (
            MODEL
        )

    def test_another_model_may_not_publish_roll_back_or_prune(self, backend: Backend) -> None:
        owned = backend.store(owner=MODEL)
        publish(owned)
        publish(owned)
        owned.rollback(1)
        intruder = backend.store(owner="intruder")
        for change in (
            lambda: publish(intruder),
            lambda: intruder.rollback(2),
            lambda: intruder.prune(keep=1),
        ):
            with pytest.raises(StoreOwnedError, match=r"belongs to model 'churn'.*'intruder'"):
                change()
        assert (owned.pointer().version, owned.versions()) == (1, [1, 2])
        assert not exists(backend.url(MODEL, "versions", "3"), backend.options)

    def test_a_manifest_of_another_model_is_never_read_as_this_ones(self, backend: Backend) -> None:
        publish(backend.store())  # the manifest says model 'churn'
        with pytest.raises(StoreOwnedError, match="published by model 'churn', not 'iris'"):
            backend.store(owner="iris").manifest(1)

    def test_a_store_from_before_ownership_keeps_working_until_a_publish_claims_it(
        self, backend: Backend
    ) -> None:
        publish(backend.store())
        publish(backend.store())
        store = backend.store(owner=MODEL)
        assert store.rollback(1).version == 1
        assert store.prune(keep=1, pinned=[1]) == []
        assert not exists(backend.url(MODEL, "owner.json"), backend.options)
        publish(store)
        assert json.loads(read(backend.url(MODEL, "owner.json"), backend.options))["model"] == (
            MODEL
        )

    def test_two_models_racing_for_a_new_store_never_both_win(self, backend: Backend) -> None:
        contenders = [backend.store(owner=name) for name in ("churn", "intruder")]
        start = threading.Barrier(len(contenders))
        outcomes: list[str] = []

        def claim(store: ModelStore) -> None:
            start.wait()
            try:
                store.check_owner(claim=True)
                outcomes.append("won")
            except StoreOwnedError:
                outcomes.append("refused")

        threads = [threading.Thread(target=claim, args=(s,)) for s in contenders]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes) == ["refused", "won"]


def test_plain_local_assets_root_is_recorded_as_a_full_url(tmp_path: Path) -> None:
    """An assets_root written as a plain folder still lands in the manifest as a full URL."""
    elsewhere = tmp_path / "elsewhere" / MODEL
    store = open_store(str(tmp_path / "assets" / MODEL), asset_roots=[str(elsewhere)])
    version, _ = publish(store, {"embedding": b"kept elsewhere"}, root=str(elsewhere))
    record = store.manifest(version).asset("embedding")
    assert record is not None
    assert (elsewhere / "versions" / "1" / "embedding" / IDENTIFIER).read_bytes() == (
        b"kept elsewhere"
    )
    assert record.url == f"file://{elsewhere}/versions/1/embedding/{IDENTIFIER}"


def test_prune_removes_the_scratch_of_runs_untouched_for_a_day(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "model"))
    stale, fresh = "manual__failed", "manual__running"
    for run in (stale, fresh):
        store.write_bytes(store.scratch_url(run, "data", "scale", "train.parquet"), b"rows")
    two_days_ago = time.time() - 2 * 86400
    for path in (tmp_path / "model" / "runs" / stale).rglob("*"):
        os.utime(path, (two_days_ago, two_days_ago))
    publish(store)
    store.prune(keep=1)
    assert not (tmp_path / "model" / "runs" / stale).exists()
    assert (tmp_path / "model" / "runs" / fresh / "data" / "scale" / "train.parquet").exists()
