"""Recovery: what a crash leaves on disk comes back as it was, and nothing twice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nextbest.policy.config import Config
from nextbest.policy.engine import Engine
from nextbest.policy.errors import Unavailable
from nextbest.policy.events import JoinStatus
from nextbest.policy.ports import NullListener, run_now
from nextbest.policy.requests import DecideInput, RewardInput
from nextbest.store.durable import Durability, DurableStore, open_store
from tests.conftest import make_config, support_policy

PROBES = [
    DecideInput(
        "p",
        intent,
        {"account_age_days": 400.0, "amount": amount, "plan": plan},
        event_id=f"probe-{intent}-{amount}-{plan}",
    )
    for intent in ("billing_dispute", "login_problem")
    for amount in (20.0, 500.0)
    for plan in ("gold", "free")
]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def config(**reward: Any) -> Config:
    spec = {**support_policy()["reward"], "wait": "1m", **reward}
    actions = [{**a, "explore": True} for a in support_policy()["actions"]]
    return make_config(p=support_policy(reward=spec, safety=[], actions=actions))


_open: dict[Path, DurableStore] = {}


def crash(store: DurableStore) -> None:
    """What the death of the process does to the store: its lock is gone (written lines
    stay written; nothing is fsynced or checkpointed)."""
    store.lock.release()


def start(
    data: Path,
    cfg: Config,
    clock: Clock,
    durability: Durability | None = None,
    retain_closed: int = 10_000,
    **bounds: int,
) -> tuple[Engine, DurableStore, Any]:
    """Open the data dir as a restart would, the previous store there having crashed."""
    if data in _open:
        crash(_open.pop(data))
    store, models, recovery = open_store(
        data, cfg, durability or Durability(), retain_closed=retain_closed, **bounds
    )
    _open[data] = store
    return Engine(cfg, store, NullListener(), clock, models=models), store, recovery


def workload(engine: Engine, clock: Clock, n: int, start_at: int = 0) -> None:
    """Decisions, rewards (some twice with the same reward id), windows closing."""
    for i in range(start_at, start_at + n):
        intent = "billing_dispute" if i % 2 else "login_problem"
        event = run_now(
            engine.decide(
                DecideInput(
                    "p",
                    intent,
                    {
                        "account_age_days": 400.0,
                        "amount": float(i % 7) * 90,
                        "plan": "gold" if i % 3 else "free",
                    },
                    event_id=f"e{i}",
                )
            )
        )
        if i % 4:
            value = 1.0 if event.action_id == ("offer_refund" if i % 2 else "ask_details") else 0.0
            run_now(engine.reward(RewardInput(event.event_id, value=value, reward_id=f"r{i}")))
            if i % 5 == 0:
                run_now(engine.reward(RewardInput(event.event_id, value=value, reward_id=f"r{i}")))
        clock.now += 0.5
        if i % 50 == 0:
            run_now(engine.settle_due())


def greedy(engine: Engine) -> list[tuple[str, list[float]]]:
    out = []
    for probe in PROBES:
        rt = engine.policies["p"]
        event = run_now(engine.decide(probe))
        out.append((event.eligible[event.greedy].id, rt.model.costs(event.vw_lines())))
    return out


@pytest.mark.parametrize("aggregation", ["earliest", "sum"])
def test_a_crash_and_restart_gives_the_crash_free_model(tmp_path: Path, aggregation: str) -> None:
    cfg = config(aggregation=aggregation)
    clock_a, clock_b = Clock(), Clock()
    # Run A: crashes (never closes its files, never checkpoints after the first one).
    crashed, store_a, _ = start(tmp_path / "a", cfg, clock_a)
    workload(crashed, clock_a, 300)
    store_a.checkpoint(crashed.models())
    workload(crashed, clock_a, 300, start_at=300)
    # Run B: the same stream, no crash.
    reference, _, _ = start(tmp_path / "b", cfg, clock_b)
    workload(reference, clock_b, 600)

    restarted, _, recovery = start(tmp_path / "a", cfg, clock_a)
    assert recovery.damage == []
    assert recovery.replayed["p"] > 0
    assert restarted.policies["p"].model.learned == reference.policies["p"].model.learned
    assert restarted.pending_counts() == reference.pending_counts()
    # Both finish the same way: every window ends, every event learned once.
    clock_a.now += 3600
    clock_b.now += 3600
    run_now(restarted.settle_due(limit=10_000))
    run_now(reference.settle_due(limit=10_000))
    assert restarted.policies["p"].model.learned == reference.policies["p"].model.learned == 600
    for (g1, c1), (g2, c2) in zip(greedy(restarted), greedy(reference), strict=True):
        assert g1 == g2
        assert c1 == pytest.approx(c2, abs=1e-5)


def test_pending_joins_survive_with_their_rewards(tmp_path: Path) -> None:
    cfg = config(aggregation="sum")
    clock = Clock()
    engine, _, _ = start(tmp_path, cfg, clock)
    run_now(
        engine.decide(DecideInput("p", "billing_dispute", event_id="kept", defer_activation=True))
    )
    run_now(engine.reward(RewardInput("kept", value=0.25, reward_id="a")))
    run_now(engine.activate("kept"))

    again, _, recovery = start(tmp_path, cfg, clock)
    assert recovery.pending == 1
    event = run_now(again.explain("kept"))
    assert (event.join_status, event.activated) == (JoinStatus.PENDING, True)
    assert [r.reward_id for r in event.rewards] == ["a"]
    assert (
        run_now(again.reward(RewardInput("kept", value=0.5, reward_id="a"))).status.value
        == "duplicate"
    )
    run_now(again.reward(RewardInput("kept", value=0.5, reward_id="b")))
    clock.now += 61
    run_now(again.settle_due())
    assert run_now(again.explain("kept")).joined_reward == 0.75


def test_a_torn_journal_tail_is_cut_and_reported(tmp_path: Path) -> None:
    cfg = config()
    clock = Clock()
    engine, _, _ = start(tmp_path, cfg, clock)
    for i in range(3):
        run_now(engine.decide(DecideInput("p", "x", event_id=f"t{i}")))
    journal = sorted((tmp_path / "journal").glob("*.jsonl"))[-1]
    with journal.open("ab") as f:
        f.write(b'{"k":"d","e":{"event_id":"half')
    again, _, recovery = start(tmp_path, cfg, clock)
    assert [d.action for d in recovery.damage] == ["torn last line cut off"]
    assert recovery.pending == 3
    run_now(again.decide(DecideInput("p", "x", event_id="after")))
    _, _, third = start(tmp_path, cfg, clock)
    assert (third.damage, third.pending) == ([], 4)


def test_a_half_written_checkpoint_falls_back_to_replay(tmp_path: Path) -> None:
    cfg = config()
    clock = Clock()
    engine, store, _ = start(tmp_path, cfg, clock)
    workload(engine, clock, 200)
    store.checkpoint(engine.models())
    learned = engine.policies["p"].model.learned
    newest = sorted((tmp_path / "policies" / "p" / "models").glob("*.vw"))[-1]
    newest.write_bytes(newest.read_bytes()[:50])
    again, _, recovery = start(tmp_path, cfg, clock)
    assert any("does not match its manifest" in p for p in recovery.problems)
    assert recovery.checkpoints["p"].startswith("none")
    assert again.policies["p"].model.learned == learned  # rebuilt from the decision log


def test_a_failing_disk_refuses_instead_of_dropping(tmp_path: Path) -> None:
    cfg = config()
    clock = Clock()
    engine, store, _ = start(tmp_path, cfg, clock)
    event = run_now(engine.decide(DecideInput("p", "x", event_id="ok")))
    store.journal.close()  # every further write fails, as on a dead disk
    with pytest.raises(Unavailable, match="cannot write the journal"):
        run_now(engine.decide(DecideInput("p", "x", event_id="lost")))
    with pytest.raises(Unavailable):
        run_now(engine.reward(RewardInput(event.event_id, value=1.0)))
    assert run_now(engine.store.get("lost")) is None
    assert run_now(engine.explain("ok")).rewards == []


def test_retention_drops_only_what_no_pending_join_or_checkpoint_needs(tmp_path: Path) -> None:
    cfg = config()
    clock = Clock()
    small = Durability(segment_bytes=4096, retention_bytes=0, keep_checkpoints=1)
    engine, store, _ = start(tmp_path, cfg, clock, small)
    workload(engine, clock, 200)  # windows of 60 s: the last ~120 events are still pending
    journal_before = len(list((tmp_path / "journal").glob("*.jsonl")))
    log_dir = tmp_path / "policies" / "p" / "decisions"
    store.checkpoint(engine.models())
    journal_after = len(list((tmp_path / "journal").glob("*.jsonl")))
    assert 1 < journal_after < journal_before
    assert len(list(log_dir.glob("*.dsjson"))) == 1  # all but the active segment dropped
    pending = engine.pending_counts()["p"]

    again, _, recovery = start(tmp_path, cfg, clock, small)
    assert recovery.pending == pending  # no pending join lost its journal records
    assert recovery.replayed == {"p": 0}
    assert again.policies["p"].model.learned == engine.policies["p"].model.learned
