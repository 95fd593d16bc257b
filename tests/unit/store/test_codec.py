"""Events as bytes: the hand-built encoding is exactly orjson's own of the dataclass."""

from __future__ import annotations

import dataclasses

import orjson

from nextbest.policy.events import (
    EligibleAction,
    Event,
    JoinStatus,
    ReceivedReward,
    RewardStatus,
)
from nextbest.policy.safety import Masked
from nextbest.store import codec


def _event() -> Event:
    """Every field set away from its default."""
    return Event(
        event_id="e1",
        policy="p",
        intent="billing",
        context={"amount": 4.5, "vip": True, "plan": "pro", "tags": ["a", "b"]},
        shared="shared |i billing |c amount:4.5",
        eligible=[
            EligibleAction("a", {"kind": "info"}, True, "|a id=a kind=info"),
            EligibleAction("b", {}, False, "|a id=b"),
        ],
        pmf=[0.9, 0.1],
        scores=[-0.5, 0.25],
        chosen=1,
        greedy=0,
        explored=True,
        fallback=True,
        masked=[Masked("c", "because", "rule_c")],
        epsilon=0.1,
        mode="apprentice",
        model_version="7",
        config_version="abc",
        decided_at=100.0,
        deadline=160.0,
        baseline_action_id="a",
        defer_activation=True,
        fingerprint="f" * 32,
        activated=True,
        rewards=[ReceivedReward("r1", 1.0, {"resolved": 1.0}, RewardStatus.ACCEPTED, 120.0)],
        join_status=JoinStatus.LEARNED,
        joined_reward=1.0,
    )


def test_encode_writes_what_orjson_writes_of_the_dataclass() -> None:
    """A field added to Event and not to `codec.as_dict` fails here."""
    event = _event()
    assert set(codec.as_dict(event)) == {f.name for f in dataclasses.fields(Event)}
    assert codec.encode(event) == orjson.dumps(event)
    assert codec.decode(codec.encode(event)) == event
