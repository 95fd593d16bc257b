"""Signals become one number by the spec; windows join by the aggregation."""

from __future__ import annotations

import pytest

from nextbest.policy.config import RewardSpec, SignalSpec
from nextbest.policy.errors import InvalidArgument
from nextbest.policy.rewards import aggregate, from_signals

SPEC = RewardSpec(
    signals={
        "resolved": SignalSpec(weight=1.0),
        "escalated": SignalSpec(weight=-0.5),
        "csat": SignalSpec(weight=0.5, range=(1, 5)),
    }
)


def test_weights_range_scaling_and_clip() -> None:
    assert from_signals(SPEC, {"csat": 5}) == 0.5
    assert from_signals(SPEC, {"csat": 3}) == 0.25
    assert from_signals(SPEC, {"resolved": 1, "escalated": 1}) == 0.5
    assert from_signals(SPEC, {"resolved": 1, "csat": 5}) == 1.0  # 1.5 clipped to 1


def test_unknown_signal_names_the_field() -> None:
    with pytest.raises(InvalidArgument) as err:
        from_signals(SPEC, {"happy": 1})
    assert err.value.field == "signals['happy']"
    assert "known: csat, escalated, resolved" in str(err.value)


def test_out_of_range_rating_is_refused() -> None:
    with pytest.raises(InvalidArgument, match=r"outside the signal's range \[1.0, 5.0\]"):
        from_signals(SPEC, {"csat": 6})


@pytest.mark.parametrize(
    ("aggregation", "expected"), [("earliest", 1.0), ("last", 0.0), ("sum", 1.5), ("mean", 0.5)]
)
def test_aggregations(aggregation: str, expected: float) -> None:
    assert aggregate(aggregation, [1.0, 0.5, 0.0]) == expected  # type: ignore[arg-type]
