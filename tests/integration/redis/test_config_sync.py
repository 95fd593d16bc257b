"""Config in Redis mode: a live override or a reload made on one replica reaches every
replica (a message on a Redis channel, with a periodic check as the backstop); a replica
started later serves the overrides in force."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from nextbest_proto.v1 import admin_pb2 as apb
from nextbest_proto.v1 import admin_pb2_grpc as arpc
from nextbest_proto.v1 import decision_pb2 as pb
from tests.conftest import support_policy
from tests.integration.conftest import wait_for
from tests.integration.redis.test_replicas import Replica
from tests.redis_server import RedisServer

POLICY = "support.next_step"
REACHES_WITHIN = 3.0  # seconds: a message arrives in milliseconds, a check every 0.5 s


def write_config(path: Path, epsilon: float) -> None:
    exploration = {"epsilon": epsilon, "max_epsilon": 0.3}
    policy = support_policy(exploration=exploration)
    path.write_text(yaml.safe_dump({"policies": {POLICY: policy}}), encoding="utf-8")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "policies.yaml"
    write_config(path, 0.1)
    return path


@pytest.fixture
def replicas(tmp_path: Path, redis_server: RedisServer, config: Path) -> Iterator[list[Replica]]:
    started: list[Replica] = []
    try:
        for name in ("a", "b"):
            started.append(Replica(tmp_path / name, redis_server.url, "server", config))
        yield started
    finally:
        for replica in started:
            replica.stop()


def admin(replica: Replica) -> arpc.AdminServiceStub:
    return arpc.AdminServiceStub(replica.channel)


def epsilon(replica: Replica) -> float:
    status = admin(replica).GetPolicy(apb.GetPolicyRequest(policy=POLICY), timeout=10)
    return float(status.exploration.epsilon)


def config_version(replica: Replica) -> str:
    answer = replica.stub.Decide(pb.DecideRequest(policy=POLICY, intent="x"), timeout=10)
    return str(answer.config_version)


def test_an_override_set_on_one_replica_is_in_force_on_every_one(
    tmp_path: Path, redis_server: RedisServer, config: Path, replicas: list[Replica]
) -> None:
    a, b = replicas
    admin(a).SetExploration(
        apb.SetExplorationRequest(policy=POLICY, epsilon=0.25, reason="incident 42"), timeout=10
    )
    set_at = time.monotonic()
    wait_for(lambda: epsilon(b) == 0.25, timeout=REACHES_WITHIN)
    print(f"override reached the other replica in {time.monotonic() - set_at:.3f}s")
    assert config_version(b) == config_version(a)
    status = admin(b).GetPolicy(apb.GetPolicyRequest(policy=POLICY), timeout=10)
    (override,) = status.overrides
    assert (override.setting, override.set_by, override.reason) == (
        "exploration.epsilon",
        "anonymous",
        "incident 42",
    )
    admin(b).ClearOverrides(apb.ClearOverridesRequest(policy=POLICY, reason="over"), timeout=10)
    wait_for(lambda: epsilon(a) == 0.1, timeout=REACHES_WITHIN)
    # A replica started now serves what is in force.
    admin(a).SetMode(apb.SetModeRequest(policy=POLICY, mode="frozen", reason="audit"), timeout=10)
    wait_for(lambda: admin(b).GetPolicy(apb.GetPolicyRequest(policy=POLICY)).mode
             == "frozen", timeout=REACHES_WITHIN)  # fmt: skip
    late = Replica(tmp_path / "c", redis_server.url, "server", config)
    try:
        status = admin(late).GetPolicy(apb.GetPolicyRequest(policy=POLICY), timeout=10)
        assert status.mode == "frozen"
        assert config_version(late) == config_version(a)
    finally:
        late.stop()


def test_a_reload_on_one_replica_reloads_every_one(config: Path, replicas: list[Replica]) -> None:
    a, b = replicas
    before = config_version(b)
    write_config(config, 0.2)
    verdict = admin(a).ReloadConfig(apb.ReloadConfigRequest(reason="new file"), timeout=10)
    assert verdict.applied
    wait_for(lambda: epsilon(b) == 0.2, timeout=REACHES_WITHIN)
    assert config_version(b) == config_version(a) != before
