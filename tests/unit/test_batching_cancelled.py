"""Callers that leave a batcher while they wait: the others still get their own answers.

A caller on the event loop is cancelled when its client disconnects or its request times out.
Wherever that happens (queued behind a running batch, handed the lead of the next one, inside a
batch that runs, or every caller at once), the remaining callers get the rows they sent back
transformed, nobody waits forever, and later requests are served.

The batcher predicts with a function the test holds at a gate, so each test decides exactly
which callers are queued, leading or inside a running batch when it cancels some of them.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable

import pandas as pd
import pytest

from model_steps.serving.batching import Batcher, Batching

KEY = "v1"
SECONDS = 5.0


class Gated:
    """A predict function that answers ``value * 10`` per row once the test opens its gate."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self._gate = threading.Semaphore(0)

    def __call__(self, key: object, frame: pd.DataFrame) -> pd.DataFrame:
        self.batches.append(list(frame["value"]))
        if not self._gate.acquire(timeout=SECONDS):
            raise TimeoutError("the test never opened the gate")
        return pd.DataFrame({"answer": frame["value"] * 10})

    def open(self, batches: int = 1) -> None:
        """Let that many predictions (running or to come) finish."""
        self._gate.release(batches)

    async def running(self, count: int) -> None:
        """Wait until ``count`` predictions have started."""
        deadline = time.monotonic() + SECONDS
        while len(self.batches) < count:
            assert time.monotonic() < deadline, f"{count} predictions never started"
            await asyncio.sleep(0.001)


def frame(value: int) -> pd.DataFrame:
    return pd.DataFrame({"value": [value]})


async def answer(batcher: Batcher, value: int) -> int:
    output = await batcher.run_async(KEY, frame(value))
    return int(output["answer"].iloc[0])


def run(scenario: Callable[[Batcher, Gated], Awaitable[None]]) -> Gated:
    """Run ``scenario`` on a fresh batcher; a caller left waiting fails it instead of hanging."""
    predict = Gated()
    batcher = Batcher(Batching(max_rows=64, max_wait=0.0), predict)

    async def bounded() -> None:
        await asyncio.wait_for(scenario(batcher, predict), SECONDS)

    asyncio.run(bounded())
    return predict


async def queue_behind_a_batch(
    batcher: Batcher, predict: Gated, behind: int
) -> tuple[asyncio.Task[int], list[asyncio.Task[int]]]:
    """Caller 1, predicting alone at the gate, and callers 2 to ``behind + 1`` queued behind."""
    leader = asyncio.create_task(answer(batcher, 1))
    await predict.running(1)
    queued = [asyncio.create_task(answer(batcher, value)) for value in range(2, behind + 2)]
    await asyncio.sleep(0.01)
    return leader, queued


async def still_served(batcher: Batcher, predict: Gated, value: int) -> None:
    """A request after the cancellations gets its answer."""
    later = asyncio.create_task(answer(batcher, value))
    predict.open()
    assert await later == value * 10


def test_a_caller_cancelled_while_queued_leaves_the_batch_and_the_others_get_their_rows() -> None:
    async def scenario(batcher: Batcher, predict: Gated) -> None:
        leader, queued = await queue_behind_a_batch(batcher, predict, 4)
        queued[2].cancel()  # caller 4 leaves before its batch runs
        predict.open(2)
        assert await leader == 10
        assert [await task for i, task in enumerate(queued) if i != 2] == [20, 30, 50]
        assert queued[2].cancelled()
        await still_served(batcher, predict, 7)

    predict = run(scenario)
    assert predict.batches == [[1], [2, 3, 5], [7]]  # nothing was predicted for caller 4


def test_a_caller_cancelled_after_being_handed_the_lead_passes_it_on() -> None:
    async def scenario(batcher: Batcher, predict: Gated) -> None:
        leader, queued = await queue_behind_a_batch(batcher, predict, 3)
        predict.open()
        time.sleep(0.3)  # holds the loop: the batch ends and hands caller 2 the lead meanwhile
        queued[0].cancel()  # handed the next batch's lead, gone before it could start it
        assert await leader == 10
        await predict.running(2)
        predict.open()
        assert [await queued[1], await queued[2]] == [30, 40]
        await still_served(batcher, predict, 5)

    predict = run(scenario)
    assert predict.batches[-1] == [5]


def test_callers_cancelled_while_their_batch_runs_leave_the_others_their_answers() -> None:
    async def scenario(batcher: Batcher, predict: Gated) -> None:
        first, queued = await queue_behind_a_batch(batcher, predict, 4)
        predict.open()
        assert await first == 10
        await predict.running(2)  # 2, 3, 4 and 5 predict together, led by 2
        queued[0].cancel()  # the batch's leader
        queued[2].cancel()
        predict.open()
        assert [await queued[1], await queued[3]] == [30, 50]
        await still_served(batcher, predict, 6)

    predict = run(scenario)
    assert predict.batches == [[1], [2, 3, 4, 5], [6]]


def test_when_every_caller_is_cancelled_later_requests_are_still_served() -> None:
    async def scenario(batcher: Batcher, predict: Gated) -> None:
        leader, queued = await queue_behind_a_batch(batcher, predict, 3)
        for task in [leader, *queued]:
            task.cancel()
        await asyncio.gather(leader, *queued, return_exceptions=True)
        predict.open()  # the running batch finishes for nobody
        await still_served(batcher, predict, 9)

    predict = run(scenario)
    assert predict.batches == [[1], [9]]


@pytest.mark.parametrize("cancelled", [0, 1, 2, 3])
def test_any_one_caller_cancelled_from_a_queue_leaves_the_rest_their_own_answers(
    cancelled: int,
) -> None:
    async def scenario(batcher: Batcher, predict: Gated) -> None:
        leader, queued = await queue_behind_a_batch(batcher, predict, 4)
        queued[cancelled].cancel()
        await asyncio.sleep(0)
        predict.open(2)
        kept = [task for i, task in enumerate(queued) if i != cancelled]
        answers = await asyncio.gather(leader, *kept)
        assert answers == [10] + [(i + 2) * 10 for i in range(4) if i != cancelled]

    run(scenario)
