"""An event id is given to one event, forever: also past retention, also after a restart."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from nextbest.policy.config import Config
from nextbest.policy.events import JoinStatus, ReceivedReward, RewardStatus
from nextbest.policy.ports import run_now
from nextbest.policy.requests import DecideInput
from nextbest.store import codec
from nextbest.store.ids import IdIndex
from nextbest.store.memory import MemoryStore
from tests.conftest import make_config, support_policy
from tests.unit.store.test_durable import Clock, config, start


def test_the_index_knows_every_id_it_was_given() -> None:
    index = IdIndex()
    ids = [f"id-{random.random()}" for _ in range(50_000)]
    for event_id in ids:
        index.add(event_id)
    assert all(event_id in index for event_id in ids)
    assert not any(f"other-{i}" in index for i in range(50_000))
    assert len(index) == len(ids)
    assert index.nbytes() < 12 * len(ids)  # 8 bytes a digest, plus a little


def test_memory_store_remembers_ids_past_retention() -> None:
    clock = Clock()
    store = MemoryStore(retain_closed=2)
    from nextbest.policy.engine import Engine
    from nextbest.policy.ports import NullListener

    engine = Engine(config(), store, NullListener(), clock)
    for i in range(5):
        run_now(engine.decide(DecideInput("p", "x", event_id=f"m{i}")))
    clock.now += 3600
    run_now(engine.settle_due())
    assert store.find("m0") is None  # past retention
    assert run_now(store.used("m0"))
    assert run_now(store.used("m4"))
    assert not run_now(store.used("m5"))


def two_policies() -> Config:
    return make_config(
        a=support_policy(reward={**support_policy()["reward"], "wait": "1m"}),
        b=support_policy(reward={**support_policy()["reward"], "wait": "1m"}),
    )


def test_an_id_past_retention_stays_used_after_a_restart(tmp_path: Path) -> None:
    cfg = two_policies()
    clock = Clock()
    engine, store, _ = start(tmp_path, cfg, clock, retain_closed=3)
    run_now(engine.decide(DecideInput("a", "x", event_id="reuse-0")))
    for i in range(5):
        clock.now += 1  # joins close in this order
        run_now(engine.decide(DecideInput("a", "x", event_id=f"push-{i}")))
    clock.now += 3600
    run_now(engine.settle_due())
    store.checkpoint(engine.models())  # the journal segment with reuse-0 may go
    assert store.find("reuse-0") is None
    assert run_now(store.used("reuse-0"))

    _, again, _ = start(tmp_path, cfg, clock, retain_closed=3)
    assert again.find("reuse-0") is None
    assert run_now(again.used("reuse-0"))
    assert run_now(again.used("push-4"))
    assert not run_now(again.used("never"))


def test_ids_survive_the_deletion_of_every_log_that_named_them(tmp_path: Path) -> None:
    from nextbest.store.durable import Durability

    small = Durability(segment_bytes=2048, retention_bytes=0, retention_age=0)
    cfg = config()
    clock = Clock()
    engine, store, _ = start(tmp_path, cfg, clock, small, retain_closed=0)
    for i in range(40):
        run_now(engine.decide(DecideInput("p", "x", event_id=f"gone-{i}")))
    clock.now += 3600
    run_now(engine.settle_due())
    store.checkpoint(engine.models())
    for i in range(40, 80):  # more segments, so the first ones are deleted
        run_now(engine.decide(DecideInput("p", "x", event_id=f"gone-{i}")))
    clock.now += 3600
    run_now(engine.settle_due())
    store.checkpoint(engine.models())
    files = [*(tmp_path / "policies").rglob("*.dsjson"), *(tmp_path / "journal").glob("*")]
    logged = b"".join(p.read_bytes() for p in files)
    assert b'"gone-0"' not in logged  # every line naming it is deleted

    _, again, _ = start(tmp_path, cfg, clock, small, retain_closed=0)
    assert all(run_now(again.used(f"gone-{i}")) for i in range(80))


def test_recovery_closes_a_record_only_by_its_own_close(tmp_path: Path) -> None:
    """Data written before ids were kept unique: two events with one id, the older closed
    and logged. The newer one is pending with its reward; a restart keeps it so."""
    cfg = two_policies()
    clock = Clock()
    engine, store, _ = start(tmp_path, cfg, clock, retain_closed=1)
    first = run_now(engine.decide(DecideInput("a", "x", event_id="reuse-0")))
    clock.now += 3600
    run_now(engine.settle_due())
    run_now(engine.decide(DecideInput("a", "x", event_id="push")))
    clock.now += 3600
    run_now(engine.settle_due())
    assert store.find("reuse-0") is None
    second = run_now(engine.decide(DecideInput("b", "x", event_id="other")))
    second.event_id = "reuse-0"  # as an engine without the used() check stored it
    second.decided_at = first.decided_at + 7200
    store.keep_new([(second, codec.encode(second))])  # unchecked, as such an engine kept it
    reward = ReceivedReward("r1", 1.0, {}, RewardStatus.ACCEPTED, clock.now)
    store.add_reward_now(second, reward)

    _, again, recovery = start(tmp_path, cfg, clock, retain_closed=1)
    kept = again.find("reuse-0")
    assert kept is not None
    assert (kept.policy, kept.join_status) == ("b", JoinStatus.PENDING)
    assert kept.rewards == [reward]
    assert recovery.pending == 2


def test_a_reused_id_is_refused_past_retention_and_after_a_restart(tmp_path: Path) -> None:
    from nextbest.policy.errors import AlreadyExists

    cfg = two_policies()
    clock = Clock()
    engine, _, _ = start(tmp_path, cfg, clock, retain_closed=3)
    run_now(engine.decide(DecideInput("a", "x", event_id="reuse-0")))
    for i in range(5):
        clock.now += 1
        run_now(engine.decide(DecideInput("a", "x", event_id=f"push-{i}")))
    clock.now += 3600
    run_now(engine.settle_due())
    with pytest.raises(AlreadyExists):
        run_now(engine.decide(DecideInput("b", "x", event_id="reuse-0")))
    again, _, _ = start(tmp_path, cfg, clock, retain_closed=3)
    with pytest.raises(AlreadyExists):
        run_now(again.decide(DecideInput("b", "x", event_id="reuse-0")))
