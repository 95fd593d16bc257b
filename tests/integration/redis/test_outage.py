"""A Redis outage under load: serving replicas keep deciding with the model they have,
spool what they acknowledge in their data dir, and hand it over when Redis is back.
Nothing acknowledged is lost, nothing is counted twice, and no replica exits."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from nextbest_proto.v1 import decision_pb2 as pb
from tests.conftest import support_policy
from tests.integration.conftest import wait_for
from tests.integration.redis.test_learner import logged_ids
from tests.integration.redis.test_replicas import Replica
from tests.redis_server import RedisServer

POLICY = "support.next_step"
WAIT = 2.0  # seconds: the reward window, so that unrewarded joins close during the test


@pytest.fixture
def config(tmp_path: Path) -> Path:
    reward = dict(support_policy()["reward"], wait=f"{WAIT}s")
    path = tmp_path / "policies.yaml"
    path.write_text(
        yaml.safe_dump({"policies": {POLICY: support_policy(reward=reward)}}), encoding="utf-8"
    )
    return path


@pytest.fixture
def deployment(
    tmp_path: Path, redis_server: RedisServer, config: Path
) -> Iterator[tuple[Replica, Replica, Replica]]:
    learner = Replica(tmp_path / "learner", redis_server.url, "learner", config)
    started = [learner]
    try:
        for name in ("a", "b"):
            started.append(Replica(tmp_path / name, redis_server.url, "server", config))
        yield learner, started[1], started[2]
    finally:
        for replica in started:
            replica.stop()


def decide(replica: Replica, i: int) -> str:
    answer = replica.stub.Decide(
        pb.DecideRequest(policy=POLICY, intent="billing", context={"n": pb.Value(number=i)}),
        timeout=10,
    )
    return str(answer.event_id)


def serving(replica: Replica) -> bool:
    stub = health_pb2_grpc.HealthStub(replica.channel)
    answer = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)


class Load:
    """Decides on a replica from a thread until stopped; keeps the ids acknowledged."""

    def __init__(self, replica: Replica) -> None:
        self.replica = replica
        self.acknowledged: list[str] = []
        self.refused = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            i += 1
            try:
                self.acknowledged.append(decide(self.replica, i))
            except grpc.RpcError:
                self.refused += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def test_a_redis_outage_under_load_loses_nothing_and_counts_nothing_twice(
    tmp_path: Path, redis_server: RedisServer, deployment: tuple[Replica, Replica, Replica]
) -> None:
    learner, a, b = deployment
    before = [decide(a, i) for i in range(10)]  # in Redis: rewarded during the outage
    load = Load(a)
    wait_for(lambda: len(load.acknowledged) >= 20)
    redis_server.stop()
    # While Redis is down: decisions go on, on both replicas; each replica answers for
    # what it spooled; rewards for events it cannot read are queued.
    during = [decide(b, i) for i in range(10)]
    reached = len(load.acknowledged)
    wait_for(lambda: len(load.acknowledged) >= reached + 50)
    for event_id in during:
        answer = b.stub.Reward(pb.RewardRequest(event_id=event_id, value=1.0), timeout=10)
        assert answer.status == pb.REWARD_STATUS_ACCEPTED  # b holds the event: joined now
        explained = b.stub.Explain(pb.ExplainRequest(event_id=event_id), timeout=10)
        assert [r.value for r in explained.rewards] == [1.0]
    for event_id in before:
        answer = b.stub.Reward(
            pb.RewardRequest(event_id=event_id, value=0.5, reward_id=f"r-{event_id}"), timeout=10
        )
        assert answer.status == pb.REWARD_STATUS_QUEUED
    with pytest.raises(grpc.RpcError) as unreachable:  # not spooled here: cannot be read
        b.stub.Explain(pb.ExplainRequest(event_id=before[0]), timeout=10)
    assert unreachable.value.code() == grpc.StatusCode.UNAVAILABLE
    assert serving(a)
    assert serving(b)
    redis_server.start()
    reached = len(load.acknowledged)
    wait_for(lambda: len(load.acknowledged) >= reached + 20)  # decisions reach Redis again
    load.stop()
    assert load.refused == 0  # not one Decide was refused through the outage

    acknowledged = [*before, *load.acknowledged, *during]
    assert len(set(acknowledged)) == len(acknowledged)

    # Every acknowledged decision is joined and learned once (unrewarded ones when their
    # window ends), and every reward counted once, as received.
    def all_learned() -> bool:
        return len(set(logged_ids(tmp_path / "learner"))) >= len(acknowledged)

    wait_for(all_learned, timeout=60)
    logged = logged_ids(tmp_path / "learner")
    assert sorted(logged) == sorted(acknowledged)  # nothing lost, nothing twice
    for event_id in before:
        explained = a.stub.Explain(pb.ExplainRequest(event_id=event_id), timeout=10)
        assert [(r.value, r.reward_id) for r in explained.rewards] == [(0.5, f"r-{event_id}")]
    for event_id in during:
        explained = a.stub.Explain(pb.ExplainRequest(event_id=event_id), timeout=10)
        assert [r.value for r in explained.rewards] == [1.0]
        assert explained.join_status == pb.JOIN_STATUS_LEARNED
    assert not list((tmp_path / "b" / "spool").glob("*.spool")) or all(
        p.stat().st_size == 0 for p in (tmp_path / "b" / "spool").glob("*.spool")
    )
    assert learner.process.proc.poll() is None
    assert a.process.proc.poll() is None
    assert b.process.proc.poll() is None


def test_health_says_not_serving_only_while_the_spool_is_full(
    tmp_path: Path, redis_server: RedisServer, config: Path
) -> None:
    replica = Replica(
        tmp_path / "a", redis_server.url, "server", config, "--spool-max-bytes", "8192"
    )
    try:
        redis_server.stop()
        acknowledged: list[str] = []
        refused = None
        for i in range(1000):
            try:
                acknowledged.append(decide(replica, i))
            except grpc.RpcError as exc:
                refused = exc
                break
            assert serving(replica)  # spooling is no reason to stop serving
        assert refused is not None
        assert refused.code() == grpc.StatusCode.UNAVAILABLE
        assert "spool is full" in str(refused.details())
        assert acknowledged
        wait_for(lambda: not serving(replica))
        redis_server.start()
        wait_for(lambda: serving(replica), timeout=30)
        for event_id in acknowledged:  # handed over to Redis, read back from there
            replica.stub.Explain(pb.ExplainRequest(event_id=event_id), timeout=10)
    finally:
        replica.stop()


def test_a_replica_stopped_while_redis_is_down_exits_cleanly(
    tmp_path: Path, redis_server: RedisServer, config: Path
) -> None:
    """Its Redis listeners are in their reconnect loops, where redis-py may swallow a
    cancel: the replica exits all the same, keeping what it spooled for its next start."""
    replica = Replica(tmp_path / "a", redis_server.url, "server", config)
    redis_server.stop()
    event_id = decide(replica, 1)  # spooled
    replica.process.wait_event("redis_unreachable")
    assert replica.stop() == 0  # Process.stop waits 30 s at most
    assert list((tmp_path / "a" / "spool").glob("*.spool"))  # kept for the next start
    redis_server.start()
    again = Replica(tmp_path / "a", redis_server.url, "server", config)
    try:
        explained = again.stub.Explain(pb.ExplainRequest(event_id=event_id), timeout=10)
        assert explained.event_id == event_id
        wait_for(
            lambda: not any(p.stat().st_size for p in (tmp_path / "a" / "spool").glob("*.spool"))
        )
    finally:
        again.stop()
