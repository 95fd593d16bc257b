"""Settling a join: the pure part (`settled`, `settled_by`) that both the engine's usual
path (`Joins._settle`) and a store settling with the reward (`settle_as`) build from."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from nextbest.policy.engine import Engine, PolicyRuntime
from nextbest.policy.events import Event, JoinStatus, ReceivedReward, RewardStatus
from nextbest.policy.joins import settled, settled_by
from nextbest.policy.ports import NullListener, run_now
from nextbest.policy.requests import DecideInput, RewardInput
from nextbest.store.memory import MemoryStore
from tests.conftest import make_config, support_policy

SUM = {"wait": "10m", "default": 0.25, "aggregation": "sum", "clip": [-1, 1]}
POLICY = "support.next_step"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class Recording(MemoryStore):
    """A memory store that records what the engine hands it on Reward and settle."""

    def __init__(self) -> None:
        super().__init__()
        self.handed: list[Event | None] = []
        self.settled: list[Event] = []

    async def add_reward(
        self, event: Event, reward: ReceivedReward, *, settle_as: Event | None = None
    ) -> tuple[Event, ReceivedReward | None]:
        self.handed.append(settle_as)
        return await super().add_reward(event, reward, settle_as=settle_as)

    async def settle(self, event: Event) -> bool:
        self.settled.append(event)
        return await super().settle(event)


def engine_with(store: MemoryStore, learns: bool = True, **policy: Any) -> Engine:
    config = make_config(support__next_step=support_policy(**policy))
    return Engine(config, store, NullListener(), Clock(), learns=learns)


@pytest.fixture
def engine() -> Iterator[Engine]:
    made = engine_with(MemoryStore(), reward=SUM)
    yield made
    made.shutdown()


def decided(engine: Engine, event_id: str = "e1", **kw: Any) -> Event:
    req = DecideInput(POLICY, "billing_dispute", {"account_age_days": 400.0}, event_id=event_id)
    return run_now(engine.decide(dataclasses.replace(req, **kw)))


def reward(value: float, status: RewardStatus = RewardStatus.ACCEPTED) -> ReceivedReward:
    return ReceivedReward("", value, {}, status, 1_000.0)


def runtime(engine: Engine) -> PolicyRuntime:
    return engine.policies[POLICY]


def test_accepted_rewards_are_aggregated_and_clipped_late_ones_ignored(engine: Engine) -> None:
    event = decided(engine)
    rewards = [reward(0.75), reward(0.5), reward(-3.0, RewardStatus.LATE)]
    done = settled(runtime(engine), dataclasses.replace(event, rewards=rewards))
    assert done.joined_reward == 1.0  # 1.25, clipped to [-1, 1]
    assert done.join_status is JoinStatus.LEARNED
    assert done.rewards == rewards
    assert event.join_status is JoinStatus.PENDING  # the event handed is left as it was


def test_no_accepted_reward_joins_the_default(engine: Engine) -> None:
    event = decided(engine)
    done = settled(
        runtime(engine), dataclasses.replace(event, rewards=[reward(1.0, RewardStatus.LATE)])
    )
    assert done.joined_reward == 0.25


def test_learned_only_in_a_learning_mode_and_once_acted_on(engine: Engine) -> None:
    rt = runtime(engine)
    event = decided(engine, defer_activation=True)
    assert settled(rt, event).join_status is JoinStatus.SKIPPED  # not activated
    activated = dataclasses.replace(event, activated=True)
    assert settled(rt, activated).join_status is JoinStatus.LEARNED
    frozen = dataclasses.replace(activated, mode="frozen")
    assert settled(rt, frozen).join_status is JoinStatus.SKIPPED
    assert settled(rt, dataclasses.replace(activated, mode="apprentice")).join_status is (
        JoinStatus.LEARNED
    )


def test_a_removed_policy_skips_without_a_joined_reward(engine: Engine) -> None:
    event = decided(engine)
    done = settled(None, dataclasses.replace(event, rewards=[reward(1.0)]))
    assert (done.join_status, done.joined_reward) == (JoinStatus.SKIPPED, None)


def test_settled_by_appends_the_reward(engine: Engine) -> None:
    event = dataclasses.replace(decided(engine), rewards=[reward(0.5, RewardStatus.LATE)])
    done = settled_by(runtime(engine), event, reward(0.25))
    assert done.rewards == [reward(0.5, RewardStatus.LATE), reward(0.25)]
    assert done == settled(runtime(engine), dataclasses.replace(event, rewards=done.rewards))
    assert len(event.rewards) == 1


def test_an_engine_that_learns_settles_through_the_store_and_learns() -> None:
    store = Recording()
    engine = engine_with(store)  # `earliest`
    try:
        decided(engine)
        run_now(engine.reward(RewardInput("e1", value=0.5)))
        assert store.handed == [None]  # it learns: the store is never asked to settle
        [done] = store.settled
        assert (done.join_status, done.joined_reward) == (JoinStatus.LEARNED, 0.5)
        assert runtime(engine).model.learned == 1
    finally:
        engine.shutdown()


def test_where_another_process_learns_the_store_is_handed_what_settle_would_get() -> None:
    store = Recording()
    engine = engine_with(store, learns=False)  # `earliest`
    try:
        decided(engine)
        decided(engine, "e2", defer_activation=True)
        run_now(engine.reward(RewardInput("e1", value=0.5)))
        run_now(engine.reward(RewardInput("e2", value=0.5)))  # waits for its activation
        run_now(engine.reward(RewardInput("e1", value=0.75)))  # late: settled already
        [handed, waiting, late] = store.handed
        assert waiting is None
        assert late is None
        # a memory store does not take it: the engine settles the usual way, identically
        assert store.settled == [handed]
        assert handed is not None
        assert handed.joined_reward == 0.5
        assert runtime(engine).model.learned == 0
    finally:
        engine.shutdown()
