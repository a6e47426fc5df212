"""Adaptive micro-batching: requests that arrive while a prediction runs share the next one.

A forest answers one record in about 2 ms and 1,000 records in about 8 ms: almost all of a
one-record call is per-call overhead (input checks in every step, one Python call per tree).
So concurrent callers of one handler queue their checked frames, and one of them (the leader)
predicts the queue's head and every other request for the same version, up to ``max_rows``
rows, as one frame; each caller gets back its own rows. Nothing waits when nothing else is
coming: a lone caller leads at once, and a leader holds a batch open (at most ``max_wait``
seconds) only while other callers are still checking their records, about to join.

One batch runs at a time per handler, led by one of the callers' own threads (no thread of its
own to start or stop): under the GIL, concurrent predictions only add contention, so this also
bounds the CPU each request costs. A batch never mixes versions: callers queue with the
version they checked their records against. If a batch fails, its requests are predicted one
by one, so a record the model refuses fails only the request that sent it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from model_steps.libraries import library

if TYPE_CHECKING:
    from pandas import DataFrame  # type: ignore[import-untyped, unused-ignore]

__all__ = ["Arrival", "Batcher", "Batching"]


@dataclass(frozen=True)
class Batching:
    """How far a handler may combine concurrent requests.

    Args:
        max_rows: rows in one batch at most; a larger request runs on its own.
        max_wait: seconds a batch may stay open for callers still checking their records.
    """

    max_rows: int = 64
    max_wait: float = 0.002

    def __post_init__(self) -> None:
        if self.max_rows < 1 or not 0 <= self.max_wait <= 1:
            raise ValueError(
                f"expected max_rows >= 1 and 0 <= max_wait <= 1 second; got {self.max_rows} "
                f"and {self.max_wait}"
            )


class _Ticket:
    """One caller's frame, waiting in the queue, and then its result.

    A caller on an event loop waits on an ``asyncio.Event`` (set from the leader's thread
    through the loop), any other caller on a ``threading.Event``.
    """

    __slots__ = ("error", "frame", "key", "leads", "loop", "output", "ready", "rows")

    def __init__(
        self, key: object, frame: DataFrame, loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        self.key = key
        self.frame = frame
        self.rows = len(frame)
        self.loop = loop
        self.ready: threading.Event | asyncio.Event = (
            threading.Event() if loop is None else asyncio.Event()
        )
        self.leads = False
        self.output: DataFrame | None = None
        self.error: BaseException | None = None

    def wake(self) -> None:
        """Wake the caller: its result is in, or it leads the next batch."""
        if self.loop is None:
            self.ready.set()
            return
        with contextlib.suppress(RuntimeError):  # its loop closed: nobody waits for this one
            self.loop.call_soon_threadsafe(self.ready.set)

    def result(self) -> DataFrame:
        if self.error is not None:
            raise self.error
        assert self.output is not None
        return self.output


Predict = Callable[[Any, "DataFrame"], "DataFrame"]


class Arrival:
    """A caller announced to a batcher before it runs: closing it (or running) counts it out."""

    def __init__(self, batcher: Batcher) -> None:
        self.batcher = batcher
        self.open = True

    def close(self) -> None:
        """The caller will not run (its request failed before): batches stop waiting for it."""
        self.batcher._arrived(self)

    def __enter__(self) -> Arrival:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Batcher:
    """Combines concurrent :meth:`run` calls for the same key into one ``predict`` call.

    ``predict(key, frame)`` computes one output row per input row, in order; ``key`` is what
    a batch must not mix (a handler's loaded version).
    """

    def __init__(self, policy: Batching, predict: Predict) -> None:
        self.policy = policy
        self._predict = predict
        self._lock = threading.Condition(threading.Lock())
        self._queue: deque[_Ticket] = deque()
        self._leading = False
        self._arriving = 0
        self.requests = 0
        """Requests taken into batches so far."""
        self.batches = 0
        """Batches run so far."""

    def arriving(self) -> Arrival:
        """Announce a caller that will :meth:`run` soon: a batch may wait a moment for it."""
        with self._lock:
            self._arriving += 1
        return Arrival(self)

    def run(
        self, key: object, prepare: Callable[[], DataFrame], arrival: Arrival | None = None
    ) -> DataFrame:
        """Predict the frame ``prepare()`` checks, with ``key``, batched with others for it.

        The caller counts as arriving from ``arrival`` (announced by :meth:`arriving`, when
        its request came in) or else from this call, until its frame is queued.
        """
        arrival = arrival or self.arriving()
        try:
            ticket = _Ticket(key, prepare())
        except BaseException:
            arrival.close()
            raise
        self._queue_up(ticket, arrival)
        if not ticket.leads:
            ticket.ready.wait()
        if ticket.leads:  # first in line, or handed the lead by the batch before
            self._lead()
        return ticket.result()

    async def run_async(
        self, key: object, frame: DataFrame, arrival: Arrival | None = None
    ) -> DataFrame:
        """Predict a checked frame for a caller on an event loop, which no thread waits for.

        Only a batch's leader takes a thread (the loop's default executor) to predict; the
        others wait on the loop, so a request costs no thread hop of its own.
        """
        loop = asyncio.get_running_loop()
        ticket = _Ticket(key, frame, loop)
        self._queue_up(ticket, arrival or self.arriving())
        if not ticket.leads:
            try:
                await ticket.ready.wait()  # type: ignore[misc]
            except BaseException:  # cancelled: the client left, or its request timed out
                self._withdraw(ticket)
                raise
        if ticket.leads:  # once submitted, the batch runs to its end even if this caller leaves
            await loop.run_in_executor(None, self._lead)
        return ticket.result()

    def _lead(self) -> None:
        """Take a batch from the head of the queue, predict it, wake its callers, hand over."""
        batch = self._take()
        try:
            self._run_batch(batch)
        finally:
            self._release(batch)
            self._hand_over()

    def _arrived(self, arrival: Arrival) -> None:
        """Count an announced caller out, once: it queued, or it will not come."""
        with self._lock:
            if arrival.open:
                arrival.open = False
                self._arriving -= 1
                self._lock.notify_all()

    def _queue_up(self, ticket: _Ticket, arrival: Arrival) -> None:
        """Queue the ticket and count its caller out, at once: a leader sees one or the other."""
        with self._lock:
            if arrival.open:
                arrival.open = False
                self._arriving -= 1
            self._queue.append(ticket)
            ticket.leads = not self._leading
            self._leading = True
            self._lock.notify_all()

    def _take(self) -> list[_Ticket]:
        """The head of the queue and what may join it, once nobody else is about to."""
        deadline = time.monotonic() + self.policy.max_wait
        with self._lock:
            while True:
                batch = self._gather()
                full = sum(t.rows for t in batch) >= self.policy.max_rows
                left = deadline - time.monotonic()
                if full or self._arriving == 0 or left <= 0:
                    break
                self._lock.wait(left)
            for ticket in batch:
                self._queue.remove(ticket)
            self.requests += len(batch)
            self.batches += 1
        return batch

    def _gather(self) -> list[_Ticket]:
        """The head, then queued tickets of its key, in order, while they fit in a batch."""
        head = self._queue[0]
        batch, rows = [head], head.rows
        for ticket in list(self._queue)[1:]:
            if ticket.key is head.key and rows + ticket.rows <= self.policy.max_rows:
                batch.append(ticket)
                rows += ticket.rows
        return batch

    def _withdraw(self, ticket: _Ticket) -> None:
        """Take a caller that stopped waiting out of line, passing on the lead it was handed.

        A ticket a leader already took into its batch is left to it: the batch's other callers
        get their rows, and waking the departed caller costs nothing. A ticket still queued
        leaves the queue, so no batch predicts for nobody; if it had been handed the lead, the
        next in line leads instead, or nobody will and every later caller would wait forever.
        """
        with self._lock:
            if ticket not in self._queue:
                return
            self._queue.remove(ticket)
            successor = self._successor() if ticket.leads else None
        if successor is not None:
            successor.wake()

    def _hand_over(self) -> None:
        """Pass the lead to the next caller in line, or put it down."""
        with self._lock:
            successor = self._successor()
        if successor is not None:
            successor.wake()

    def _successor(self) -> _Ticket | None:
        """Give the lead to the head of the queue, or put it down if nobody waits (locked)."""
        if not self._queue:
            self._leading = False
            return None
        successor = self._queue[0]
        successor.leads = True
        return successor

    def _run_batch(self, batch: list[_Ticket]) -> None:
        """Predict the batch as one frame and hand each caller its rows; alone if that fails."""
        output = None
        if len(batch) > 1:
            try:
                output = self._together(batch)
            except Exception:  # retried one by one: only the request at fault fails
                output = None
        if output is not None:
            self._split(batch, output)
            return
        for ticket in batch:
            self._alone(ticket)

    def _release(self, batch: list[_Ticket]) -> None:
        """Wake every caller of the batch, with an error if the leader stopped short."""
        for ticket in batch:
            if ticket.output is None and ticket.error is None:
                ticket.error = RuntimeError("the batch this request was in was interrupted")
            if not ticket.leads:  # the leader is not waiting: it ran the batch
                ticket.wake()

    def _together(self, batch: list[_Ticket]) -> DataFrame:
        pd = library("pandas")
        frame = pd.concat([ticket.frame for ticket in batch], ignore_index=True)
        output = self._predict(batch[0].key, frame)
        if len(output) != len(frame):
            raise ValueError("a batch's output has not one row per input row")
        return output

    def _split(self, batch: list[_Ticket], output: DataFrame) -> None:
        start = 0
        for ticket in batch:
            end = start + ticket.rows
            ticket.output = output.iloc[start:end].reset_index(drop=True)
            start = end

    def _alone(self, ticket: _Ticket) -> None:
        try:
            ticket.output = self._predict(ticket.key, ticket.frame)
        except Exception as error:  # handed to its caller, who raises it
            ticket.error = error
