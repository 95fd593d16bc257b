"""Concurrent unary Decides decided together, as one `Engine.decide_many`.

A serving process spends about three times as much on a unary Decide as on the same
decision inside a DecideBatch: between two lone decisions, gRPC's per-call work evicts what
the next one needs from the CPU's caches, and each pays its own journal write and log
flush (bench/README.md). Under concurrent load, calls that arrive within a short wait
(`wait`, 1 ms by default) are decided together; each still gets its own outcome, exactly as
`Engine.decide` would give it.

Calls reach the engine one per turn of the event loop, so a batch only grows by waiting. A
lone caller gains nothing by that and would only lose the wait, so waiting adapts: it stays
on while waits gather ENOUGH calls on average (a moving mean), and while it is off one batch
in PROBE_EVERY waits, to find out whether calls come concurrently now (a lone caller's cost:
one call in PROBE_EVERY waits once).
"""

from __future__ import annotations

import asyncio

from nextbest.policy.engine import Engine
from nextbest.policy.events import Event
from nextbest.policy.requests import DecideInput

MAX_BATCH = 32  # DecideBatch's chunk
PROBE_EVERY = 256  # batches between two waits while waiting is off
ENOUGH = 1.5  # calls a wait must gather on average to be worth it
MEAN_WEIGHT = 0.2  # of the last wait in the moving mean of calls gathered


class _Batch:
    __slots__ = ("calls", "full")

    def __init__(self, full: asyncio.Future[None]) -> None:
        self.calls: list[tuple[DecideInput, asyncio.Future[Event]]] = []
        self.full = full  # set once the batch may go (full, or waited long enough)


class Coalescer:
    def __init__(self, engine: Engine, wait: float = 0.001, max_batch: int = MAX_BATCH) -> None:
        """`wait`: seconds a batch may wait for more calls (0: never wait)."""
        self.engine = engine
        self.wait = wait
        self.max_batch = max_batch
        self.waiting = False  # whether batches wait now (calls came concurrently)
        self._mean = 1.0  # calls a wait gathers, a moving mean (while waiting)
        self._open: _Batch | None = None  # the batch that arriving calls join
        self._batches = 0
        self.waited = 0  # batches that waited so far
        self.calls = 0  # calls so far
        self.coalesced = 0  # calls decided in a batch that waited (the rest went alone)
        self._tasks: set[asyncio.Task[None]] = set()

    async def decide(self, req: DecideInput) -> Event:
        """`Engine.decide`, decided with the calls that come while it waits."""
        self.calls += 1
        batch = self._open
        if batch is None:
            self._batches += 1
            probe = self._batches % PROBE_EVERY == 0
            if self.wait <= 0 or not (self.waiting or probe):
                return await self.engine.decide(req)  # alone: at once, as if not coalesced
            batch = self._open = self._start()
        answer: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        batch.calls.append((req, answer))
        if len(batch.calls) >= self.max_batch:
            self._close(batch)
        return await answer

    def _start(self) -> _Batch:
        """A batch that waits for the calls of the next `wait` seconds."""
        self.waited += 1
        loop = asyncio.get_running_loop()
        batch = _Batch(loop.create_future())
        task = loop.create_task(self._decide(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return batch

    def _gathered(self, n: int) -> None:
        """A wait gathered `n` calls: wait on while waits gather ENOUGH calls on average;
        a probe (waiting off) that gathers company turns it on."""
        self._mean = self._mean + (n - self._mean) * MEAN_WEIGHT if self.waiting else float(n)
        self.waiting = self._mean >= ENOUGH

    def _close(self, batch: _Batch) -> None:
        """No more calls join `batch`: it goes now."""
        if self._open is batch:
            self._open = None
        if not batch.full.done():
            batch.full.set_result(None)

    async def _decide(self, batch: _Batch) -> None:
        calls = batch.calls
        timer = asyncio.get_running_loop().call_later(self.wait, self._close, batch)
        try:
            await batch.full
        finally:
            timer.cancel()
        self._close(batch)
        self._gathered(len(calls))
        self.coalesced += len(calls)
        try:
            outcomes: list[Event | Exception] = await self.engine.decide_many(
                [req for req, _ in calls]
            )
        except asyncio.CancelledError:  # the server is stopping
            for _, answer in calls:
                answer.cancel()
            raise
        except Exception as exc:  # the engine failed as a whole: every call fails with it
            outcomes = [exc] * len(calls)
        for (_, answer), outcome in zip(calls, outcomes, strict=True):
            if answer.done():  # its call was cancelled meanwhile (its deadline passed)
                continue
            if isinstance(outcome, Exception):
                answer.set_exception(outcome)
            else:
                answer.set_result(outcome)
