"""Redis mode end to end: `nextbest serve --redis` processes, a real redis-server.

Serving replicas (`--role server`) share the join through Redis, so a reward may reach any
replica; one learner (`--role learner`) closes ended windows, learns from the joined
stream and publishes models, which every replica hot-swaps.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import yaml

from nextbest.simulate.news import NewsScenario
from nextbest.simulate.simulation import NEXTBEST, Options, simulate
from nextbest_proto.v1 import decision_pb2 as pb
from nextbest_proto.v1 import decision_pb2_grpc as rpc
from tests.conftest import EXAMPLE
from tests.integration.conftest import Process, wait_for
from tests.redis_server import RedisServer

PUBLISH = "0.2"  # seconds between model snapshots: quick for the tests


class Replica:
    """A `nextbest serve --redis` process and a stub on its gRPC port."""

    def __init__(
        self, data_dir: Path, redis: str, role: str, config: Path = EXAMPLE, *extra: str
    ) -> None:
        self.process = Process(
            "serve",
            "--config", str(config),
            "--address", "127.0.0.1:0",
            "--metrics-address", "127.0.0.1:0",
            "--data-dir", str(data_dir),
            "--redis", redis,
            "--role", role,
            "--model-publish-interval", PUBLISH,
            *extra,
        )  # fmt: skip
        serving = self.process.wait_event("serving")
        self.target = f"127.0.0.1:{serving['grpc_address'].rpartition(':')[2]}"
        self.channel = grpc.insecure_channel(self.target)
        self.stub = rpc.DecisionServiceStub(self.channel)

    def stop(self) -> int:
        self.channel.close()
        return self.process.stop()


@pytest.fixture
def deployment(tmp_path: Path, redis_server: RedisServer) -> Iterator[list[Replica]]:
    """A learner and three serving replicas on one Redis."""
    started = [Replica(tmp_path / "learner", redis_server.url, "learner")]
    try:
        for name in ("a", "b", "c"):
            started.append(Replica(tmp_path / name, redis_server.url, "server"))
        yield started
    finally:
        for replica in started:
            replica.stop()


def test_rewards_join_on_any_replica_and_the_model_reaches_every_one(
    deployment: list[Replica],
) -> None:
    _, a, b, c = deployment
    events = []
    for i in range(30):
        response = a.stub.Decide(
            pb.DecideRequest(
                policy="support.next_step",
                intent="billing_dispute",
                context={"amount": pb.Value(number=10.0 + i)},
            ),
            timeout=10,
        )
        events.append(response.event_id)
    for i, event_id in enumerate(events):
        replica = b if i % 2 else c
        answer = replica.stub.Reward(pb.RewardRequest(event_id=event_id, value=1.0), timeout=10)
        assert answer.status == pb.REWARD_STATUS_ACCEPTED  # `earliest`: closed in the call
    # The learner learns all 30 and publishes; every replica serves that model.
    for replica in (a, b, c):

        def version(replica: Replica = replica) -> bool:
            response = replica.stub.Decide(
                pb.DecideRequest(policy="support.next_step", intent="x"), timeout=10
            )
            return int(response.model_version) >= 30

        wait_for(version, timeout=30)
    explained = a.stub.Explain(pb.ExplainRequest(event_id=events[1]), timeout=10)
    assert [r.value for r in explained.rewards] == [1.0]  # sent to b, read on a


def test_news_learns_through_redis_mode_as_well_as_embedded(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    scenario = NewsScenario()
    config = tmp_path / "news.yaml"
    config.write_text(yaml.safe_dump(scenario.config()), encoding="utf-8")
    learner = Replica(tmp_path / "learner", redis_server.url, "learner", config)
    replica = Replica(tmp_path / "a", redis_server.url, "server", config)
    try:
        rounds = 5000
        redis_mode = simulate(scenario, Options(rounds=rounds, seed=1, target=replica.target))
    finally:
        replica.stop()
        learner.stop()
    embedded = simulate(scenario, Options(rounds=rounds, seed=1))
    last = 1000
    assert redis_mode.mean(NEXTBEST, last) >= 0.95 * embedded.mean(NEXTBEST, last)


def test_a_replica_stopped_as_soon_as_it_serves_exits_cleanly(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """redis-py can swallow a cancel while it connects or subscribes; the shutdown cancels
    again until every task has ended, so an early SIGTERM never hangs a replica."""
    for i in range(4):
        replica = Replica(tmp_path / f"r{i}", redis_server.url, "all" if i % 2 else "server")
        assert replica.stop() == 0
