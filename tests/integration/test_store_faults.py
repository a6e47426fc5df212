"""The publish protocol under faults: racing publishers, killed publishers, storage outages.

Publishers run as separate processes (``python -m tests.integration.test_store_faults SPEC``),
so races go through the filesystem's own conditional writes and a SIGKILL really ends one mid-
publish. Runs on local disk and on S3 (the session's moto server) where the fault applies to
both; outages use a closed port or a private second moto server, never the session's one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import fsspec
import pytest

from model_steps.errors import StoreUnavailableError
from model_steps.store.manifest import AssetRecord, Manifest
from model_steps.store.model_store import ModelStore, StagedAsset, open_store
from tests import s3 as s3_helpers
from tests.assets import asset_bytes
from tests.integration.test_store import (
    IDENTIFIER,
    MODEL,
    Backend,
    card_for,
    exists,
    manifest_for,
    publish,
    read,
    stage,
)

REPO = Path(__file__).resolve().parents[2]
CHILD_SECONDS = 60.0
LARGE = 12 * 2**20  # more than one copy chunk (store.CHUNK is 8 MiB)
PUBLISHERS = 4


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.integration)])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """A folder several processes can publish to: local disk, or a fresh bucket on moto."""
    if request.param == "local":
        return Backend("local", str(tmp_path / "assets"), f"file://{tmp_path}/assets")
    bucket = request.getfixturevalue("s3_bucket")
    options = request.getfixturevalue("s3_storage_options")
    return Backend("s3", f"s3://{bucket}", f"s3://{bucket}", options)


# -- publisher processes ----------------------------------------------------------------------


def _kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _install_kill(kill_at: str | None) -> Callable[[], None] | None:
    """Arrange for this (child) process to SIGKILL itself at one point of publish.

    Returns a hook for kill points reached through the ``manifest_for`` callback.
    """
    if kill_at is None:
        return None
    if kill_at == "after_promote":  # manifest_for runs right after every asset is promoted
        return _kill_self
    if kill_at == "before_pointer":  # the manifest is written; the pointer is next
        ModelStore._move_pointer = lambda *args, **kwargs: _kill_self()  # type: ignore[method-assign]
    elif kill_at == "pointer_replace":  # local: the new pointer is in its temp file
        real_replace = os.replace

        def replace(source: Any, target: Any, **kwargs: Any) -> None:
            if str(target).endswith("current.json"):
                _kill_self()
            real_replace(source, target, **kwargs)

        os.replace = replace
    elif kill_at == "manifest_link":  # local: the manifest is written, not yet linked into place
        real_link = os.link

        def link(source: Any, target: Any, **kwargs: Any) -> None:
            if str(target).endswith("manifest.json"):
                _kill_self()
            real_link(source, target, **kwargs)

        os.link = link
    else:
        raise ValueError(f"unknown kill point {kill_at!r}")
    return None


def _child(spec: Mapping[str, Any]) -> None:
    """One publisher: stage an asset, optionally wait for the starting gun, publish."""
    elsewhere = spec.get("elsewhere")  # a step's own assets_root, beside the store
    store = open_store(
        f"{spec['root']}/{MODEL}", spec["options"], asset_roots=[elsewhere] if elsewhere else []
    )
    run_id = spec["run_id"]
    url = store.scratch_url(run_id, "model", IDENTIFIER)
    with tempfile.NamedTemporaryFile() as local:
        block = run_id.encode().ljust(64, b".")
        local.write(block * (spec["size"] // len(block)) + block[: spec["size"] % len(block)])
        local.flush()
        size, sha256 = store.upload_file(local.name, url)
    staged = [StagedAsset("model", url, size, sha256, "pickle", IDENTIFIER, store.url())]
    if elsewhere:
        staged.append(stage(store, run_id, "embedding", b"kept elsewhere", root=elsewhere))
    seen: list[int] = []
    build = manifest_for(run_id, seen)
    hook = _install_kill(spec.get("kill_at"))

    def manifest(version: int, records: Mapping[str, AssetRecord]) -> Manifest:
        result = build(version, records)
        if hook is not None:
            hook()
        return result

    if spec.get("ready"):
        Path(spec["ready"]).touch()
        deadline = time.monotonic() + CHILD_SECONDS
        while not Path(spec["go"]).exists():
            if time.monotonic() > deadline:
                raise TimeoutError("no starting signal")
            time.sleep(0.002)
    pointer = store.publish(staged, manifest, card_for)
    print(json.dumps({"run_id": run_id, "version": seen[0], "pointer": pointer.version}))


def start_publisher(backend: Backend, run_id: str, **spec: Any) -> subprocess.Popen[str]:
    """Start a publisher process for ``backend``'s model."""
    full = {"root": backend.root, "options": backend.options, "run_id": run_id, "size": 1024}
    full.update(spec)
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.test_store_faults", json.dumps(full)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    """Wait (bounded) for a publisher; its return code, stdout and stderr."""
    try:
        out, err = process.communicate(timeout=CHILD_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"publisher did not finish in {CHILD_SECONDS}s: {err[-2000:]}")
    return process.returncode, out, err


# -- concurrent publishers --------------------------------------------------------------------


def test_concurrent_publishers_get_distinct_complete_versions(
    shared: Backend, tmp_path: Path
) -> None:
    store = shared.store()
    assert store.versions() == []  # also warms any listing cache the parent keeps
    gate = tmp_path / "gate"
    gate.mkdir()
    runs = [f"manual__racer{i}" for i in range(PUBLISHERS)]
    processes = [
        start_publisher(shared, run, ready=str(gate / f"ready-{run}"), go=str(gate / "go"))
        for run in runs
    ]
    deadline = time.monotonic() + CHILD_SECONDS
    while len(list(gate.glob("ready-*"))) < PUBLISHERS:
        if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
            for process in processes:
                process.kill()
            pytest.fail(f"publishers did not get ready: {[finish(p) for p in processes]}")
        time.sleep(0.01)
    (gate / "go").touch()
    results = [finish(process) for process in processes]
    assert all(code == 0 for code, _, _ in results), results
    published = {json.loads(out)["run_id"]: json.loads(out)["version"] for _, out, _ in results}
    assert sorted(published.values()) == list(range(1, PUBLISHERS + 1))
    assert store.versions() == list(range(1, PUBLISHERS + 1))
    pointer = store.pointer()
    assert pointer is not None
    assert pointer.version == PUBLISHERS
    assert pointer.rolled_back_from is None
    for run, version in published.items():
        manifest = store.manifest(version)
        assert manifest.run_id == run
        record = manifest.asset("model")
        assert record is not None
        assert asset_bytes(store, record).startswith(run.encode())


# -- killed publishers ------------------------------------------------------------------------

KILL_POINTS = [
    pytest.param("local", "after_promote", id="local-after_promote"),
    pytest.param("local", "before_pointer", id="local-before_pointer"),
    pytest.param("local", "pointer_replace", id="local-pointer_replace"),
    pytest.param("local", "manifest_link", id="local-manifest_link"),
    pytest.param("s3", "after_promote", id="s3-after_promote", marks=pytest.mark.integration),
    pytest.param("s3", "before_pointer", id="s3-before_pointer", marks=pytest.mark.integration),
]


@pytest.fixture
def killable(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """The backend named by the test's ``where`` parameter."""
    where = request.node.callspec.params["where"]
    if where == "local":
        return Backend("local", str(tmp_path / "assets"), f"file://{tmp_path}/assets")
    bucket = request.getfixturevalue("s3_bucket")
    options = request.getfixturevalue("s3_storage_options")
    return Backend("s3", f"s3://{bucket}", f"s3://{bucket}", options)


@pytest.mark.parametrize(("where", "kill_at"), KILL_POINTS)
def test_killed_publisher_leaves_the_pointer_as_it_was(
    where: str, kill_at: str, killable: Backend
) -> None:
    store = killable.store()
    publish(store, {"model": b"version one"})
    before = read(store.url("current.json"), killable.options)
    process = start_publisher(killable, "manual__killed", size=LARGE, kill_at=kill_at)
    code, _, err = finish(process)
    assert code == -signal.SIGKILL, err[-2000:]
    assert read(store.url("current.json"), killable.options) == before
    pointer = store.pointer()
    assert pointer is not None
    assert pointer.version == 1
    record = store.manifest(1).asset("model")
    assert record is not None
    assert asset_bytes(store, record) == b"version one"
    version, pointer = publish(store, {"model": b"version three"})
    assert version == pointer.version == 3  # the killed claim (2) is never reused
    assert store.pointer() == pointer


@pytest.mark.parametrize(("where", "kill_at"), KILL_POINTS)
def test_killed_publisher_leaves_no_partial_version_listed(
    where: str, kill_at: str, killable: Backend
) -> None:
    """Whatever a killed publisher left, only whole versions are listed, and retention copes."""
    store = killable.store()
    publish(store, {"model": b"version one"})
    process = start_publisher(killable, "manual__killed", size=LARGE, kill_at=kill_at)
    code, _, err = finish(process)
    assert code == -signal.SIGKILL, err[-2000:]
    for version in store.versions():
        manifest = store.manifest(version)  # every listed version has a valid manifest
        for step in manifest.steps:
            assert step.asset is not None
            asset_bytes(store, step.asset)
    publish(store, {"model": b"version three"})
    store.prune(keep=1)
    assert store.versions() == [3]


@pytest.mark.parametrize("where", ["local", pytest.param("s3", marks=pytest.mark.integration)])
def test_reclaim_leaves_nothing_of_a_killed_publish_in_any_folder_of_the_model(
    where: str, killable: Backend
) -> None:
    """A publish killed once its assets were copied, one to a step's own assets_root."""
    elsewhere = killable.url("elsewhere", MODEL)
    store = killable.store(asset_roots=[elsewhere])
    process = start_publisher(
        killable, "manual__killed", kill_at="after_promote", elsewhere=elsewhere
    )
    code, _, err = finish(process)
    assert code == -signal.SIGKILL, err[-2000:]
    left = [
        f"{store.url('versions', '1')}/model/{IDENTIFIER}",
        f"{elsewhere}/versions/1/embedding/{IDENTIFIER}",
    ]
    assert all(exists(url, killable.options) for url in left)
    assert store.reclaim(grace=0) == [1]
    assert not any(exists(url, killable.options) for url in left)
    assert not exists(f"{elsewhere}/versions/1", killable.options)
    assert files(store.url("versions", "1"), killable.options) == ["claim.json"]


def files(url: str, options: Mapping[str, Any]) -> list[str]:
    """The names of the files under ``url``, listed fresh."""
    fs, path = fsspec.core.url_to_fs(url, **options)
    fs.invalidate_cache()
    return sorted(found.rsplit("/", 1)[-1] for found in fs.find(path))


# -- retried publishers -----------------------------------------------------------------------


def test_publish_retried_with_the_same_staged_assets_succeeds(shared: Backend) -> None:
    """A publish task that failed after promoting (then retried by Airflow) can still publish."""
    store = shared.store()
    publish(store)
    staged = [stage(store, "manual__retried", "model", b"fitted once")]
    attempts: list[int] = []

    def flaky(version: int, records: Mapping[str, AssetRecord]) -> Manifest:
        attempts.append(version)
        if len(attempts) == 1:
            raise ConnectionError("metrics service timed out")
        return manifest_for("manual__retried")(version, records)

    with pytest.raises(ConnectionError):
        store.publish(staged, flaky, card_for)
    pointer = store.publish(staged, flaky, card_for)
    assert pointer.version == attempts[-1] == 3
    record = store.manifest(3).asset("model")
    assert record is not None
    assert asset_bytes(store, record) == b"fitted once"


# -- storage outages --------------------------------------------------------------------------

READS: dict[str, Callable[[ModelStore], object]] = {
    "pointer": lambda store: store.pointer(),
    "versions": lambda store: store.versions(),
    "pointer_tag": lambda store: store.pointer_tag(),
    "manifest": lambda store: store.manifest(1),
}


@pytest.mark.integration
@pytest.mark.parametrize("call", list(READS))
def test_unreachable_endpoint_is_unavailable_not_missing(call: str) -> None:
    endpoint = f"http://127.0.0.1:{s3_helpers.free_port()}"  # nothing listens there
    store = open_store(f"s3://nowhere-bucket/{MODEL}", s3_helpers.storage_options(endpoint))
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError):
        READS[call](store)
    assert time.monotonic() - started < 10


@pytest.fixture
def private_server(tmp_path: Path) -> Iterator[s3_helpers.MotoServer]:
    """A second moto server this test may stop and restart (the session's one stays up)."""
    server = s3_helpers.MotoServer(tmp_path / "private-moto.log").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.integration
def test_stopped_server_is_unavailable_not_missing_and_the_store_recovers(
    private_server: s3_helpers.MotoServer,
) -> None:
    bucket = s3_helpers.create_bucket(private_server.endpoint)
    store = open_store(
        f"s3://{bucket}/{MODEL}", s3_helpers.storage_options(private_server.endpoint)
    )
    publish(store)
    publish(store)
    assert store.pointer() is not None  # warm every cache the filesystem keeps
    assert store.versions() == [1, 2]
    assert store.pointer_tag() is not None

    private_server.stop()
    for call in ("pointer", "versions", "pointer_tag", "manifest"):
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError):
            READS[call](store)
        assert time.monotonic() - started < 10, call

    private_server.start()  # same port, so the store's endpoint answers again
    s3_helpers.create_bucket(private_server.endpoint, bucket)  # moto keeps state in memory
    assert store.pointer() is None
    _, pointer = publish(store)
    assert store.pointer() == pointer
    assert store.versions() == [pointer.version]
    assert exists(store.url("current.json"), store.storage_options)


if __name__ == "__main__":
    _child(json.loads(sys.argv[1]))
