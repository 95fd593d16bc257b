"""The metrics the dashboard and alerts need beyond decisions and rewards: join delay, the
reward each join settled on, default-reward joins, the last model update, config changes."""

from __future__ import annotations

from typing import Any

from nextbest.observability.metrics import Metrics, Telemetry
from nextbest.policy.engine import Engine
from nextbest.policy.ports import run_now
from nextbest.policy.requests import DecideInput, RewardInput
from nextbest.store.memory import MemoryStore
from tests.conftest import make_config, support_policy

POLICY = {"policy": "p"}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def setup(**overrides: Any) -> tuple[Engine, Metrics, Clock]:
    clock = Clock()
    metrics = Metrics()
    telemetry = Telemetry(metrics, clock=clock)
    engine = Engine(make_config(p=support_policy(**overrides)), MemoryStore(), telemetry, clock)
    return engine, metrics, clock


def value(metrics: Metrics, name: str, labels: dict[str, str] = POLICY) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def decide(engine: Engine) -> str:
    return run_now(engine.decide(DecideInput(policy="p", intent="x", context={}))).event_id


def test_a_rewarded_join_records_its_delay_reward_and_the_model_update() -> None:
    engine, metrics, clock = setup()
    assert value(metrics, "nextbest_model_last_update_timestamp_seconds") == 1_000.0  # start
    event_id = decide(engine)
    clock.now += 7.0
    run_now(engine.reward(RewardInput(event_id, value=0.5)))  # earliest: learned at once
    assert value(metrics, "nextbest_join_delay_seconds_count") == 1
    assert value(metrics, "nextbest_join_delay_seconds_sum") == 7.0
    assert value(metrics, "nextbest_join_delay_seconds_bucket", {**POLICY, "le": "5.0"}) == 0
    assert value(metrics, "nextbest_join_delay_seconds_bucket", {**POLICY, "le": "15.0"}) == 1
    assert value(metrics, "nextbest_joined_reward_sum") == 0.5
    assert value(metrics, "nextbest_default_rewards_total") is None
    assert value(metrics, "nextbest_model_last_update_timestamp_seconds") == 1_007.0


def test_a_join_without_reward_counts_as_default() -> None:
    engine, metrics, clock = setup()
    decide(engine)
    clock.now += 601  # the 10m window ended
    assert run_now(engine.settle_due()) == 1
    assert value(metrics, "nextbest_default_rewards_total") == 1
    assert value(metrics, "nextbest_joined_reward_count") == 1
    assert value(metrics, "nextbest_joined_reward_sum") == 0.0  # reward.default
    assert value(metrics, "nextbest_join_delay_seconds_sum") == 601


def test_a_policy_that_does_not_learn_leaves_the_last_update_alone() -> None:
    engine, metrics, clock = setup(mode="frozen")
    event_id = decide(engine)
    clock.now += 5
    run_now(engine.reward(RewardInput(event_id, value=1.0)))
    clock.now += 601
    run_now(engine.settle_due())
    assert value(metrics, "nextbest_skipped_events_total") == 1
    assert value(metrics, "nextbest_join_delay_seconds_count") == 1
    assert value(metrics, "nextbest_model_last_update_timestamp_seconds") == 1_000.0


def test_config_changes_count_version_changes_only() -> None:
    engine, metrics, _ = setup()
    changes = {**POLICY, "kind": "reload"}
    assert value(metrics, "nextbest_config_changes_total", changes) == 0  # exported from start
    engine.reload(engine.config)  # same file again: no change
    assert value(metrics, "nextbest_config_changes_total", changes) == 0
    exploration = {"epsilon": 0.05, "max_epsilon": 0.3}
    engine.reload(make_config(p=support_policy(exploration=exploration)))
    assert value(metrics, "nextbest_config_changes_total", changes) == 1
    engine.reload(make_config(p=support_policy(exploration=exploration)))
    assert value(metrics, "nextbest_config_changes_total", changes) == 1
