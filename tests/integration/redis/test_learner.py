"""The learner of Redis mode and the replicas' model follower, against a real redis-server
(and one test against a real 3-node cluster): joined events on the stream are learned once
each, logged as DSJSON in the learner's data dir, acked only after a checkpoint, and the
published model reaches every replica; a learner killed mid-stream is taken over within
2 x ttl and nothing is lost or learned twice; a stale learner can neither ack nor publish."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import os
import resource
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from nextbest.policy.config import Config, load_config
from nextbest.policy.engine import Engine
from nextbest.policy.events import Event, JoinStatus
from nextbest.policy.ports import NullListener, run_now
from nextbest.policy.requests import DecideInput
from nextbest.store import codec, dsjson
from nextbest.store.durable import Durability
from nextbest.store.memory import MemoryStore
from nextbest.store.redis import keys
from nextbest.store.redis.connection import Client, connect
from nextbest.store.redis.learner import CHUNK, Learner
from nextbest.store.redis.models import ModelFollower
from nextbest.store.redis.store import example_text
from tests.conftest import EXAMPLE
from tests.redis_server import RedisCluster, RedisServer

POLICY = "support.next_step"
INTENTS = ["billing_dispute", "login_problem", "angry_customer"]
LINES = [  # an example to score: the learner's and a replica's models must agree on it
    "shared |i billing_dispute |c amount:50 account_age_days:400",
    "|a ask_details kind=info",
    "|a offer_refund kind=money",
    "|a escalate_human kind=human",
]


def config() -> Config:
    return load_config(EXAMPLE)


def closed_events(n: int) -> list[Event]:
    """`n` real decisions of the support policy (a serving replica's, which does not
    learn), closed as a replica closes them: learned, with a joined reward."""
    engine = Engine(config(), MemoryStore(), NullListener(), time.time, learns=False)
    out = []
    for i in range(n):
        req = DecideInput(
            policy=POLICY,
            intent=INTENTS[i % len(INTENTS)],
            context={"amount": float(10 + i % 300), "account_age_days": float(i % 90)},
            event_id=f"ev-{i:06d}",
        )
        event = run_now(engine.decide(req))
        out.append(
            dataclasses.replace(
                event, join_status=JoinStatus.LEARNED, joined_reward=1.0 if i % 3 else -0.5
            )
        )
    engine.shutdown()
    return out


async def put(client: Client, events: list[Event], ready: bool = True) -> None:
    """Each closed event on its policy's stream, as the replica closing its join puts it:
    with its DSJSON line and example text (`ready`), or as the event alone."""
    for event in events:
        encoded = codec.encode(event)
        fields: dict[str, bytes | str] = {"e": encoded, "id": event.event_id}
        if ready:
            fields.update(d=dsjson.line(event, encoded), x=example_text(event))
        await client.xadd(keys.joined(event.policy), fields)  # type: ignore[arg-type]


def logged_ids(data_dir: Path) -> list[str]:
    """The event ids of the data dir's DSJSON decision log, in order (whole lines only: the
    learner may be writing the last one while this reads)."""
    ids = []
    for path in sorted((data_dir / "policies" / POLICY / "decisions").glob("*.dsjson")):
        for line in path.read_bytes().split(b"\n")[:-1]:
            if line.strip():
                ids.append(orjson.loads(line)["EventId"])
    return ids


async def pending(client: Client) -> int:
    summary = await client.xpending(keys.joined(POLICY), keys.LEARNERS)
    return int(summary["pending"])


async def published(client: Client) -> dict[str, bytes]:
    fields: dict[Any, Any] = await client.hgetall(keys.model(POLICY))
    return {k.decode(): v for k, v in fields.items()}


async def wait_for(
    condition: Callable[[], Awaitable[bool]] | Callable[[], bool],
    what: str,
    within: float = 30.0,
) -> float:
    """Poll `condition` until it holds; the seconds it took. Fails naming `what`."""
    started = time.monotonic()
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return time.monotonic() - started
        if time.monotonic() - started > within:
            pytest.fail(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.02)


def learner(client: Client, data_dir: Path, **options: Any) -> Learner:
    settings: dict[str, Any] = {
        "lease_ttl": 2.0,
        "publish_interval": 0.1,
        "checkpoint_every": 20,
        "checkpoint_interval": 0.5,
    }
    settings.update(options)
    return Learner(client, config(), data_dir, Durability(), **settings)


async def stopped(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


# -- learning, acking, publishing, following ---------------------------------------------------


async def learn_and_follow(url: str, data_dir: Path, n: int, channel_only: bool) -> None:
    """A learner learns `n` stream entries, logs, checkpoints, acks and publishes them; a
    follower swaps the published model into a replica's engine, which then predicts as the
    learner does. With `channel_only`, the follower's periodic check is an hour apart: the
    models reach it by the channel. A follower started later finds the model by its check."""
    events = closed_events(n)
    client = await connect(url)
    replica = Engine(config(), MemoryStore(), NullListener(), time.time, learns=False)
    follower = ModelFollower(client, replica, interval=3600.0 if channel_only else 0.2)
    following = asyncio.create_task(follower.run())
    if channel_only:
        await wait_for(lambda: subscribed(client), "the follower to subscribe")
    a = learner(client, data_dir)
    learning = asyncio.create_task(a.run())
    try:
        await put(client, events)
        await wait_for(lambda: a.learned(POLICY) == n, "the learner to learn every entry")
        await wait_for(lambda: none_pending(client), "every entry acked (after a checkpoint)")
        await wait_for(
            lambda: replica.policies[POLICY].model.version == str(n),
            "the replica to swap the published model in",
        )
        model = await published(client)
        assert model["version"] == str(n).encode()
        assert model["vw_args"] == config().policies[POLICY].vw_args.encode()
        assert follower.versions() == {POLICY: str(n)}
        assert replica.policies[POLICY].model.costs(LINES) == pytest.approx(
            a.model(POLICY).costs(LINES), abs=1e-6
        )
        assert sorted(logged_ids(data_dir)) == sorted(e.event_id for e in events)
        assert list((data_dir / "policies" / POLICY / "models").glob("*.json"))  # checkpoints
        assert await client.xlen(keys.joined(POLICY)) == 0  # acked entries are deleted
    finally:
        await stopped(learning)
        await a.stop()
        await stopped(following)
        replica.shutdown()
    assert await client.get(keys.lease(POLICY)) is None  # released at stop
    late = Engine(config(), MemoryStore(), NullListener(), time.time, learns=False)
    await ModelFollower(client, late).check()
    assert late.policies[POLICY].model.version == str(n)
    late.shutdown()
    await client.aclose()


async def subscribed(client: Client) -> bool:
    counts = await client.pubsub_numsub(keys.MODELS_CHANNEL)
    return bool(counts) and counts[0][1] >= 1


async def none_pending(client: Client) -> bool:
    return await pending(client) == 0


async def learn_all(client: Client, data_dir: Path, n: int) -> list[float]:
    """Run a learner until it has logged `n` events; the model's costs on LINES then (the
    client is closed after)."""
    a = learner(client, data_dir)
    task = asyncio.create_task(a.run())
    try:
        await wait_for(lambda: len(logged_ids(data_dir)) == n, "all logged")
        return a.model(POLICY).costs(LINES)
    finally:
        await stopped(task)
        await a.stop()
        await client.aclose()


def decision_lines(data_dir: Path) -> list[bytes]:
    """The DSJSON lines a learner logged, in order."""
    found = sorted((data_dir / "policies" / POLICY / "decisions").glob("*.dsjson"))
    return [line for path in found for line in path.read_bytes().splitlines()]


def test_a_learner_learns_logs_acks_and_publishes_and_replicas_follow(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    asyncio.run(learn_and_follow(redis_server.url, tmp_path / "learner", 130, channel_only=True))


def test_the_learner_and_the_follower_work_against_a_cluster(
    redis_cluster: RedisCluster, tmp_path: Path
) -> None:
    asyncio.run(learn_and_follow(redis_cluster.url, tmp_path / "learner", 60, channel_only=False))


def test_an_event_on_the_stream_twice_is_learned_once(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """Repeats (a replica that crashed after putting a closed event on the stream puts it
    again) are learned once and logged once; a skipped join is logged, not learned."""
    events = closed_events(30)
    events[29] = dataclasses.replace(events[29], join_status=JoinStatus.SKIPPED)
    repeated = [*events, *events[:10], events[0], *events[25:]]

    async def main() -> None:
        client = await connect(redis_server.url)
        a = learner(client, tmp_path / "learner", checkpoint_every=7)
        learning = asyncio.create_task(a.run())
        try:
            await put(client, repeated[:20])
            await wait_for(lambda: a.learned(POLICY) == 20, "the first entries learned")
            await put(client, repeated[20:])
            await wait_for(
                lambda: none_pending_of(client, len(repeated)), "every entry handled and acked"
            )
            assert a.learned(POLICY) == len(events) - 1  # all but the skipped one
            assert Counter(logged_ids(tmp_path / "learner")) == Counter(e.event_id for e in events)
        finally:
            await stopped(learning)
            await a.stop()
        await client.aclose()

    asyncio.run(main())


async def none_pending_of(client: Client, added: int) -> bool:
    """Every one of `added` entries was delivered to the group and none is pending."""
    info = await client.xinfo_groups(keys.joined(POLICY))
    read = info[0].get("entries-read") if info else None
    return read == added and await pending(client) == 0


# -- crashes and takeovers ---------------------------------------------------------------------

CHILD = """
import asyncio, sys
from pathlib import Path
from nextbest.policy.config import load_config
from nextbest.store.durable import Durability
from nextbest.store.redis.connection import connect
from nextbest.store.redis.learner import Learner

async def main() -> None:
    client = await connect(sys.argv[1])
    learner = Learner(client, load_config(sys.argv[3]), Path(sys.argv[2]), Durability(),
                      lease_ttl=2.0, publish_interval=0.1, checkpoint_every=25,
                      checkpoint_interval=3600.0, consumer="first")
    await learner.run()

asyncio.run(main())
"""


def test_a_learner_killed_mid_stream_is_taken_over_and_nothing_is_lost_or_learned_twice(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    data_dir = tmp_path / "learner"
    events = closed_events(200)
    ttl = 2.0  # the take-over must come within 2 × ttl, on a loaded CI machine too

    async def until_it_dies() -> None:
        # Five chunks of 25, each checkpointed and acked (a checkpoint every 25 events, so
        # at the end of each chunk however it is read), then 15 that are learned and logged
        # but not checkpointed, so not acked, when it is killed.
        client = await connect(redis_server.url)
        for start in range(0, 125, 25):
            await put(client, events[start : start + 25])
            acked = functools.partial(none_pending_of, client, start + 25)
            await wait_for(acked, f"{start + 25} acked")
        await put(client, events[125:140])
        await wait_for(lambda: len(logged_ids(data_dir)) == 140, "140 learned")
        assert await pending(client) == 15
        await client.aclose()

    async def after(killed_at: float) -> None:
        client = await connect(redis_server.url)
        # More arrive meanwhile, with repeats of an un-acked event and of an acked one.
        await put(client, [*events[140:], events[135], events[5]])
        b = learner(client, data_dir, lease_ttl=ttl, consumer="second")
        learning = asyncio.create_task(b.run())
        try:
            await wait_for(lambda: b.holds(POLICY), "the second learner to take the lease")
            assert time.monotonic() - killed_at < 2 * ttl
            assert b.learned(POLICY) >= 140  # recovered: the checkpoint and the log after it
            await wait_for(lambda: b.learned(POLICY) == len(events), "every event learned")
            await wait_for(lambda: none_pending(client), "every entry acked")
            assert Counter(logged_ids(data_dir)) == Counter(e.event_id for e in events)
        finally:
            await stopped(learning)
            await b.stop()
        assert b.learned(POLICY) == len(events)
        await client.aclose()

    with (tmp_path / "child.log").open("wb") as out:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, redis_server.url, str(data_dir), str(EXAMPLE)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        asyncio.run(until_it_dies())
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    asyncio.run(after(time.monotonic()))


def test_a_write_refused_mid_batch_leaves_that_chunk_and_the_rest_unlearned_and_unacked(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """A batch is logged and learned a chunk (`CHUNK` entries) at a time. When the data dir
    refuses a chunk's lines (here: a file size limit, as a full disk would), the chunks
    before it stay logged and learned, and the next checkpoint acks exactly them; that
    chunk and the rest of the batch are neither logged, learned nor acked, so a learner
    that can write learns each of them, once."""
    data_dir = tmp_path / "learner"
    events = closed_events(3 * CHUNK)
    # Files may grow by a chunk and a half of lines: the first chunk fits, the second not.
    limit = sum(len(dsjson.line(e, codec.encode(e))) + 1 for e in events[: CHUNK + CHUNK // 2])

    def small_disk() -> None:  # files of the child may not grow past `limit`
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    async def before() -> None:
        client = await connect(redis_server.url)
        await put(client, events)  # before the learner starts: all of them in its first batch
        await client.aclose()

    async def stuck() -> None:
        client = await connect(redis_server.url)
        first = [e.event_id for e in events[:CHUNK]]
        await wait_for(lambda: logged_ids(data_dir) == first, "the first chunk logged")
        await wait_for(lambda: published_version(client, str(CHUNK)), "its model published")
        stream = keys.joined(POLICY)
        await wait_for(lambda: length_is(client, stream, 2 * CHUNK), "the first chunk acked")
        entries: Any = await client.xrange(stream)
        left = [fields[b"id"].decode() for _, fields in entries]
        assert left == [e.event_id for e in events[CHUNK:]]
        assert logged_ids(data_dir) == first  # the write refused left no line behind
        await client.aclose()

    async def after() -> None:
        client = await connect(redis_server.url)
        b = learner(client, data_dir, consumer="second")
        learning = asyncio.create_task(b.run())
        try:
            await wait_for(lambda: b.learned(POLICY) == len(events), "every event learned")
            await wait_for(lambda: none_pending(client), "every entry acked")
            assert Counter(logged_ids(data_dir)) == Counter(e.event_id for e in events)
        finally:
            await stopped(learning)
            await b.stop()
        assert b.learned(POLICY) == len(events)
        await client.aclose()

    asyncio.run(before())
    with (tmp_path / "child.log").open("wb") as out:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, redis_server.url, str(data_dir), str(EXAMPLE)],
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=small_disk,
        )
    try:
        asyncio.run(stuck())
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    asyncio.run(after())


async def length_is(client: Client, stream: str, n: int) -> bool:
    return await client.xlen(stream) == n


def test_a_standby_with_an_empty_data_dir_continues_from_the_published_model(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """A learner dies (here: its task cancelled, never stopped) after learning and
    publishing but before any checkpoint acked an entry; a standby on another data dir
    takes over from the published model, skips what it names, learns the rest. The dead
    learner, stopped later, is stale: its acks and publishes are refused."""
    events = closed_events(90)
    ttl = 1.0

    async def main() -> None:
        client = await connect(redis_server.url)
        a = learner(
            client,
            tmp_path / "a",
            lease_ttl=ttl,
            checkpoint_every=10**6,
            checkpoint_interval=3600.0,
            consumer="a",
        )
        learning = asyncio.create_task(a.run())
        await put(client, events[:50])
        await wait_for(lambda: a.learned(POLICY) == 50, "a learns 50")
        await wait_for(
            lambda: published_version(client, "50"), "a publishes the model of 50 events"
        )
        assert await pending(client) == 50  # learned, not acked
        await stopped(learning)  # dies: no stop(), its lease runs out
        died_at = time.monotonic()
        await put(client, events[50:])
        # Publishing every millisecond: a tick must not publish before the take-over
        # has read the model it adopts (it would overwrite it with its own empty one).
        b = learner(client, tmp_path / "b", lease_ttl=ttl, consumer="b", publish_interval=0.001)
        standby = asyncio.create_task(b.run())
        try:
            await wait_for(lambda: b.holds(POLICY), "the standby to take the lease")
            assert time.monotonic() - died_at < 2 * ttl
            await wait_for(lambda: b.learned(POLICY) == len(events), "every event learned")
            await wait_for(lambda: none_pending(client), "every entry acked")
            # Its own log holds what it learned itself; a's holds the rest.
            assert sorted(logged_ids(tmp_path / "b")) == [e.event_id for e in events[50:]]
            await wait_for(lambda: published_version(client, str(len(events))), "b publishes")
            token = (await published(client))["token"]
            await a.stop()  # stale: neither acks nor publishes
            assert (await published(client))["token"] == token
            assert await client.get(keys.lease(POLICY)) == token  # not released by a
        finally:
            await stopped(standby)
            await b.stop()
        await client.aclose()

    asyncio.run(main())


async def published_version(client: Client, version: str) -> bool:
    return (await published(client)).get("version") == version.encode()


def test_a_stale_learner_can_neither_ack_nor_publish(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """Its lease taken by another (here: set by hand, as if it had expired while this one
    was paused, too long to renew), the learner still learns what it reads until it finds
    out, but every ack and publish is refused by the fence: the entries stay pending for
    the new holder and the published model stays as it was."""
    events = closed_events(10)

    async def main() -> None:
        client = await connect(redis_server.url)
        a = learner(client, tmp_path / "a", lease_ttl=60.0, checkpoint_every=1)
        learning = asyncio.create_task(a.run())
        try:
            await put(client, events[:5])
            await wait_for(lambda: none_pending_of(client, 5), "the first 5 acked")
            await wait_for(lambda: published_version(client, "5"), "the model of 5 published")
            before = await published(client)
            intruder = b"999999:intruder:0"
            await client.set(keys.lease(POLICY), intruder)
            await put(client, events[5:])
            await wait_for(lambda: not a.holds(POLICY), "the learner to find its lease gone")
            read = await pending(client)  # what it read (and learned) before it found out
            assert read >= 1
            assert 5 < a.learned(POLICY) <= 5 + read  # learned (some of) them
            assert await client.xlen(keys.joined(POLICY)) == 5  # none of the 5 acked
            assert await published(client) == before  # nothing published
            await a.stop()
            assert await client.get(keys.lease(POLICY)) == intruder  # not released by it
            assert await client.xlen(keys.joined(POLICY)) == 5
            assert await pending(client) == read
            assert await published(client) == before
        finally:
            await stopped(learning)
            await a.stop()
        await client.aclose()

    asyncio.run(main())


def test_what_a_stale_learner_read_after_a_takeover_is_claimed_by_the_new_holder(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """The lease of `a` runs out while it is paused (here: deleted by hand, and `a` renews
    only every 20 s); `b` takes it. Until `a` finds out, both read from the group, so some
    entries are delivered to `a` after `b` claimed what was pending at its start: `a` learns
    them but cannot ack them. `b` claims them within a ttl, learns them, acks them, and
    deletes `a` from the group."""
    events = closed_events(60)

    async def main() -> None:
        client = await connect(redis_server.url)
        a = learner(client, tmp_path / "a", lease_ttl=60.0, checkpoint_every=1, consumer="a")
        b = learner(client, tmp_path / "b", lease_ttl=1.0, checkpoint_every=5, consumer="b")
        first = asyncio.create_task(a.run())
        second: asyncio.Task[None] | None = None
        try:
            await put(client, events[:10])
            await wait_for(lambda: none_pending_of(client, 10), "a acks the first 10")
            await client.delete(keys.lease(POLICY))  # a's lease ran out
            second = asyncio.create_task(b.run())
            await wait_for(lambda: b.holds(POLICY), "b takes the lease")
            # b's first pass over what is pending (for a: nothing) deletes a from the group
            await wait_for(lambda: not_consumer(client, b"a"), "b's first claim done")
            for event in events[10:]:  # one at a time: both a and b read some
                await put(client, [event])
            await wait_for(lambda: not a.holds(POLICY), "a finds its lease gone")
            assert a.learned(POLICY) > 10  # it read (and learned) some after the takeover
            await wait_for(lambda: b.learned(POLICY) == len(events), "b learns every event")
            await wait_for(lambda: none_pending(client), "every entry acked")
            consumers = await client.xinfo_consumers(keys.joined(POLICY), keys.LEARNERS)
            assert [c["name"] for c in consumers] == [b"b"]
        finally:
            await stopped(first)
            if second is not None:
                await stopped(second)
            await a.stop()
            await b.stop()
        await client.aclose()

    asyncio.run(main())


async def not_consumer(client: Client, name: bytes) -> bool:
    consumers = await client.xinfo_consumers(keys.joined(POLICY), keys.LEARNERS)
    return name not in [c["name"] for c in consumers]


def test_entries_with_the_replicas_line_are_logged_and_learned_as_the_event_alone(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """A replica puts each settled event's DSJSON line and example text on the stream, so
    the learner neither decodes nor builds them; an entry without them (an older replica)
    takes the long way. Both log the same lines and learn the same model."""
    events = closed_events(60)
    for i in range(0, 60, 7):  # some not learned (deferred, never activated)
        events[i] = dataclasses.replace(events[i], join_status=JoinStatus.SKIPPED)

    async def learned(url: str, data_dir: Path, ready: bool) -> list[float]:
        client = await connect(url)
        await put(client, events, ready=ready)
        return await learn_all(client, data_dir, len(events))

    other_db = redis_server.url.rsplit("/", 1)[0] + "/1"
    fast = asyncio.run(learned(redis_server.url, tmp_path / "fast", True))
    slow = asyncio.run(learned(other_db, tmp_path / "slow", False))
    assert fast == slow

    assert decision_lines(tmp_path / "fast") == decision_lines(tmp_path / "slow")
    assert len(decision_lines(tmp_path / "fast")) == len(events)


def test_an_entrys_fields_are_read_by_name_in_any_order(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """The learner reads the fields of an entry put as replicas put them (e, id, d, x)
    without making a dict of them; in another order, or with a field more, it reads them
    by name: the same lines are logged and the same model learned."""
    events = closed_events(40)
    for i in range(0, 40, 9):
        events[i] = dataclasses.replace(events[i], join_status=JoinStatus.SKIPPED)

    async def learned(url: str, data_dir: Path, reordered: bool) -> list[float]:
        client = await connect(url)
        for event in events:
            encoded = codec.encode(event)
            fields: dict[str, bytes | str] = {
                "e": encoded,
                "id": event.event_id,
                "d": dsjson.line(event, encoded),
                "x": example_text(event),
            }
            if reordered:  # read by place, the encoded event would be logged as the line
                fields = {"d": fields["d"], "id": fields["id"], "e": encoded, "x": fields["x"]}
                if event.event_id.endswith(("3", "6")):
                    fields["v"] = "2"  # a field this learner does not know
            await client.xadd(keys.joined(POLICY), fields)  # type: ignore[arg-type]
        return await learn_all(client, data_dir, len(events))

    other_db = redis_server.url.rsplit("/", 1)[0] + "/1"
    usual = asyncio.run(learned(redis_server.url, tmp_path / "usual", False))
    reordered = asyncio.run(learned(other_db, tmp_path / "reordered", True))
    assert usual == reordered

    assert decision_lines(tmp_path / "usual") == decision_lines(tmp_path / "reordered")
    assert [orjson.loads(line)["EventId"] for line in decision_lines(tmp_path / "usual")] == [
        e.event_id for e in events
    ]
