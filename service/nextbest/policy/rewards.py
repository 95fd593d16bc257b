"""Reward spec: named signals → one number, and how a window's rewards join into one."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from nextbest.policy.config import Aggregation, RewardSpec
from nextbest.policy.errors import InvalidArgument


def clip(spec: RewardSpec, value: float) -> float:
    """Clamp into the policy's clip range."""
    low, high = spec.clip
    return min(max(value, low), high)


def from_signals(spec: RewardSpec, signals: Mapping[str, float]) -> float:
    """Σ weight × value (scaled from its range to [0, 1] when one is set), then clipped.

    An unknown signal or a value outside its declared range is the caller's mistake and is
    refused, rather than learned as a silently wrong number.
    """
    total = 0.0
    for name, value in signals.items():
        signal = spec.signals.get(name)
        if signal is None:
            known = ", ".join(sorted(spec.signals)) or "none are configured"
            raise InvalidArgument(f"unknown signal; known: {known}", f"signals[{name!r}]")
        if signal.range is not None:
            low, high = signal.range
            if not low <= value <= high:
                raise InvalidArgument(
                    f"{value} is outside the signal's range [{low}, {high}]", f"signals[{name!r}]"
                )
            value = (value - low) / (high - low)
        total += signal.weight * value
    if not math.isfinite(total):  # 2·1e308 − 2·1e308: nothing a join or a restart can read
        raise InvalidArgument(
            f"the weighted sum of the signals is {total}, not a finite number", "signals"
        )
    return clip(spec, total)


def aggregate(aggregation: Aggregation, values: Sequence[float]) -> float:
    """Join the accepted rewards of one event, in arrival order."""
    if aggregation == "earliest":
        return values[0]
    if aggregation == "last":
        return values[-1]
    if aggregation == "sum":
        return sum(values)
    return sum(values) / len(values)
