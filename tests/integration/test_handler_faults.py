"""Handlers keep serving through storage faults, on local disk and on the S3 test server.

Each scenario runs against both backends: a bad new version is refused while the old one keeps
answering, a pointer that vanishes or breaks is reported, a rollback is followed. The outage
test takes S3 away for real: it stops a private moto server (the session's one stays up) and
starts it again on the same port.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fsspec
import pytest

from model_steps.errors import ChecksumMismatchError, ModelStepsError
from model_steps.serving.handler import ModelHandler
from tests import s3 as s3_helpers
from tests.lab import Lab, expected_labels, make_lab, scores, wait_for, write_iris

pytestmark = pytest.mark.integration


@dataclass
class Errors:
    """What ``on_error`` received."""

    seen: list[Exception] = field(default_factory=list)

    def __call__(self, error: Exception) -> None:
        self.seen.append(error)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_iris(tmp_path_factory.mktemp("data"))


@pytest.fixture(params=["local", "s3"])
def lab(request: pytest.FixtureRequest, tmp_path: Path, data: Path) -> Lab:
    """A model whose store is on local disk, or in a fresh bucket on the session's S3 server."""
    if request.param == "local":
        return make_lab(tmp_path, data)
    bucket = request.getfixturevalue("s3_bucket")
    options = request.getfixturevalue("s3_storage_options")
    return make_lab(tmp_path, data, f"s3://{bucket}/models", storage_options=options)


def behind_the_store(lab: Lab, url: str) -> tuple[Any, str]:
    """The filesystem and path of ``url``, for changes the store does not make itself."""
    fs, path = fsspec.core.url_to_fs(url, **lab.storage_options)
    fs.invalidate_cache()
    return fs, path


def asset_url(lab: Lab, version: int, step: str = "classify") -> str:
    record = lab.store.manifest(version).asset(step)
    assert record is not None
    return record.url


def serving(lab: Lab, errors: Errors | None = None, **options: Any) -> ModelHandler:
    """A handler that loaded version 1."""
    lab.train()
    handler = lab.handler(on_error=errors, **options)
    assert handler.load() == 1
    return handler


def test_a_corrupt_new_version_is_refused_and_retried_with_backoff(lab: Lab, data: Path) -> None:
    errors = Errors()
    handler = serving(lab, errors, poll_interval=0.2, max_backoff=2.0)
    assert lab.train(C=0.01) == 2
    fs, path = behind_the_store(lab, asset_url(lab, 2))
    original = fs.cat_file(path)
    fs.pipe_file(path, original[:-1] + bytes([original[-1] ^ 1]))

    assert not handler.poll_once()
    assert not handler.poll_once()
    status = handler.status
    assert status.reload_failures == 1, "retried at the next poll: a hot loop"
    assert status.version == 1
    assert status.last_error and "does not match its manifest" in status.last_error
    assert isinstance(errors.seen[-1], ChecksumMismatchError)
    rows = scores(data)
    assert handler.predict(rows).values() == expected_labels(data, rows)
    time.sleep(0.45)  # past the first retry wait (2 x poll_interval)
    assert not handler.poll_once()
    assert handler.status.reload_failures == 2

    assert lab.train(C=0.01) == 3  # a new version is tried at once
    assert handler.poll_once()
    assert handler.version == 3 and handler.status.last_error is None


def test_unload_first_refuses_a_corrupt_version_before_it_drops_the_served_one(
    lab: Lab, data: Path
) -> None:
    handler = serving(lab, unload_first=True, poll_interval=0.2, max_backoff=2.0)
    assert lab.train(C=0.01) == 2
    fs, path = behind_the_store(lab, asset_url(lab, 2))
    original = fs.cat_file(path)
    fs.pipe_file(path, original[:-1] + bytes([original[-1] ^ 1]))

    assert not handler.poll_once()
    status = handler.status
    assert status.version == 1
    assert status.unavailable_seconds == 0, "the served version was dropped for a corrupt one"
    assert status.last_error and "does not match its manifest" in status.last_error
    rows = scores(data)
    assert handler.predict(rows).values() == expected_labels(data, rows)


def test_a_version_with_a_missing_asset_is_refused(lab: Lab) -> None:
    handler = serving(lab)
    lab.train(C=0.01)
    fs, path = behind_the_store(lab, asset_url(lab, 2, "scale"))
    fs.rm(path)
    assert not handler.poll_once()
    assert handler.version == 1
    assert handler.status.last_error and "cannot load version 2" in handler.status.last_error


def test_a_publish_in_flight_is_never_loaded(lab: Lab) -> None:
    """Version 2 complete in the store but the pointer not moved yet: what a reader sees."""
    handler = serving(lab)
    fs, pointer = behind_the_store(lab, lab.store.url("current.json"))
    before = fs.cat_file(pointer)
    lab.train(C=0.01)
    fs.pipe_file(pointer, before)
    assert lab.store.versions() == [1, 2]
    for _ in range(3):
        assert not handler.poll_once()
    assert handler.version == 1
    assert lab.handler().load() == 1


def test_the_handler_follows_a_rollback(lab: Lab) -> None:
    handler = serving(lab)
    lab.train(C=0.01)
    assert handler.poll_once() and handler.version == 2
    lab.store.rollback(1)
    assert handler.poll_once()
    assert handler.version == 1
    assert handler.status.reloads == 3


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda fs, path: fs.rm(path), "current.json is missing: still serving version 1"),
        (lambda fs, path: fs.pipe_file(path, b"{not json"), "is not a valid pointer"),
    ],
    ids=["missing", "malformed"],
)
def test_a_broken_pointer_is_reported_and_the_old_version_kept(
    lab: Lab, data: Path, damage: Any, message: str
) -> None:
    errors = Errors()
    handler = serving(lab, errors)
    fs, pointer = behind_the_store(lab, lab.store.url("current.json"))
    before = fs.cat_file(pointer)
    damage(fs, pointer)
    assert not handler.poll_once()
    assert handler.predict(scores(data)).version == 1
    status = handler.status
    assert status.poll_failures == 1
    assert status.last_error and message in status.last_error
    assert isinstance(errors.seen[-1], ModelStepsError)

    fs.pipe_file(pointer, before)
    assert not handler.poll_once()
    status = handler.status
    assert (status.version, status.poll_failures, status.last_error) == (1, 1, None)


# -- S3 taken away and given back -------------------------------------------------------------


@pytest.fixture(scope="module")
def private_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[s3_helpers.MotoServer]:
    """A moto server this module may stop and restart; the session's server stays up."""
    log = tmp_path_factory.mktemp("private-moto") / "moto.log"
    server = s3_helpers.MotoServer(log).start()
    try:
        yield server
    finally:
        server.stop()


def snapshot(fs: Any, bucket: str) -> dict[str, bytes]:
    fs.invalidate_cache()
    return {path: fs.cat_file(path) for path in fs.find(bucket)}


def restore(server: s3_helpers.MotoServer, fs: Any, bucket: str, files: dict[str, bytes]) -> None:
    """moto keeps objects in memory: put the bucket back as it was before the outage."""
    s3_helpers.create_bucket(server.endpoint, bucket)
    for path, body in files.items():
        fs.pipe_file(path, body)


def test_an_s3_outage_is_ridden_out_with_backoff_and_recovered_from(
    private_server: s3_helpers.MotoServer, tmp_path: Path, data: Path
) -> None:
    bucket = s3_helpers.create_bucket(private_server.endpoint)
    options = s3_helpers.storage_options(private_server.endpoint)
    lab = make_lab(tmp_path, data, f"s3://{bucket}/models", storage_options=options)
    lab.train()
    fs, _ = behind_the_store(lab, f"s3://{bucket}")
    files = snapshot(fs, bucket)
    rows = scores(data)
    with lab.handler(poll_interval=0.05, max_backoff=0.4) as handler:
        assert handler.version == 1
        wait_for(lambda: handler.status.polls >= 2)

        private_server.stop()
        outage = time.monotonic()
        wait_for(lambda: handler.status.poll_failures >= 3)
        time.sleep(1.5)
        during = handler.status
        assert handler.predict(rows).values() == expected_labels(data, rows)
        seconds = time.monotonic() - outage
        assert during.poll_failures <= 4 + seconds / 0.4 * 1.2, "no backoff: polled in step"
        assert during.last_error and "cannot reach" in during.last_error

        private_server.start()  # the same port, so the handler's endpoint answers again
        restore(private_server, fs, bucket, files)
        back = datetime.now(UTC)
        wait_for(lambda: (handler.status.last_poll_ok_at or back) > back)
        recovered = handler.status
        assert recovered.last_poll_ok_at is not None
        assert (recovered.last_poll_ok_at - back).total_seconds() < 0.4 * 1.1 + 0.5
        assert (recovered.version, recovered.last_error) == (1, None)

        assert lab.train(C=0.01) == 2
        wait_for(lambda: handler.version == 2)
    assert handler.predict(rows).values() == expected_labels(data, rows, C=0.01)
