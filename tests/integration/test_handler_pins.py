"""A pin serves an older published version, never one the gate or a person held back.

Pinning is a handler's own rollback: it may pick any published version (or one a person
approved), but a candidate the gate refused, one still waiting for approval (staged, never
published) or one a person rejected is refused with its reason and the versions that may be
pinned instead. Every scenario runs on local disk and on the S3 test server.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from model_steps.errors import NotServableError
from tests.integration.test_handler_faults import data, lab
from tests.lab import Lab, expected_labels, scores

__all__ = ["data", "lab"]  # the local and S3 lab fixtures, shared with the fault tests

pytestmark = pytest.mark.integration


def test_a_pin_serves_an_older_published_version(lab: Lab, data: Path) -> None:
    lab.train(C=0.01)
    lab.train()
    handler = lab.handler(pin=1)
    assert handler.load() == 1
    rows = scores(data)
    assert handler.predict(rows).values() == expected_labels(data, rows, C=0.01)


def test_a_pin_on_a_candidate_the_gate_refused_is_refused_with_the_servable_versions(
    lab: Lab,
) -> None:
    lab.train()
    lab.train()
    refused = lab.candidate("refused")
    with pytest.raises(NotServableError) as caught:
        lab.handler(pin=refused).load()
    assert str(caught.value) == (
        "cannot pin version 3 of 'iris': it is refused, never published (the gate refused "
        "it; the gate's reason: the test's gate said refused); a pin serves only published "
        "versions: 2 (live), 1"
    )


def test_starting_a_handler_pinned_to_a_refused_version_raises_instead_of_never_getting_ready(
    lab: Lab,
) -> None:
    lab.train()
    refused = lab.candidate("refused")
    handler = lab.handler(pin=refused)
    with pytest.raises(NotServableError, match="cannot pin version 2 of 'iris': it is refused"):
        handler.start()
    assert handler.version is None
    polling = [t for t in threading.enumerate() if t.name == "model-steps-poll-iris"]
    assert polling == []  # nothing left behind that would poll for ever


def test_a_pin_on_a_candidate_waiting_for_approval_is_refused_until_a_person_approves(
    lab: Lab,
) -> None:
    lab.train()
    waiting = lab.candidate("pending", C=0.01)
    handler = lab.handler(pin=waiting)
    with pytest.raises(NotServableError, match=r"it is pending, never published \(it waits for a"):
        handler.load()
    assert handler.version is None
    lab.store.approve(waiting, by="alice")
    assert handler.load() == waiting


def test_a_pin_on_a_rejected_candidate_is_refused(lab: Lab) -> None:
    waiting = lab.candidate("pending")
    lab.store.reject(waiting, by="bob", reason="worse recall")
    with pytest.raises(NotServableError) as caught:
        lab.handler(pin=waiting).load()
    assert "it is rejected, never published (a person rejected it)" in str(caught.value)
    assert str(caught.value).endswith("a pin serves only published versions: 'iris' has none yet")


def test_pinning_a_refused_version_keeps_serving_and_following_the_pointer(
    lab: Lab, data: Path
) -> None:
    lab.train()
    handler = lab.handler()
    assert handler.load() == 1
    refused = lab.candidate("refused", C=0.01)
    with pytest.raises(NotServableError, match="cannot pin version 2 of 'iris': it is refused"):
        handler.pin(refused)
    assert handler.version == 1
    assert handler.predict(scores(data)).version == 1
    assert "it is refused" in (handler.status.last_error or "")
    assert handler.status.pinned is None  # still following the pointer
    lab.train()
    assert handler.poll_once() and handler.version == 3
