"""The Redis event store shared by replicas: two engines (each its own client, as two
processes would have) on one real redis-server, or on a real 3-node cluster."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from nextbest.policy.config import Config
from nextbest.policy.engine import Engine, RewardOutcome
from nextbest.policy.errors import AlreadyExists, NotFound, ResourceExhausted, Unavailable
from nextbest.policy.events import (
    ActivationStatus,
    Event,
    JoinStatus,
    ReceivedReward,
    RewardStatus,
)
from nextbest.policy.ports import NullListener
from nextbest.policy.requests import DecideInput, RewardInput
from nextbest.store import codec
from nextbest.store.redis import keys, scripts
from nextbest.store.redis.connection import Client, connect
from nextbest.store.redis.store import RedisEventStore
from tests.conftest import make_config, support_policy
from tests.redis_server import RedisCluster, RedisServer

POLICY = "p"
OK_REFUND = {"account_age_days": 400.0, "amount": 50.0}
WAIT = 600.0  # the policies' reward window (10m)
SUM = {"wait": "10m", "default": 0.0, "aggregation": "sum", "clip": [-1000, 1000]}
EARLIEST = {"wait": "10m", "default": 0.0, "aggregation": "earliest", "clip": [-1, 1]}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class Joins(NullListener):
    """Counts the joins engines report as closed by them (store.close returned True)."""

    def __init__(self) -> None:
        self.joined_ids: list[str] = []

    def joined(self, event: Event) -> None:
        self.joined_ids.append(event.event_id)


@dataclasses.dataclass
class Replica:
    engine: Engine
    store: RedisEventStore
    client: Client


@asynccontextmanager
async def replicas(
    url: str,
    config: Config,
    clock: Clock,
    listener: NullListener | None = None,
    n: int = 2,
    **options: Any,
) -> AsyncIterator[list[Replica]]:
    """`n` serving replicas on one Redis: each its own client, store and engine."""
    made: list[Replica] = []
    try:
        for _ in range(n):
            client = await connect(url)
            store = RedisEventStore(client, lambda: config.policies, **options)
            engine = Engine(config, store, listener or NullListener(), clock, learns=False)
            made.append(Replica(engine, store, client))
        yield made
    finally:
        for replica in made:
            replica.engine.shutdown()
            await replica.store.close_client()


def config_with(reward: dict[str, Any], **overrides: Any) -> Config:
    return make_config(p=support_policy(reward=reward, **overrides))


def decide(engine: Engine, **kw: Any) -> Awaitable[Event]:
    kw.setdefault("policy", POLICY)
    kw.setdefault("intent", "billing_dispute")
    kw.setdefault("context", dict(OK_REFUND))
    return engine.decide(DecideInput(**kw))


def reward(engine: Engine, event_id: str, value: float, reward_id: str = "") -> Awaitable[Any]:
    return engine.reward(RewardInput(event_id, value=value, reward_id=reward_id))


async def stream_entries(client: Client, policy: str = POLICY) -> list[dict[bytes, bytes]]:
    """The fields of each entry on the policy's joined stream (redis-py types them loosely)."""
    entries: Any = await client.xrange(keys.joined(policy))
    return [dict(fields) for _, fields in entries]


async def joined_stream(client: Client, policy: str = POLICY) -> list[Event]:
    return [codec.decode(fields[b"e"]) for fields in await stream_entries(client, policy)]


async def wait_for(condition: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    """Poll a condition Redis decides (a key expiring), failing after `within` seconds."""
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not hold in time")
        await asyncio.sleep(0.01)


# -- one event, two replicas --------------------------------------------------------------------


def test_a_reward_on_another_replica_is_joined_and_explained(redis_server: RedisServer) -> None:
    async def body() -> None:
        clock = Clock()
        async with replicas(redis_server.url, config_with(EARLIEST), clock) as (a, b):
            event = await decide(a.engine, event_id="e1")
            assert await b.engine.reward(RewardInput("e1", value=0.5, reward_id="r1")) == (
                RewardOutcome(RewardStatus.ACCEPTED, 0.5)
            )
            explained = await a.engine.explain("e1")
            assert explained.action_id == event.action_id
            assert [(r.reward_id, r.value, r.status) for r in explained.rewards] == [
                ("r1", 0.5, RewardStatus.ACCEPTED)
            ]
            # `earliest`: the first accepted reward settles the join, on B, at once
            assert explained.join_status is JoinStatus.LEARNED
            assert explained.joined_reward == 0.5
            [streamed] = await joined_stream(a.client)
            assert streamed.event_id == "e1"
            assert [r.value for r in streamed.rewards] == [0.5]

    asyncio.run(body())


def test_concurrent_rewards_with_sum_join_each_distinct_reward_once(
    redis_server: RedisServer,
) -> None:
    async def body() -> None:
        clock = Clock()
        async with replicas(redis_server.url, config_with(SUM), clock) as (a, b):
            await decide(a.engine, event_id="e1")
            distinct = [(f"r{i}", float(i + 1)) for i in range(40)]
            repeated = distinct[:10]
            calls = [*distinct, *repeated]
            outcomes = await asyncio.gather(
                *(
                    reward((a, b)[i % 2].engine, "e1", value, rid)
                    for i, (rid, value) in enumerate(calls)
                )
            )
            by_id: dict[str, list[RewardStatus]] = {}
            for (rid, value), outcome in zip(calls, outcomes, strict=True):
                assert outcome.value == value
                by_id.setdefault(rid, []).append(outcome.status)
            for rid, _ in repeated:
                assert sorted(s.value for s in by_id[rid]) == ["accepted", "duplicate"]
            for rid, _ in distinct[10:]:
                assert by_id[rid] == [RewardStatus.ACCEPTED]

            clock.now += WAIT + 1
            assert await b.engine.settle_due() == 1
            explained = await a.engine.explain("e1")
            assert explained.join_status is JoinStatus.LEARNED
            assert explained.joined_reward == sum(v for _, v in distinct)
            assert len(explained.rewards) == 40
            assert await a.client.xlen(keys.joined(POLICY)) == 1
            [streamed] = await joined_stream(a.client)
            assert streamed.joined_reward == sum(v for _, v in distinct)

    asyncio.run(body())


def test_concurrent_rewards_with_earliest_close_the_join_once(redis_server: RedisServer) -> None:
    async def body() -> None:
        clock = Clock()
        joins = Joins()
        async with replicas(redis_server.url, config_with(EARLIEST), clock, joins) as (a, b):
            await decide(a.engine, event_id="e1")
            values = [round(0.01 * (i + 1), 2) for i in range(30)]
            outcomes = await asyncio.gather(
                *(
                    reward((a, b)[i % 2].engine, "e1", value, f"r{i}")
                    for i, value in enumerate(values)
                )
            )
            explained = await a.engine.explain("e1")
            accepted = [r.value for r in explained.rewards if r.status is RewardStatus.ACCEPTED]
            assert accepted  # the first one at least
            assert explained.joined_reward == accepted[0]
            assert sorted(o.value for o in outcomes if o.status is RewardStatus.ACCEPTED) == (
                sorted(accepted)
            )
            assert {o.status for o in outcomes} <= {RewardStatus.ACCEPTED, RewardStatus.LATE}
            assert len(explained.rewards) == 30
            assert joins.joined_ids == ["e1"]
            assert await a.client.xlen(keys.joined(POLICY)) == 1
            clock.now += WAIT + 1
            assert await b.engine.settle_due() == 0  # nothing left due
            assert await a.client.xlen(keys.joined(POLICY)) == 1
            [streamed] = await joined_stream(a.client)
            assert streamed.joined_reward == accepted[0]

    asyncio.run(body())


def test_decide_is_idempotent_on_event_id_across_replicas(redis_server: RedisServer) -> None:
    async def body() -> None:
        clock = Clock()
        async with replicas(redis_server.url, config_with(EARLIEST), clock) as (a, b):
            first = await decide(a.engine, event_id="e1")
            again = await decide(b.engine, event_id="e1")
            assert again.action_id == first.action_id
            assert again.decided_at == first.decided_at
            assert await a.client.zcard(keys.due(POLICY)) == 1
            with pytest.raises(AlreadyExists, match="another request"):
                await decide(b.engine, event_id="e1", context={"amount": 10.0})

            # racing: one event is kept, and no replica hands out another action for it
            # (the loser may be refused: the engine reads `used` after `get` found nothing,
            # and in between the winner's event appeared; see the report to the lead)
            raced = await asyncio.gather(
                decide(a.engine, event_id="e2"),
                decide(b.engine, event_id="e2"),
                return_exceptions=True,
            )
            decided = [r for r in raced if isinstance(r, Event)]
            assert decided
            assert all(isinstance(r, Event | AlreadyExists) for r in raced)
            assert {r.action_id for r in decided} == {(await a.engine.explain("e2")).action_id}
            assert await a.client.zcard(keys.due(POLICY)) == 2
            # racing with different requests: exactly one is kept, the other refused
            results = await asyncio.gather(
                decide(a.engine, event_id="e3"),
                decide(b.engine, event_id="e3", context={"amount": 10.0}),
                return_exceptions=True,
            )
            assert sorted(type(r).__name__ for r in results) == ["AlreadyExists", "Event"]
            kept = next(r for r in results if isinstance(r, Event))
            assert (await b.engine.explain("e3")).fingerprint == kept.fingerprint
            assert await a.client.zcard(keys.due(POLICY)) == 3

    asyncio.run(body())


def test_a_reward_after_the_close_is_late_and_activation_crosses_replicas(
    redis_server: RedisServer,
) -> None:
    async def body() -> None:
        clock = Clock()
        async with replicas(redis_server.url, config_with(EARLIEST), clock) as (a, b):
            await decide(a.engine, event_id="e1", defer_activation=True)
            assert await b.engine.activate("e1") is ActivationStatus.ACTIVATED
            assert (await a.engine.explain("e1")).activated
            assert await a.engine.activate("e1") is ActivationStatus.ALREADY_ACTIVE
            # activated and `earliest`: A's reward settles and closes the join
            assert (await reward(a.engine, "e1", 1.0, "r1")).status is RewardStatus.ACCEPTED
            assert (await b.engine.explain("e1")).join_status is JoinStatus.LEARNED
            assert (await reward(b.engine, "e1", -1.0, "r2")).status is RewardStatus.LATE
            explained = await a.engine.explain("e1")
            assert [(r.reward_id, r.status) for r in explained.rewards] == [
                ("r1", RewardStatus.ACCEPTED),
                ("r2", RewardStatus.LATE),
            ]
            assert explained.joined_reward == 1.0

            # a join closed by the clock: a reward on the other replica is late
            await decide(a.engine, event_id="e2", defer_activation=True)
            clock.now += WAIT + 1
            assert await b.engine.activate("e2") is ActivationStatus.LATE
            assert await b.engine.settle_due() == 1
            assert (await reward(b.engine, "e2", 1.0)).status is RewardStatus.LATE
            closed = await a.engine.explain("e2")
            assert closed.join_status is JoinStatus.SKIPPED  # never activated: not learned
            assert not closed.activated
            assert [r.status for r in closed.rewards] == [RewardStatus.LATE]

    asyncio.run(body())


def test_a_reward_that_lands_after_the_join_was_read_is_late_or_joined(
    redis_server: RedisServer,
) -> None:
    """The store, not the engine's reading, decides: a reward that reaches Redis after
    the close is LATE, and a close that misses an accepted reward is refused (the next pass
    closes the event as it now is)."""

    async def body() -> None:
        clock = Clock()
        async with replicas(redis_server.url, config_with(SUM), clock) as (a, b):
            event = await decide(a.engine, event_id="e1")
            read = await b.store.get("e1")
            assert read is not None
            on_time = ReceivedReward("r1", 2.0, {}, RewardStatus.ACCEPTED, clock.now)
            _, kept = await a.store.add_reward(read, on_time)
            assert kept is not None
            assert kept.status is RewardStatus.ACCEPTED
            # B closes from what it read before the reward: refused, nothing changes
            stale = dataclasses.replace(read, join_status=JoinStatus.LEARNED, joined_reward=0.0)
            assert not await b.store.settle(stale)
            assert (await a.engine.explain("e1")).join_status is JoinStatus.PENDING
            clock.now += WAIT + 1
            assert await b.engine.settle_due() == 1
            assert (await a.engine.explain("e1")).joined_reward == 2.0
            # the engine guessed ACCEPTED from its (old) reading: the store says LATE
            guessed = ReceivedReward("r2", 3.0, {}, RewardStatus.ACCEPTED, event.decided_at)
            now, kept = await b.store.add_reward(read, guessed)
            assert kept is not None
            assert kept.status is RewardStatus.LATE
            assert now.join_status is JoinStatus.LEARNED
            assert [r.status for r in now.rewards] == [RewardStatus.ACCEPTED, RewardStatus.LATE]

    asyncio.run(body())


# -- keeping and forgetting ----------------------------------------------------------------------


def test_a_pending_event_has_a_ttl_and_a_closed_one_becomes_a_tombstone(
    redis_server: RedisServer,
) -> None:
    async def body() -> None:
        clock = Clock()
        async with replicas(
            redis_server.url, config_with(EARLIEST), clock, retain=0.2, grace=60.0
        ) as (a, b):
            await decide(a.engine, event_id="e1")
            ttl = await a.client.pttl(keys.event("e1"))
            assert (WAIT + 60.0) * 1000 - 5_000 < ttl <= (WAIT + 60.0) * 1000
            await reward(b.engine, "e1", 0.5)  # earliest: closes the join
            assert (await a.engine.explain("e1")).joined_reward == 0.5  # readable a while
            assert 0 < await a.client.pttl(keys.event("e1")) <= 200

            async def expired() -> bool:
                return not await a.client.exists(keys.event("e1"))

            await wait_for(expired)
            assert await a.store.get("e1") is None
            assert await b.store.used("e1")
            assert await a.client.pttl(keys.tombstone("e1")) > 86400 * 1000 - 60_000  # a day
            with pytest.raises(NotFound):
                await a.engine.explain("e1")
            with pytest.raises(AlreadyExists, match="used before"):
                await decide(b.engine, event_id="e1")

    asyncio.run(body())


def test_oversized_events_and_too_many_rewards_are_refused(redis_server: RedisServer) -> None:
    async def body() -> None:
        clock = Clock()
        async with replicas(redis_server.url, config_with(SUM), clock, max_rewards=3) as (a, _):
            event = await decide(a.engine, event_id="e1")
            for i in range(3):
                assert (await reward(a.engine, "e1", 1.0, f"r{i}")).status is (
                    RewardStatus.ACCEPTED
                )
            with pytest.raises(ResourceExhausted, match="'e1' has 3 rewards") as info:
                await reward(a.engine, "e1", 1.0, "r3")
            assert info.value.field == "event_id"
            huge = dataclasses.replace(event, event_id="e2", context={"x": "y" * (1 << 20)})
            with pytest.raises(ResourceExhausted, match="bytes"):
                await a.store.add(huge)
            assert not await a.store.used("e2")
            with pytest.raises(NotFound, match="'e3'"):
                await a.store.add_reward(
                    dataclasses.replace(event, event_id="e3"),
                    ReceivedReward("", 1.0, {}, RewardStatus.ACCEPTED, clock.now),
                )

    asyncio.run(body())


# -- closing ----------------------------------------------------------------------------------


def test_settle_due_on_another_replica_streams_each_event_once_even_after_a_crash(
    redis_server: RedisServer,
) -> None:
    async def body() -> None:
        clock = Clock()
        joins = Joins()
        async with replicas(redis_server.url, config_with(SUM), clock, joins) as (a, b):
            events = [await decide(a.engine, event_id=f"e{i}") for i in range(5)]
            await reward(a.engine, "e0", 2.0)
            await a.store.refresh_counts()
            assert a.store.pending_counts() == {POLICY: 5}
            # A crashed right after closing e1, before putting it on the stream
            closed = dataclasses.replace(
                events[1], join_status=JoinStatus.LEARNED, joined_reward=0.0
            )
            code, _ = await a.store.settle_only(closed)
            assert code == "closed"
            assert await a.client.xlen(keys.joined(POLICY)) == 0
            assert await b.engine.settle_due() == 0  # not due yet
            clock.now += WAIT + 1
            # two closers at once: each event is closed by one of them and streamed once
            handled = await asyncio.gather(a.engine.settle_due(), b.engine.settle_due())
            assert sum(handled) >= 5
            streamed = await joined_stream(a.client)
            assert sorted(e.event_id for e in streamed) == [f"e{i}" for i in range(5)]
            assert {e.event_id: e.joined_reward for e in streamed}["e0"] == 2.0
            assert sorted(joins.joined_ids) == ["e0", "e2", "e3", "e4"]  # e1: closed by A
            assert await a.client.zcard(keys.due(POLICY)) == 0
            assert await b.engine.settle_due() == 0
            assert not await b.store.settle(closed)  # done already
            assert await a.client.xlen(keys.joined(POLICY)) == 5
            await b.store.refresh_counts()
            assert b.store.pending_counts() == {POLICY: 0}
            assert await a.client.hget(keys.event("e1"), "s") == b"streamed"

    asyncio.run(body())


def test_due_drops_entries_whose_event_is_gone(redis_server: RedisServer) -> None:
    async def body() -> None:
        clock = Clock()
        async with replicas(redis_server.url, config_with(SUM), clock, n=1) as (a,):
            await decide(a.engine, event_id="e1")
            await decide(a.engine, event_id="e2")
            await a.client.delete(keys.event("e1"))  # as if it expired, or an add half-failed
            clock.now += WAIT + 1
            assert [e.event_id for e in await a.store.due(clock.now, 10)] == ["e2"]
            assert await a.client.zrange(keys.due(POLICY), 0, -1) == [b"e2"]

    asyncio.run(body())


# -- Redis down -------------------------------------------------------------------------------


def test_redis_down_is_unavailable_and_keeps_nothing(redis_server: RedisServer) -> None:
    async def body() -> None:
        clock = Clock()
        async with replicas(redis_server.url, config_with(SUM), clock) as (a, b):
            await decide(a.engine, event_id="before")
            redis_server.stop()
            with pytest.raises(Unavailable, match="Redis is unreachable"):
                await decide(a.engine, event_id="during")
            with pytest.raises(Unavailable, match="Redis is unreachable"):
                await decide(a.engine)
            with pytest.raises(Unavailable):
                await reward(b.engine, "before", 1.0)
            redis_server.start()
            add_sha = hashlib.sha1(scripts.ADD.encode()).hexdigest()
            assert await a.client.script_exists(add_sha) == [False]  # forgotten: reloaded
            assert not await a.store.used("during")
            assert await a.client.zrange(keys.due(POLICY), 0, -1) == [b"before"]
            # calls work again (the scripts reloaded: a restarted Redis forgot them)
            await decide(b.engine, event_id="during")
            assert (await reward(a.engine, "during", 1.0)).status is RewardStatus.ACCEPTED
            clock.now += WAIT + 1
            assert await a.engine.settle_due() == 2
            assert await a.client.xlen(keys.joined(POLICY)) == 2

    asyncio.run(body())


# -- a cluster --------------------------------------------------------------------------------


def wait_until_every_node_is_ok(cluster: RedisCluster, timeout: float = 20.0) -> None:
    """The fixture waits for its first node; a node that has not yet seen every slot
    covered answers CLUSTERDOWN (the store's Unavailable), so wait for all three."""
    deadline = time.monotonic() + timeout
    while not all("cluster_state:ok" in n.cli("CLUSTER", "INFO") for n in cluster.nodes):
        if time.monotonic() > deadline:
            raise AssertionError("the cluster's nodes did not all reach cluster_state:ok")
        time.sleep(0.05)  # polling a condition: the nodes' own state


def test_the_join_works_on_a_cluster(redis_cluster: RedisCluster) -> None:
    wait_until_every_node_is_ok(redis_cluster)

    async def body() -> None:
        clock = Clock()
        async with replicas(redis_cluster.url, config_with(SUM), clock) as (a, b):
            assert isinstance(a.client, aioredis.RedisCluster)
            ids = [f"e{i}" for i in range(6)]  # spread over the nodes' slots
            for event_id in ids:
                await decide(a.engine, event_id=event_id)
            assert await b.engine.reward(RewardInput("e0", value=2.0, reward_id="r1")) == (
                RewardOutcome(RewardStatus.ACCEPTED, 2.0)
            )
            assert (await reward(a.engine, "e0", 2.0, "r1")).status is RewardStatus.DUPLICATE
            assert (await reward(a.engine, "e0", 3.0, "r2")).status is RewardStatus.ACCEPTED
            assert [r.value for r in (await a.engine.explain("e0")).rewards] == [2.0, 3.0]
            with pytest.raises(AlreadyExists):
                await decide(b.engine, event_id="e0", context={"amount": 1.0})
            await b.store.refresh_counts()
            assert b.store.pending_counts() == {POLICY: 6}
            # a crash between close and stream, recovered by the next pass
            read = await a.store.get("e1")
            assert read is not None
            closed = dataclasses.replace(read, join_status=JoinStatus.SKIPPED, joined_reward=0.0)
            assert (await a.store.settle_only(closed))[0] == "closed"
            clock.now += WAIT + 1
            assert await b.engine.settle_due() == 6
            streamed = await joined_stream(a.client)
            assert sorted(e.event_id for e in streamed) == ids
            assert {e.event_id: e.joined_reward for e in streamed}["e0"] == 5.0
            assert await b.engine.settle_due() == 0
            assert (await reward(a.engine, "e0", 1.0)).status is RewardStatus.LATE
            assert await a.store.used("e3")

    asyncio.run(body())


# -- round trips ----------------------------------------------------------------------------------


def counting_client(url: str) -> tuple[aioredis.Redis, list[bytes]]:
    """A client whose connections record each write to the socket: redis-py writes a
    command, or a whole pipeline (MULTI … EXEC included), in one `send_packed_command`
    and then reads every reply, so one write is one round trip."""
    writes: list[bytes] = []

    class Counting(aioredis.Connection):
        async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            parts = [command] if isinstance(command, bytes | str) else list(command)
            writes.append(b"".join(p.encode() if isinstance(p, str) else bytes(p) for p in parts))
            await super().send_packed_command(command, check_health)

    pool = aioredis.ConnectionPool.from_url(url, connection_class=Counting)
    return aioredis.Redis(connection_pool=pool), writes


def test_add_and_add_reward_take_one_round_trip_each(redis_server: RedisServer) -> None:
    async def body() -> None:
        clock = Clock()
        config = config_with(SUM)
        client, writes = counting_client(redis_server.url)
        store = RedisEventStore(client, lambda: config.policies)
        engine = Engine(config, store, NullListener(), clock, learns=False)
        try:
            await decide(engine, event_id="warm")  # connects, loads the scripts
            await reward(engine, "warm", 1.0, "w")

            def stats() -> dict[str, int]:
                out = {}
                for line in redis_server.cli("INFO", "commandstats").splitlines():
                    if line.startswith("cmdstat_"):
                        name, rest = line[len("cmdstat_") :].split(":", 1)
                        out[name] = int(rest.split(",")[0].split("=")[1])
                return out

            def sent_since(mark: int) -> int:
                return len(writes) - mark

            before, mark = stats(), len(writes)
            event = await decide(engine)  # no event_id: the store's add alone
            assert sent_since(mark) == 1
            after = stats()
            ran = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k)}
            sent = {k: ran.get(k, 0) for k in ("multi", "zadd", "evalsha", "exec", "info")}
            assert sent == {"multi": 1, "zadd": 1, "evalsha": 1, "exec": 1, "info": 1}
            assert set(ran) - set(sent) == {"hmget", "hset", "pexpire"}  # the script's

            mark = len(writes)
            await store.add_reward(
                event, ReceivedReward("r", 1.0, {}, RewardStatus.ACCEPTED, clock.now)
            )
            assert sent_since(mark) == 1

            mark = len(writes)
            await reward(engine, event.event_id, 1.0, "r2")  # get, then add_reward
            assert sent_since(mark) == 2
            mark = len(writes)
            await decide(engine, event_id="fresh")  # get, used, then add
            assert sent_since(mark) == 3
            mark = len(writes)
            read = await store.get("fresh")
            assert read is not None
            closed = dataclasses.replace(read, join_status=JoinStatus.LEARNED, joined_reward=0.0)
            assert await store.settle(closed)  # close (and tombstone), then stream (and mark)
            assert sent_since(mark) == 3  # the get, and the close's two
        finally:
            engine.shutdown()
            await store.close_client()

    asyncio.run(body())


def test_stream_entries_carry_the_event_and_its_id(redis_server: RedisServer) -> None:
    async def body() -> None:
        clock = Clock()
        async with replicas(redis_server.url, config_with(SUM), clock, n=1) as (a,):
            await decide(a.engine, event_id="e1")
            await reward(a.engine, "e1", 1.5, "r1")
            clock.now += WAIT + 1
            await a.engine.settle_due()
            [fields] = await stream_entries(a.client)
            assert fields[b"id"] == b"e1"
            record = orjson.loads(fields[b"e"])
            assert record["joined_reward"] == 1.5
            assert [r["reward_id"] for r in record["rewards"]] == ["r1"]

    asyncio.run(body())


def test_the_learner_lag_counts_joined_events_not_read_yet(redis_server: RedisServer) -> None:
    async def main() -> None:
        client = await connect(redis_server.url)
        store = RedisEventStore(client, lambda: [POLICY])
        try:
            assert await store.learner_lags() == {POLICY: 0}  # nothing joined yet
            for i in range(3):
                await client.xadd(keys.joined(POLICY), {"e": b"{}", "id": str(i)})
            assert await store.learner_lags() == {POLICY: 3}  # no learner yet: all of it
            await client.xgroup_create(keys.joined(POLICY), keys.LEARNERS, id="0")
            await client.xreadgroup(keys.LEARNERS, "c", {keys.joined(POLICY): ">"}, count=2)
            assert await store.learner_lags() == {POLICY: 1}
        finally:
            await client.aclose()

    asyncio.run(main())
