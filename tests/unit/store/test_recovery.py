"""What a restart brings back: late rewards, the most recent closed events, and a start
in spite of records of the wrong shape."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from nextbest.policy.ports import run_now
from nextbest.policy.requests import DecideInput, RewardInput
from nextbest.store import codec, dsjson
from nextbest.store.durable import Durability
from tests.conftest import make_config, support_policy
from tests.unit.store.test_durable import Clock, config, start


def test_late_rewards_survive_the_compaction_of_their_journal_segment(tmp_path: Path) -> None:
    small = Durability(segment_bytes=2048)
    clock = Clock()
    engine, store, _ = start(tmp_path, config(), clock, small)
    run_now(engine.decide(DecideInput("p", "x", event_id="late")))
    clock.now += 3600
    run_now(engine.settle_due())
    assert (
        run_now(engine.reward(RewardInput("late", value=1.0, reward_id="r"))).status.value == "late"
    )
    for i in range(40):  # later decisions and joins fill journal segments
        run_now(engine.decide(DecideInput("p", "x", event_id=f"fill-{i}")))
    clock.now += 3600
    run_now(engine.settle_due())
    store.checkpoint(engine.models())
    journal = b"".join(p.read_bytes() for p in (tmp_path / "journal").glob("*"))
    assert b'"late"' not in journal  # its segment is gone

    again, _, _ = start(tmp_path, config(), clock, small)
    assert [r.reward_id for r in run_now(again.explain("late")).rewards] == ["r"]
    assert (
        run_now(again.reward(RewardInput("late", value=1.0, reward_id="r"))).status.value
        == "duplicate"
    )


def test_the_most_recent_closed_events_come_back_whatever_their_policy(tmp_path: Path) -> None:
    reward = {**support_policy()["reward"], "wait": "1m"}
    cfg = make_config(a=support_policy(reward=reward), b=support_policy(reward=reward))
    clock = Clock()
    engine, _, _ = start(tmp_path, cfg, clock, retain_closed=10)
    for i in range(10):  # b's events first, then a's: the last 10 closed are b5-9, a0-4
        run_now(engine.decide(DecideInput("b", "x", event_id=f"b{i}")))
        clock.now += 1
    for i in range(5):
        run_now(engine.decide(DecideInput("a", "x", event_id=f"a{i}")))
        clock.now += 1
    clock.now += 3600
    run_now(engine.settle_due())
    before = {f"b{i}" for i in range(5, 10)} | {f"a{i}" for i in range(5)}
    assert {e for e in before if run_now(engine.store.get(e)) is not None} == before

    again, _, _ = start(tmp_path, cfg, clock, retain_closed=10)
    assert {e for e in before if run_now(again.store.get(e)) is not None} == before


@pytest.mark.parametrize(
    "record",
    [
        b'{"k":"d","e":{"event_id":"bad","policy":"p"}}',
        b'{"k":"d","e":[1,2]}',
        b'{"k":"r","id":"kept","r":{"reward_id":1}}',
        b'{"k":"r","id":"kept"}',
        b'{"k":"c","id":7}',
        b'{"k":"a"}',
    ],
)
def test_a_journal_record_of_the_wrong_shape_is_skipped_and_reported(
    tmp_path: Path, record: bytes
) -> None:
    clock = Clock()
    engine, _, _ = start(tmp_path, config(), clock)
    run_now(engine.decide(DecideInput("p", "x", event_id="kept")))
    journal = sorted((tmp_path / "journal").glob("*.jsonl"))[-1]
    with journal.open("ab") as f:
        f.write(record + b"\n")
    again, _, recovery = start(tmp_path, config(), clock)
    assert run_now(again.explain("kept")).rewards == []
    assert [(d.line, d.action.split(":")[0]) for d in recovery.damage] == [
        (2, "malformed record skipped")
    ]


def test_a_decided_record_with_wrong_types_is_refused() -> None:
    from nextbest.policy.engine import Engine
    from nextbest.policy.ports import NullListener
    from nextbest.store.memory import MemoryStore

    engine = Engine(config(), MemoryStore(), NullListener(), Clock())
    event = run_now(engine.decide(DecideInput("p", "x", event_id="shape")))
    good = orjson.loads(codec.encode(event))
    assert codec.from_dict(good) == event
    legacy = {k: v for k, v in good.items() if k != "fingerprint"}
    assert codec.from_dict(legacy).fingerprint == ""
    for key, value in [
        ("pmf", "x"),
        ("pmf", [0.5]),
        ("chosen", 99),
        ("decided_at", "noon"),
        ("context", {"a": {"b": 1}}),
        ("join_status", "lost"),
        ("rewards", [{"reward_id": "r", "value": "1", "signals": {}, "status": "accepted"}]),
        ("eligible", [{"id": 3, "features": {}, "explore": True, "line": "x"}]),
    ]:
        with pytest.raises(codec.BadRecord):
            codec.from_dict({**good, key: value})
    with pytest.raises(codec.BadRecord):
        dsjson.event_of({"_nextbest": {**good, "mode": None}})


def test_a_log_line_or_manifest_of_the_wrong_shape_is_skipped(tmp_path: Path) -> None:
    clock = Clock()
    engine, store, _ = start(tmp_path, config(), clock)
    for i in range(3):
        run_now(engine.decide(DecideInput("p", "x", event_id=f"e{i}")))
    clock.now += 3600
    run_now(engine.settle_due())
    store.checkpoint(engine.models())
    log = sorted((tmp_path / "policies" / "p" / "decisions").glob("*.dsjson"))[-1]
    with log.open("ab") as f:
        f.write(b'{"EventId":"x","_nextbest":{"event_id":"x"}}\n')
    manifest = next((tmp_path / "policies" / "p" / "models").glob("*.json"))
    manifest.write_bytes(orjson.dumps({**orjson.loads(manifest.read_bytes()), "learned": "3"}))
    again, _, recovery = start(tmp_path, config(), clock)
    assert [d.line for d in recovery.damage] == [4]
    assert any("unreadable manifest" in p for p in recovery.problems)
    assert again.policies["p"].model.learned == 3  # replayed from the log instead
