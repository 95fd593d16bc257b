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
from redis.crc import key_slot

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
from nextbest.policy.joins import settled_by
from nextbest.policy.ports import NullListener
from nextbest.policy.requests import DecideInput, RewardInput
from nextbest.store import codec, dsjson
from nextbest.store.redis import keys, scripts
from nextbest.store.redis.connection import Client, connect
from nextbest.store.redis.store import RedisEventStore, example_text
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
            sent = {k: ran.get(k, 0) for k in ("multi", "exec", "evalsha", "info")}
            assert sent == {"multi": 0, "exec": 0, "evalsha": 1, "info": 1}  # one script …
            script = {"hmget", "exists", "hset", "pexpire", "zadd"}  # … does it all
            assert set(ran) - set(sent) == script

            mark = len(writes)
            await store.add_reward(
                event, ReceivedReward("r", 1.0, {}, RewardStatus.ACCEPTED, clock.now)
            )
            assert sent_since(mark) == 1

            mark = len(writes)
            await reward(engine, event.event_id, 1.0, "r2")  # decided here: add_reward alone
            assert sent_since(mark) == 1
            mark = len(writes)
            fresh = await decide(engine, event_id="fresh")  # add alone: it checks the id
            assert sent_since(mark) == 1
            mark = len(writes)
            assert await decide(engine, event_id="fresh") == fresh  # a retry: the same
            assert sent_since(mark) == 1
            mark = len(writes)
            with pytest.raises(AlreadyExists, match="another request"):
                await decide(engine, event_id="fresh", context={"amount": 1.0})
            assert sent_since(mark) == 1
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


def batch(*items: dict[str, Any]) -> list[DecideInput]:
    return [
        DecideInput(**{"policy": POLICY, "intent": "billing_dispute", "context": OK_REFUND, **kw})
        for kw in items
    ]


def test_a_batch_of_decisions_takes_one_round_trip_and_checks_ids_in_order(
    redis_server: RedisServer,
) -> None:
    """DecideBatch's chunk: every ADD script in one pipeline, run in order, so an id twice
    is checked against its first as if the Decides came one after the other."""

    async def body() -> None:
        config = config_with(SUM)
        client, writes = counting_client(redis_server.url)
        store = RedisEventStore(client, lambda: config.policies)
        engine = Engine(config, store, NullListener(), Clock(), learns=False)
        try:
            await decide(engine, event_id="warm")  # connects, loads the scripts
            mark = len(writes)
            outcomes = await engine.decide_many(
                batch({}, {"event_id": "x"}, {"event_id": "x"}, {"event_id": "x", "intent": "o"})
            )
            assert len(writes) - mark == 1
            fresh, first, retry, other = outcomes
            assert isinstance(fresh, Event)
            assert isinstance(first, Event)
            assert retry == first
            assert isinstance(other, AlreadyExists)
            assert await client.zcard(keys.due(POLICY)) == 3  # warm, fresh, x
            mark = len(writes)
            [again] = await engine.decide_many(batch({"event_id": "x"}))
            assert again == first
            assert len(writes) - mark == 1
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


# -- a Decide's id, checked as the event is kept ---------------------------------------------------


def two_policies() -> Config:
    return make_config(p=support_policy(reward=EARLIEST), q=support_policy(reward=EARLIEST))


async def close_and_forget(a: Replica, event_id: str) -> None:
    """Close the event's join (earliest: its first reward) and wait until only its
    tombstone is left (the replicas' `retain` is short)."""
    await reward(a.engine, event_id, 1.0)

    async def forgotten() -> bool:
        return not await a.client.exists(keys.event(event_id))

    await wait_for(forgotten)
    assert await a.client.exists(keys.tombstone(event_id))


def test_a_refused_decide_writes_no_due_entry_and_a_retry_gets_the_event_as_kept(
    redis_server: RedisServer,
) -> None:
    """The store refuses an id another policy's event holds, or held, without writing a
    due entry: one would close the holder's join at the refused request's deadline."""

    async def body() -> None:
        clock = Clock()
        async with replicas(redis_server.url, two_policies(), clock, retain=0.2) as (a, b):
            first = await decide(a.engine, event_id="e1", defer_activation=True)
            assert await b.engine.activate("e1") is ActivationStatus.ACTIVATED
            again = await decide(b.engine, event_id="e1", defer_activation=True)
            assert (again.action_id, again.decided_at) == (first.action_id, first.decided_at)
            assert again.activated  # the event as kept, as Explain reads it
            with pytest.raises(AlreadyExists, match="belongs to policy 'p'") as info:
                await decide(b.engine, policy="q", event_id="e1")
            assert info.value.field == "event_id"
            other = dataclasses.replace(first, policy="q")
            with pytest.raises(AlreadyExists, match="belongs to policy 'p'"):
                await b.store.add(other)  # as a race would, past any check the engine made
            assert await a.client.zcard(keys.due("q")) == 0
            await close_and_forget(a, "e1")
            for policy in ("p", "q"):
                with pytest.raises(AlreadyExists, match="used before") as info:
                    await decide(b.engine, policy=policy, event_id="e1", defer_activation=True)
                assert info.value.field == "event_id"
            with pytest.raises(AlreadyExists, match="used before"):
                await b.store.add(other)
            assert await a.client.zcard(keys.due("q")) == 0
            assert await a.client.zcard(keys.due(POLICY)) == 0  # streamed: not brought back
            assert not await a.client.exists(keys.event("e1"))

    asyncio.run(body())


def test_a_decide_checks_its_id_on_a_cluster_and_survives_forgotten_scripts(
    redis_cluster: RedisCluster,
) -> None:
    """On a Cluster the tombstone is checked by the ADD script when it shares the event's
    slot, else apart ('}' first: both keys hash whole); either way an id is not reused."""
    wait_until_every_node_is_ok(redis_cluster)
    split = "}split"
    assert key_slot(keys.event(split).encode()) != key_slot(keys.tombstone(split).encode())

    async def body() -> None:
        clock = Clock()
        async with replicas(redis_cluster.url, two_policies(), clock, retain=0.2) as (a, b):
            for event_id in ("e1", split):
                first = await decide(a.engine, event_id=event_id)
                again = await decide(b.engine, event_id=event_id)
                assert (again.action_id, again.decided_at) == (first.action_id, first.decided_at)
                with pytest.raises(AlreadyExists, match="another request"):
                    await decide(b.engine, event_id=event_id, context={"amount": 1.0})
                with pytest.raises(AlreadyExists, match="belongs to policy 'p'"):
                    await b.store.add(dataclasses.replace(first, policy="q"))
                await close_and_forget(a, event_id)
                with pytest.raises(AlreadyExists, match="used before"):
                    await decide(b.engine, event_id=event_id)
                with pytest.raises(AlreadyExists, match="used before"):
                    await b.store.add(dataclasses.replace(first, policy="q"))
            assert await a.client.zcard(keys.due("q")) == 0
            assert await a.client.zcard(keys.due(POLICY)) == 0
            for node in redis_cluster.nodes:  # what a restart does to every node's scripts
                node.cli("SCRIPT", "FLUSH")
            fresh = await decide(b.engine, event_id="e2")
            again = await decide(a.engine, event_id="e2")
            assert (again.action_id, again.decided_at) == (fresh.action_id, fresh.decided_at)
            assert await a.client.zcard(keys.due(POLICY)) == 1
            outcomes = await a.engine.decide_many(  # a batch: one event at a time here
                batch({"event_id": "e3"}, {"event_id": split}, {"event_id": "e3"}, {})
            )
            assert [type(o).__name__ for o in outcomes] == [
                "Event",
                "AlreadyExists",
                "Event",
                "Event",
            ]
            assert outcomes[2] == outcomes[0]
            assert await a.client.zcard(keys.due(POLICY)) == 3

    asyncio.run(body())


# -- a Reward without a read, an `earliest` join settled with it (issue 9) ----------------------


async def settled_state(client: Client, event_id: str) -> dict[str, Any]:
    """What Redis holds once an event is settled: its hash (tokens apart: random per call),
    its tombstone, its stream entry's fields, and whether its due entry is left."""
    held: Any = await client.hgetall(keys.event(event_id))
    return {
        "hash": {k: v for k, v in held.items() if not k.startswith((b"rid:", b"tok:"))},
        "tombstone": await client.get(keys.tombstone(event_id)),
        "stream": [f for f in await stream_entries(client) if f[b"id"] == event_id.encode()],
        "due": await client.zscore(keys.due(POLICY), event_id),
    }


def test_an_earliest_reward_where_it_was_decided_settles_in_one_round_trip(
    redis_server: RedisServer,
) -> None:
    async def body() -> None:
        clock = Clock()
        config = config_with(EARLIEST)
        client, writes = counting_client(redis_server.url)
        store = RedisEventStore(client, lambda: config.policies)
        joins = Joins()
        engine = Engine(config, store, joins, clock, learns=False)
        try:
            await decide(engine, event_id="warm")  # connects, loads the scripts
            await reward(engine, "warm", 1.0, "w")
            await decide(engine, event_id="e1")
            mark = len(writes)
            outcome = await reward(engine, "e1", 0.5, "r1")
            assert len(writes) - mark == 1  # no read, and the settle in the same script
            assert outcome == RewardOutcome(RewardStatus.ACCEPTED, 0.5)
            assert joins.joined_ids == ["warm", "e1"]
            new = await settled_state(client, "e1")
            assert new["hash"][b"s"] == b"streamed"
            assert new["due"] is None
            assert 0 < await client.pttl(keys.event("e1")) <= 86400 * 1000  # retained a day
            [fields] = new["stream"]
            joined = codec.decode(fields[b"e"])
            assert (joined.join_status, joined.joined_reward) == (JoinStatus.LEARNED, 0.5)
            assert fields[b"d"] == dsjson.line(joined, fields[b"e"])
            assert fields[b"x"] == example_text(joined).encode()
            assert await a_reward_is_late(engine, "e1")

            # the same event settled the old way (add_reward, then Joins.settle): the same
            await client.flushall()
            decided = await decide(engine, event_id="e1")
            received = ReceivedReward("r1", 0.5, {}, RewardStatus.ACCEPTED, clock.now)
            now, _ = await store.add_reward(decided, received)
            await engine.joins.settle(now)
            assert await settled_state(client, "e1") == new
        finally:
            engine.shutdown()
            await store.close_client()

    asyncio.run(body())


async def codes(client: Client, event_id: str) -> list[bytes]:
    """How each call that kept a reward for the event was answered (its token's code)."""
    held: Any = await client.hgetall(keys.event(event_id))
    return sorted(v[16:] for k, v in held.items() if k.startswith((b"rid:", b"tok:")))


async def a_reward_is_late(engine: Engine, event_id: str) -> bool:
    return (await reward(engine, event_id, 1.0)).status is RewardStatus.LATE


def test_a_reward_elsewhere_reads_the_event_first_and_still_settles_with_it(
    redis_server: RedisServer,
) -> None:
    """A replica that did not decide the event reads it (2 round trips), then keeps a copy:
    its next Reward for that event reads nothing. A copy that missed another replica's
    reward is corrected by the script: a duplicate is a duplicate, a settled join late."""

    async def body() -> None:
        clock = Clock()
        clients = [counting_client(redis_server.url) for _ in range(2)]
        config = make_config(p=support_policy(reward=EARLIEST), s=support_policy(reward=SUM))
        made = [
            Engine(
                config,
                RedisEventStore(client, lambda: config.policies),
                NullListener(),
                clock,
                learns=False,
            )
            for client, _ in clients
        ]
        try:
            a, b = made
            (a_client, a_writes), (_, b_writes) = clients
            for engine in made:  # connects, loads the scripts
                await reward(engine, (await decide(engine)).event_id, 1.0)
            await a_client.flushall()
            await decide(a, event_id="e1")
            await decide(a, event_id="s1", policy="s")
            mark = len(b_writes)
            assert (await reward(b, "e1", 0.5, "r1")).status is RewardStatus.ACCEPTED
            assert len(b_writes) - mark == 2  # the read, then the reward that settles it
            [joined] = await joined_stream(a_client)
            assert (joined.event_id, joined.joined_reward) == ("e1", 0.5)
            # A's copy shows no reward: its reward is sent to settle, the script says late
            mark = len(a_writes)
            assert (await reward(a, "e1", -1.0, "r2")).status is RewardStatus.LATE
            assert len(a_writes) - mark == 1
            assert await a_client.xlen(keys.joined(POLICY)) == 1

            mark = len(b_writes)
            assert (await reward(b, "s1", 1.0, "r1")).status is RewardStatus.ACCEPTED
            assert (await reward(b, "s1", 2.0, "r2")).status is RewardStatus.ACCEPTED
            assert len(b_writes) - mark == 3  # read once, then the copy
            mark = len(a_writes)
            repeated = await reward(a, "s1", 1.0, "r1")  # A's copy never saw r1
            assert repeated == RewardOutcome(RewardStatus.DUPLICATE, 1.0)
            assert (await reward(a, "s1", 3.0, "r3")).status is RewardStatus.ACCEPTED
            assert len(a_writes) - mark == 2
            explained = await a.explain("s1")
            assert [r.reward_id for r in explained.rewards] == ["r1", "r2", "r3"]
        finally:
            for engine in made:
                engine.shutdown()
            for client, _ in clients:
                await client.aclose()

    asyncio.run(body())


def test_two_replicas_racing_an_earliest_reward_settle_it_once(redis_server: RedisServer) -> None:
    async def body() -> None:
        clock = Clock()
        joins = Joins()
        async with replicas(redis_server.url, config_with(EARLIEST), clock, joins) as (a, b):
            ids = [f"e{i}" for i in range(20)]
            for event_id in ids:
                await decide(a.engine, event_id=event_id)  # A holds a copy, B none
            outcomes = await asyncio.gather(
                *(
                    reward(replica.engine, event_id, value, f"{event_id}-{value}")
                    for event_id in ids
                    for replica, value in ((a, 0.25), (b, 0.75))
                )
            )
            assert sorted(joins.joined_ids) == sorted(ids)  # each settled by one of them
            streamed = await joined_stream(a.client)
            assert sorted(e.event_id for e in streamed) == sorted(ids)
            by_id = {e.event_id: e for e in streamed}
            for i, event_id in enumerate(ids):
                pair = outcomes[2 * i : 2 * i + 2]
                [won] = [o for o in pair if o.status is RewardStatus.ACCEPTED]
                assert [o.status for o in pair].count(RewardStatus.LATE) == 1
                joined = by_id[event_id]
                assert joined.joined_reward == won.value
                assert [r.value for r in joined.rewards] == [won.value]  # the late one after
                assert await codes(a.client, event_id) == [b"late", b"settled"]
                explained = await b.engine.explain(event_id)
                assert [r.status for r in explained.rewards] == [
                    RewardStatus.ACCEPTED,
                    RewardStatus.LATE,
                ]
            assert await a.client.zcard(keys.due(POLICY)) == 0
            clock.now += WAIT + 1
            assert await b.engine.settle_due() == 0

    asyncio.run(body())


def test_a_settling_reward_sent_again_with_its_token_is_answered_as_kept(
    redis_server: RedisServer,
) -> None:
    """A spool's replay (or redis-py resending) repeats the call with its token: it is
    answered as the call that settled the join, and nothing is kept or streamed twice."""

    async def body() -> None:
        clock = Clock()
        async with replicas(redis_server.url, config_with(EARLIEST), clock, n=1) as (a,):
            event = await decide(a.engine, event_id="e1")
            received = ReceivedReward("", 0.5, {}, RewardStatus.ACCEPTED, clock.now)
            settle_as = settled_by(a.engine.policies[POLICY], event, received)
            answers = [
                await a.store.add_reward(event, received, "0123456789abcdef", settle_as=settle_as)
                for _ in range(2)
            ]
            for now, kept in answers:
                assert kept is not None
                assert kept.status is RewardStatus.ACCEPTED
                assert (now.join_status, now.joined_reward) == (JoinStatus.LEARNED, 0.5)
                assert now.rewards == [received]
            assert answers[0][0] == answers[1][0] == settle_as
            assert await a.client.xlen(keys.joined(POLICY)) == 1
            assert await a.client.hget(keys.event("e1"), "n") == b"1"

    asyncio.run(body())


def test_a_deferred_event_settles_with_its_reward_once_activated_here(
    redis_server: RedisServer,
) -> None:
    """Activated on this replica, the copy knows it: the reward settles in one script.
    Activated on another, the copy does not: the reward is kept, then settled the usual way."""

    async def body() -> None:
        clock = Clock()
        async with replicas(redis_server.url, config_with(EARLIEST), clock) as (a, b):
            for event_id in ("here", "there"):
                await decide(a.engine, event_id=event_id, defer_activation=True)
            assert await a.engine.activate("here") is ActivationStatus.ACTIVATED
            assert await b.engine.activate("there") is ActivationStatus.ACTIVATED
            for event_id in ("here", "there"):
                assert (await reward(a.engine, event_id, 0.5)).status is RewardStatus.ACCEPTED
            streamed = {e.event_id: e for e in await joined_stream(a.client)}
            assert sorted(streamed) == ["here", "there"]
            for joined in streamed.values():
                assert joined.activated
                assert (joined.join_status, joined.joined_reward) == (JoinStatus.LEARNED, 0.5)
            assert await a.client.zcard(keys.due(POLICY)) == 0

    asyncio.run(body())


def test_an_earliest_reward_settles_on_a_cluster(redis_cluster: RedisCluster) -> None:
    wait_until_every_node_is_ok(redis_cluster)

    async def body() -> None:
        clock = Clock()
        joins = Joins()
        async with replicas(redis_cluster.url, config_with(EARLIEST), clock, joins) as (a, b):
            # "}x{": an empty hash tag, so its tombstone is in another slot than its hash
            ids = [f"e{i}" for i in range(6)] + ["}x{"]
            for event_id in ids:
                await decide(a.engine, event_id=event_id)
            for i, event_id in enumerate(ids):  # A from its copy, B after a read
                replica = (a, b)[i % 2]
                assert (await reward(replica.engine, event_id, 0.5)).status is (
                    RewardStatus.ACCEPTED
                )
            assert sorted(joins.joined_ids) == sorted(ids)
            streamed = await joined_stream(a.client)
            assert sorted(e.event_id for e in streamed) == sorted(ids)
            assert {e.joined_reward for e in streamed} == {0.5}
            for event_id in ids:
                assert await a.client.hget(keys.event(event_id), "s") == b"streamed"
                assert await a.client.exists(keys.tombstone(event_id))
                assert await codes(a.client, event_id) == [b"settled"]  # with the reward
            assert await a.client.zcard(keys.due(POLICY)) == 0
            assert (await reward(b.engine, "e0", 1.0)).status is RewardStatus.LATE

    asyncio.run(body())
