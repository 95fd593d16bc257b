"""Concurrent unary Decides decided together (`api.coalesce`): each call gets what
`Engine.decide` would give it, a lone caller does not wait, and concurrency turns waiting on."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from nextbest.api.coalesce import PROBE_EVERY, Coalescer
from nextbest.policy.engine import Engine
from nextbest.policy.errors import InvalidArgument, NotFound
from nextbest.policy.events import Event
from nextbest.policy.ports import NullListener
from nextbest.policy.requests import DecideInput
from nextbest.store.memory import MemoryStore
from tests.conftest import make_config, support_policy

OK = {"account_age_days": 400.0, "amount": 50.0}


class Told(NullListener):
    def __init__(self) -> None:
        self.batches: list[int] = []

    def decided(self, events: Sequence[Event]) -> None:
        self.batches.append(len(events))


def coalescer(wait: float = 0.05, waiting: bool = True) -> tuple[Coalescer, Told]:
    told = Told()
    engine = Engine(make_config(p=support_policy()), MemoryStore(), told, lambda: 1_000.0)
    c = Coalescer(engine, wait)
    c.waiting = waiting
    return c, told


def request(event_id: str = "", policy: str = "p", amount: float = 50.0) -> DecideInput:
    return DecideInput(policy, "billing_dispute", dict(OK, amount=amount), event_id=event_id)


async def concurrently(c: Coalescer, reqs: list[DecideInput]) -> list[Event | BaseException]:
    return await asyncio.gather(*(c.decide(r) for r in reqs), return_exceptions=True)


def test_concurrent_calls_are_decided_together_each_with_its_own_outcome() -> None:
    async def main() -> None:
        c, told = coalescer()
        reqs = [request(f"e{i}") for i in range(6)]
        reqs[2] = request("gone", policy="nope")
        reqs[4] = DecideInput("p", "billing_dispute", {"amount": float("inf")})
        out = await concurrently(c, reqs)
        assert told.batches == [4]  # one step for the four that could be decided
        assert (c.calls, c.coalesced, c.waited) == (6, 6, 1)
        assert [type(o).__name__ for o in out] == [
            "Event",
            "Event",
            "NotFound",
            "Event",
            "InvalidArgument",
            "Event",
        ]
        assert isinstance(out[2], NotFound)
        assert isinstance(out[4], InvalidArgument)
        assert out[4].field == "context['amount']"
        alone = await c.engine.decide(request("e0"))  # a retry: what the batch kept
        assert isinstance(out[0], Event)
        assert (alone.action_id, alone.pmf) == (out[0].action_id, out[0].pmf)

    asyncio.run(main())


def test_a_full_batch_goes_at_once_and_the_next_calls_make_another() -> None:
    async def main() -> None:
        c, told = coalescer(wait=30.0)  # a batch that fills never waits that long
        c.max_batch = 4
        out = await asyncio.wait_for(concurrently(c, [request() for _ in range(8)]), 10)
        assert all(isinstance(o, Event) for o in out)
        assert told.batches == [4, 4]

    asyncio.run(main())


def test_a_lone_caller_waits_only_to_probe_and_concurrency_turns_waiting_on() -> None:
    async def main() -> None:
        c, told = coalescer(waiting=False)
        for _ in range(2 * PROBE_EVERY):
            await c.decide(request())
        assert c.waited == 2  # two probes, each found no other call
        assert (c.calls, c.coalesced) == (2 * PROBE_EVERY, 2)
        assert not c.waiting
        assert told.batches == [1] * (2 * PROBE_EVERY)
        for _ in range(PROBE_EVERY - 1 - (2 * PROBE_EVERY) % PROBE_EVERY):
            await c.decide(request())
        await concurrently(c, [request() for _ in range(5)])  # the next batch probes
        assert told.batches[-1] == 5
        assert c.waiting

    asyncio.run(main())


def test_waiting_turns_off_when_waits_stop_gathering_calls() -> None:
    async def main() -> None:
        c, _ = coalescer(wait=0.001)
        lone = 0
        while c.waiting:
            await c.decide(request())
            lone += 1
            assert lone < 20
        assert c.waited == lone

    asyncio.run(main())


def test_a_call_cancelled_while_it_waits_leaves_the_others_answered() -> None:
    async def main() -> None:
        c, told = coalescer(wait=0.2)
        calls = [asyncio.ensure_future(c.decide(request(f"c{i}"))) for i in range(3)]
        await asyncio.sleep(0)  # all three joined the batch
        calls[1].cancel()
        done = await asyncio.gather(*calls, return_exceptions=True)
        assert isinstance(done[0], Event)
        assert isinstance(done[1], asyncio.CancelledError)
        assert isinstance(done[2], Event)
        assert told.batches == [3]  # decided all the same: a retry of c1 gets it

    asyncio.run(main())


def test_no_wait_means_each_call_is_decided_alone() -> None:
    async def main() -> None:
        c, told = coalescer(wait=0.0)
        await concurrently(c, [request() for _ in range(PROBE_EVERY + 3)])
        assert told.batches == [1] * (PROBE_EVERY + 3)
        assert c.waited == 0

    asyncio.run(main())
