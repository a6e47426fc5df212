"""Micro-batching: concurrent predict calls share predictions, and nothing else changes.

The model has a step that sleeps a little while it predicts, so concurrent callers really do
arrive while a prediction runs; the answers are compared with a handler that batches nothing.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from model_steps.errors import InvalidInputError
from model_steps.serving.batching import Batching
from model_steps.serving.handler import ModelHandler
from tests.lab import (
    CLASSES,
    FEATURES,
    Lab,
    expected_labels,
    expected_probabilities,
    make_lab,
    pause_step,
    scores,
    wait_for,
    write_iris,
)

CLIENTS = 8


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_iris(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def slow_lab(tmp_path_factory: pytest.TempPathFactory, data: Path) -> Lab:
    """A model whose every prediction takes 20 ms, with one published version."""
    lab = make_lab(tmp_path_factory.mktemp("batching"), data, step=pause_step("batching_pause"))
    lab.train(pause={"seconds": 0.02})
    return lab


def loaded(lab: Lab, **options: Any) -> ModelHandler:
    handler = lab.handler(**options)
    handler.load()
    return handler


def concurrently(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run ``calls`` on CLIENTS threads at once; each result, or the exception it raised."""
    results: list[Any] = [None] * len(calls)
    start = threading.Barrier(CLIENTS)

    def client(offset: int) -> None:
        start.wait()
        for index in range(offset, len(calls), CLIENTS):
            try:
                results[index] = calls[index]()
            except Exception as error:
                results[index] = error

    threads = [threading.Thread(target=client, args=(offset,)) for offset in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_concurrent_requests_share_predictions_and_get_their_unbatched_answers(
    slow_lab: Lab, data: Path
) -> None:
    records = scores(data).to_dict(orient="records")
    unbatched = loaded(slow_lab, batching=None)
    expected = [unbatched.predict(record).values() for record in records]
    handler = loaded(slow_lab)
    answers = concurrently([lambda r=r: handler.predict(r) for r in records])  # type: ignore[misc]
    assert [answer.values() for answer in answers] == expected
    status = handler.status
    assert status.predict_requests == len(records)
    assert status.predict_batches <= len(records) / 2  # one 20 ms prediction served several


def test_requests_over_http_bodies_batch_the_same_way(slow_lab: Lab, data: Path) -> None:
    rows = scores(data)
    bodies = [rows.iloc[[i]].to_json(orient="records").encode() for i in range(len(rows))]
    handler = loaded(slow_lab)
    answers = concurrently([lambda b=b: handler.predict_json(b) for b in bodies])  # type: ignore[misc]
    assert [a.values()[0] for a in answers] == expected_labels(data, rows)
    assert handler.status.predict_batches < len(bodies)


def test_callers_on_an_event_loop_batch_without_a_thread_each(slow_lab: Lab, data: Path) -> None:
    rows = scores(data)
    bodies = [rows.iloc[[i]].to_json(orient="records").encode() for i in range(len(rows))]
    handler = loaded(slow_lab)

    async def clients() -> list[Any]:
        return await asyncio.gather(*(handler.predict_json_async(body) for body in bodies))

    answers = asyncio.run(clients())
    assert [a.values()[0] for a in answers] == expected_labels(data, rows)
    assert handler.status.predict_batches <= 3  # the first alone, then the rest together


def test_a_record_the_model_refuses_fails_only_its_own_request(slow_lab: Lab, data: Path) -> None:
    good = scores(data).to_dict(orient="records")
    bad = {**good[0], "petal_width": None}  # the logistic regression refuses NaN
    handler = loaded(slow_lab)
    calls = [lambda r=r: handler.predict(r) for r in good[:15]]
    calls.insert(7, lambda: handler.predict(bad))
    answers = concurrently(calls)  # type: ignore[arg-type]
    refused = answers.pop(7)
    assert isinstance(refused, InvalidInputError)
    assert "cannot predict these records" in str(refused)
    expected = expected_labels(data, scores(data).head(15))
    assert [answer.values()[0] for answer in answers] == expected


def test_records_refused_by_their_checks_never_reach_a_batch(slow_lab: Lab) -> None:
    handler = loaded(slow_lab)
    with pytest.raises(InvalidInputError, match="unknown column 'colour'"):
        handler.predict({**dict.fromkeys(FEATURES, 1.0), "colour": "blue"})
    assert handler.status.predict_requests == 0


def answered_by(probabilities: list[float], per_version: dict[int, Any], index: int) -> int:
    """The one version whose probabilities for row ``index`` these are."""
    (version,) = [
        v for v, expected in per_version.items() if np.allclose(probabilities, expected[index])
    ]
    return version


def test_a_reload_while_requests_batch_fails_none_and_each_answer_is_the_named_version(
    data: Path, tmp_path: Path
) -> None:
    lab = make_lab(
        tmp_path, data, step=pause_step("batching_reload_pause"), predict="predict_proba"
    )
    rows = scores(data)
    records = rows.to_dict(orient="records")
    trainings = {1: (1.0, True), 2: (0.01, False), 3: (0.1, True)}
    per_version = {
        v: expected_probabilities(data, rows, *trained) for v, trained in trainings.items()
    }
    for one, other in itertools.combinations(per_version.values(), 2):  # every row tells them apart
        assert not np.isclose(one, other, atol=1e-3).all(axis=1).any()
    lab.train(C=1.0, pause={"seconds": 0.005})
    handler = loaded(lab)
    answers: list[Any] = []
    stop = threading.Event()

    def client(offset: int) -> None:
        while not stop.is_set():
            index = offset % len(records)
            try:
                prediction = handler.predict(records[index])
                (row,) = prediction.values()
                answers.append((prediction.version, index, [row[c] for c in CLASSES]))
            except Exception as error:
                answers.append(error)
            offset += CLIENTS

    clients = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in clients:
        thread.start()
    try:
        for version in (2, 3):
            C, with_std = trainings[version]
            assert lab.train(C=C, with_std=with_std, pause={"seconds": 0.005}) == version
            assert handler.poll_once()
        wait_for(lambda: any(not isinstance(a, Exception) and a[0] == 3 for a in answers))
    finally:
        stop.set()
        for thread in clients:
            thread.join()
    assert not [a for a in answers if isinstance(a, Exception)]
    assert {version for version, _, _ in answers} == {1, 2, 3}
    assert all(answered_by(p, per_version, i) == version for version, i, p in answers)
    assert handler.status.predict_batches < handler.status.predict_requests


def test_batching_can_be_turned_off_per_handler(slow_lab: Lab, data: Path) -> None:
    records = scores(data).to_dict(orient="records")[:16]
    handler = loaded(slow_lab, batching=None)
    concurrently([lambda r=r: handler.predict(r) for r in records])  # type: ignore[misc]
    assert handler.batching is None
    assert handler.status.predict_batches == handler.status.predict_requests == 16


def test_a_batch_holds_at_most_max_rows(slow_lab: Lab, data: Path) -> None:
    records = scores(data).to_dict(orient="records")[:16]
    handler = loaded(slow_lab, batching=Batching(max_rows=2))
    concurrently([lambda r=r: handler.predict(r) for r in records])  # type: ignore[misc]
    assert handler.status.predict_batches >= 8


@pytest.mark.parametrize(("rows", "wait"), [(0, 0.002), (64, -1.0), (64, 5.0)])
def test_batching_settings_are_checked(rows: int, wait: float) -> None:
    with pytest.raises(ValueError, match="expected max_rows >= 1 and 0 <= max_wait <= 1"):
        Batching(max_rows=rows, max_wait=wait)
