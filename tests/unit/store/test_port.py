"""The store port: the engine hands an event and a change; the store persists the change
and returns the event as it now is, leaving the one it was handed alone (so that a store
whose state lives on a server can implement it with the same engine)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from nextbest.policy.events import JoinStatus, ReceivedReward, RewardStatus
from nextbest.policy.ports import run_now
from nextbest.policy.requests import DecideInput
from nextbest.store.memory import MemoryStore
from tests.unit.store.test_durable import Clock, config, start


def _stores(tmp_path: Path) -> list[MemoryStore]:
    engine, durable, _ = start(tmp_path, config(), Clock())
    run_now(engine.decide(DecideInput("p", "x", event_id="e", defer_activation=True)))
    memory = MemoryStore()
    event = run_now(durable.get("e"))
    assert event is not None
    run_now(memory.add(event))
    return [memory, durable]


def test_changes_come_back_and_what_was_handed_stays(tmp_path: Path) -> None:
    for store in _stores(tmp_path):
        read = run_now(store.get("e"))
        assert read is not None
        reward = ReceivedReward("r", 0.5, {}, RewardStatus.ACCEPTED, read.decided_at)
        rewarded, kept = run_now(store.add_reward(read, reward))
        assert kept == reward
        assert rewarded.rewards == [reward]
        assert read.rewards == []
        activated = run_now(store.activate(rewarded))
        assert activated.activated
        assert not rewarded.activated
        again = run_now(store.get("e"))
        assert again is not None
        assert (again.rewards, again.activated) == ([reward], True)
        assert again.join_status is JoinStatus.PENDING


def test_run_now_refuses_a_coroutine_that_suspends() -> None:
    async def suspends() -> int:
        await asyncio.sleep(0)
        return 1

    with pytest.raises(RuntimeError, match="suspended"):
        run_now(suspends())
