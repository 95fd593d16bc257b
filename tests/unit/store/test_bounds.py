"""Memory is bounded in bytes, and a reward costs the same whatever came before it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from nextbest.policy.errors import ResourceExhausted
from nextbest.policy.events import ReceivedReward, RewardStatus
from nextbest.policy.ports import run_now
from nextbest.policy.requests import DecideInput
from nextbest.store.durable import Durability
from nextbest.store.memory import MemoryStore
from tests.unit.store.test_durable import Clock, config, start


def test_the_pending_bound_sheds_new_events_and_keeps_nothing(tmp_path: Path) -> None:
    clock = Clock()
    engine, store, _ = start(tmp_path, config(), clock, max_pending_bytes=20_000)
    kept, shed = 0, ""
    while not shed:
        try:
            run_now(engine.decide(DecideInput("p", "x", event_id=f"e{kept}")))
            kept += 1
        except ResourceExhausted as exc:
            shed = str(exc)
    assert "max_pending_bytes (20000) is reached" in shed
    assert store.pending_bytes() <= 20_000
    assert 5 < kept < 1000
    assert store.find(f"e{kept}") is None
    assert not run_now(store.used(f"e{kept}"))
    assert store.pending_counts() == {"p": kept}
    journal = b"".join(p.read_bytes() for p in (tmp_path / "journal").glob("*"))
    assert f'"e{kept}"'.encode() not in journal
    clock.now += 3600
    run_now(engine.settle_due())  # joins free the room
    run_now(engine.decide(DecideInput("p", "x", event_id="after")))


def test_closed_events_are_evicted_by_bytes_as_well_as_count() -> None:
    clock = Clock()
    store = MemoryStore(retain_closed=10_000, max_closed_bytes=20_000)
    from nextbest.policy.engine import Engine
    from nextbest.policy.ports import NullListener

    engine = Engine(config(), store, NullListener(), clock)
    for i in range(200):
        run_now(engine.decide(DecideInput("p", "x", event_id=f"c{i}")))
        clock.now += 1  # joins close in this order
    clock.now += 3600
    run_now(engine.settle_due())
    kept = [i for i in range(200) if store.find(f"c{i}") is not None]
    assert 5 < len(kept) < 200
    assert kept == list(range(200 - len(kept), 200))  # the newest stay
    assert store.closed_bytes() <= 20_000


@pytest.mark.parametrize("durable", [False, True])
def test_appending_a_reward_does_not_grow_with_the_rewards_before_it(
    tmp_path: Path, durable: bool
) -> None:
    clock = Clock()
    if durable:
        _, store, _ = start(tmp_path, config(aggregation="sum"), clock, Durability(fsync="never"))
    else:
        store = MemoryStore()  # type: ignore[assignment]
    from nextbest.policy.engine import Engine
    from nextbest.policy.ports import NullListener

    engine = Engine(config(aggregation="sum"), store, NullListener(), clock)
    event = run_now(engine.decide(DecideInput("p", "x", event_id="many")))
    timings: list[float] = []
    for i in range(3000):
        reward = ReceivedReward(f"r{i}", 0.001, {}, RewardStatus.ACCEPTED, clock.now)
        began = time.perf_counter()
        store.add_reward_now(event, reward)
        timings.append(time.perf_counter() - began)
    first, last = sorted(timings[:500])[250], sorted(timings[-500:])[250]  # medians
    assert last < 2.5 * first, (first, last)
    got = store.find("many")
    assert got is not None
    assert [r.reward_id for r in got.rewards] == [f"r{i}" for i in range(3000)]
