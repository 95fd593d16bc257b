"""A serving replica's spool, in process against a real redis-server that the tests stop
and start: what it keeps while Redis is unreachable, how it hands it over, and what it
refuses."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from nextbest import tasks
from nextbest.policy.engine import Engine
from nextbest.policy.errors import DecisionError, Unavailable
from nextbest.policy.events import Event, JoinStatus, RewardStatus
from nextbest.policy.ports import NullListener
from nextbest.policy.requests import DecideInput, RewardInput
from nextbest.store.redis.connection import connect
from nextbest.store.redis.spool import SpoolingStore
from nextbest.store.redis.store import RedisEventStore
from tests.conftest import make_config, support_policy
from tests.redis_server import RedisServer

CONFIG = make_config(p=support_policy())
OK_REFUND = {"account_age_days": 400.0, "amount": 50.0}


@dataclass
class Watcher:
    """Records what a spool reports."""

    spooled_kinds: list[str] = field(default_factory=list)
    replayed_kinds: list[str] = field(default_factory=list)
    dropped_reasons: list[tuple[str, str]] = field(default_factory=list)
    states: list[tuple[bool, int, int, bool]] = field(default_factory=list)
    fullness: list[bool] = field(default_factory=list)

    def spooled(self, kind: str) -> None:
        self.spooled_kinds.append(kind)

    def replayed(self, kind: str) -> None:
        self.replayed_kinds.append(kind)

    def dropped(self, kind: str, reason: DecisionError) -> None:
        self.dropped_reasons.append((kind, type(reason).__name__))

    def state(self, reachable: bool, records: int, size: int, full: bool) -> None:
        self.states.append((reachable, records, size, full))


@dataclass
class Replica:
    engine: Engine
    spool: SpoolingStore
    redis: RedisEventStore
    watcher: Watcher


@asynccontextmanager
async def replica(url: str, directory: Path, max_bytes: int = 1 << 20) -> AsyncIterator[Replica]:
    client = await connect(url)
    redis = RedisEventStore(client, lambda: CONFIG.policies)
    watcher = Watcher()
    spool = SpoolingStore(
        redis, directory, watcher, max_bytes=max_bytes, on_full=watcher.fullness.append
    )
    engine = Engine(CONFIG, spool, NullListener(), time.time, learns=False)
    try:
        yield Replica(engine, spool, redis, watcher)
    finally:
        engine.shutdown()
        spool.release()
        await client.aclose()


def decide(engine: Engine, event_id: str = "", amount: float = 50.0) -> DecideInput:
    return DecideInput(
        policy="p",
        intent="billing_dispute",
        context=dict(OK_REFUND, amount=amount),
        event_id=event_id,
    )


async def until(condition: Callable[[], bool], within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)  # polling a condition


async def fill(r: Replica, kept: list[Event]) -> None:
    """Decide until the spool refuses."""
    for _ in range(1000):
        kept.append(await r.engine.decide(decide(r.engine)))


@asynccontextmanager
async def replaying(r: Replica) -> AsyncIterator[None]:
    task = asyncio.create_task(r.spool.run(r.engine.reward))
    try:
        yield
    finally:
        await tasks.stop([task])


def test_a_spool_a_crash_left_is_replayed_and_counts_nothing_twice(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async def main() -> None:
        spool_dir = tmp_path / "spool"
        async with replica(redis_server.url, spool_dir) as a:
            before = await a.engine.decide(decide(a.engine))
            redis_server.stop()
            during = await a.engine.decide(decide(a.engine, event_id="during-1"))
            assert a.watcher.spooled_kinds == ["decision"]
            joined = await a.engine.reward(RewardInput(during.event_id, value=0.5))
            assert joined.status is RewardStatus.ACCEPTED  # `earliest`: closed here, spooled
            queued = await a.engine.reward(RewardInput(before.event_id, value=1.0))
            assert queued.status is RewardStatus.QUEUED
            assert a.spool.records == 2
            # a crash: the process ends with the spool unreplayed
        copy = tmp_path / "copy"
        shutil.copytree(spool_dir, copy)
        (copy / "lock").unlink()
        redis_server.start()
        for directory in (spool_dir, copy):  # the copy: a crash after the replay, before
            async with replica(redis_server.url, directory) as b:  # the files went
                assert b.spool.records == 2
                async with replaying(b):
                    await until(lambda b=b: b.spool.records == 0)  # type: ignore[misc]
                assert b.watcher.replayed_kinds == ["decision", "reward"]
        async with replica(redis_server.url, tmp_path / "reader") as reader:
            held = await reader.redis.get(during.event_id)
            assert held is not None
            assert [r.value for r in held.rewards] == [0.5]
            assert held.join_status is JoinStatus.LEARNED  # closed on the replica, replayed
            held = await reader.redis.get(before.event_id)
            assert held is not None
            assert [r.value for r in held.rewards] == [1.0]
            assert held.rewards[0].status is RewardStatus.ACCEPTED  # as received, in time

    asyncio.run(main())


def test_a_full_spool_refuses_and_says_so_until_its_replay(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async def main() -> None:
        async with replica(redis_server.url, tmp_path / "spool", max_bytes=8192) as a:
            redis_server.stop()
            kept = [await a.engine.decide(decide(a.engine))]
            with pytest.raises(Unavailable, match="spool is full"):
                await fill(a, kept)
            assert a.watcher.fullness == [True]
            redis_server.start()
            async with replaying(a):
                await until(lambda: a.watcher.fullness == [True, False])
            assert a.spool.records == 0
            for event in kept:  # everything acknowledged is in Redis
                assert await a.redis.get(event.event_id) is not None
            assert a.watcher.states[-1] == (True, 0, 0, False)

    asyncio.run(main())


def test_an_id_used_meanwhile_and_an_unknown_event_are_dropped_and_counted(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async def main() -> None:
        async with (
            replica(redis_server.url, tmp_path / "a") as a,
            replica(redis_server.url, tmp_path / "b") as b,
        ):
            redis_server.stop()
            await a.engine.decide(decide(a.engine, event_id="shared", amount=10.0))
            other = await a.engine.decide(decide(a.engine))
            queued = await a.engine.reward(RewardInput("never-decided", value=1.0))
            assert queued.status is RewardStatus.QUEUED
            redis_server.start()
            await b.engine.decide(decide(b.engine, event_id="shared", amount=20.0))
            async with replaying(a):
                await until(lambda: a.spool.records == 0)
            assert sorted(a.watcher.dropped_reasons) == [
                ("decision", "AlreadyExists"),
                ("reward", "NotFound"),
            ]
            assert a.watcher.replayed_kinds == ["decision"]
            assert await a.redis.get(other.event_id) is not None  # the others go through
            held = await a.redis.get("shared")
            assert held is not None
            assert held.context["amount"] == 20.0  # b's, untouched

    asyncio.run(main())


def test_a_second_process_cannot_take_a_spool_in_use(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async def main() -> None:
        async with replica(redis_server.url, tmp_path / "spool"):
            with pytest.raises(OSError, match="in use"):
                async with replica(redis_server.url, tmp_path / "spool"):
                    pass

    asyncio.run(main())


def test_a_stopping_replica_drains_its_spool_when_redis_is_back(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async def main() -> None:
        async with replica(redis_server.url, tmp_path / "spool") as a, replaying(a):
            redis_server.stop()
            event = await a.engine.decide(decide(a.engine))
            assert not await a.spool.drain(0.5)  # Redis is down: it stays spooled
            redis_server.start()
            assert await a.spool.drain(20.0)
            assert a.spool.records == 0
            assert await a.redis.get(event.event_id) is not None

    asyncio.run(main())


def test_damaged_spool_records_are_skipped_and_the_rest_replayed(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """A record of the wrong shape (a hand edit, a bug) or a torn last line (a crash while
    writing) costs that record only: the others are replayed."""

    async def main() -> None:
        spool_dir = tmp_path / "spool"
        async with replica(redis_server.url, spool_dir) as a:
            redis_server.stop()
            kept = [await a.engine.decide(decide(a.engine)) for _ in range(2)]
        (segment,) = spool_dir.glob("*.spool")
        with segment.open("ab") as f:
            f.write(b'{"k": "e", "e": {"event_id": 7}}\n{"k": "q", "q": {"nope": 1}}\n{"k": "e"')
        redis_server.start()
        async with replica(redis_server.url, spool_dir) as b:
            assert b.spool.records == 2
            assert [d.action for d in b.spool.damage] == ["torn last line cut off"]
            async with replaying(b):
                await until(lambda: b.spool.records == 0)
            for event in kept:
                assert await b.redis.get(event.event_id) is not None

    asyncio.run(main())


def test_a_batch_decided_while_redis_is_down_is_spooled_and_replayed(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async def main() -> None:
        async with replica(redis_server.url, tmp_path / "spool") as a:
            await a.engine.decide(decide(a.engine))  # connected, scripts loaded
            redis_server.stop()
            outcomes = await a.engine.decide_many(
                [
                    decide(a.engine, event_id="b1"),
                    decide(a.engine, event_id="b1"),  # a retry in the batch: the same
                    decide(a.engine, event_id="b1", amount=70.0),  # another: refused
                    decide(a.engine),
                ]
            )
            first, retry, other, drawn = outcomes
            assert isinstance(first, Event)
            assert retry == first
            assert isinstance(other, DecisionError)
            assert isinstance(drawn, Event)
            assert a.watcher.spooled_kinds == ["decision", "decision"]
            redis_server.start()
            async with replaying(a):
                await until(lambda: a.spool.records == 0)
            for event in (first, drawn):
                held = await a.redis.get(event.event_id)
                assert held is not None
                assert (held.action_id, held.pmf) == (event.action_id, event.pmf)

    asyncio.run(main())
