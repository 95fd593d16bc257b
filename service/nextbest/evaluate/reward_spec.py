"""`--reward-spec FILE`: every event's reward recomputed from its logged raw signals.

The file holds a policy's ``reward:`` block (the block itself, ``{reward: …}``, or a whole
policy file, from which ``--policy-name`` or its only policy is taken), validated by the
same model the service loads. An event is rescored as the service would have joined it:
each accepted reward's signals through the spec (``nextbest.policy.rewards.from_signals``),
aggregated per the spec, the spec's default when none came.

The new spec decides what counts: a signal it does not name contributes nothing (that is
how a redesign drops ``csat``). Events that cannot be rescored keep their logged reward and
are counted, so the report can say how much of the estimate is still the old reward:
events without a ``_nextbest`` record (foreign DSJSON), rewards sent as a bare value, and
signal values the new spec refuses (outside a new ``range``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from nextbest.evaluate.reader import LogError
from nextbest.policy.config import RewardSpec
from nextbest.policy.errors import InvalidArgument
from nextbest.policy.rewards import aggregate, clip, from_signals


def load_spec(path: Path, policy: str | None = None) -> RewardSpec:
    """The reward spec in `path`; LogError names the file and what is wrong."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LogError(f"cannot read: {exc.strerror or exc}", path) from None
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as exc:
        raise LogError(f"not valid YAML: {exc}", path) from None
    block = _block(data, path, policy)
    try:
        return RewardSpec.model_validate(block)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'reward'}: "
            f"{e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise LogError(f"not a valid reward spec: {problems}", path) from None


def _block(data: Any, path: Path, policy: str | None) -> Any:
    if not isinstance(data, dict):
        raise LogError("a reward spec (a mapping, as under a policy's `reward:`) is expected", path)
    if isinstance(data.get("policies"), dict):
        policies: dict[str, Any] = data["policies"]
        if policy is None:
            if len(policies) != 1:
                names = ", ".join(sorted(policies))
                raise LogError(f"holds several policies ({names}): choose with --policy-name", path)
            policy = next(iter(policies))
        if policy not in policies:
            raise LogError(f"has no policy {policy!r}", path)
        data = policies[policy]
        if not isinstance(data, dict):
            raise LogError(f"policy {policy!r} is not a mapping", path)
    return data.get("reward", {}) if "reward" in data else data


@dataclass(slots=True)
class Rescorer:
    """Called once per event by the reader; counts what it could not rescore."""

    spec: RewardSpec
    rescored: int = 0
    without_signals: int = 0  # no `_nextbest` record, or a reward sent as a bare value
    refused: int = 0  # a signal value the new spec refuses
    ignored: Counter[str] = field(default_factory=Counter)  # signals the spec does not name

    def __call__(self, nb: dict[str, Any] | None, logged: float) -> float:
        rewards = nb.get("rewards") if nb is not None else None
        if not isinstance(rewards, list):
            self.without_signals += 1
            return logged
        values: list[float] = []
        for reward in rewards:
            if not isinstance(reward, dict) or reward.get("status", "accepted") != "accepted":
                continue
            signals = reward.get("signals")
            if not isinstance(signals, dict) or not signals:
                self.without_signals += 1
                return logged
            known: dict[str, float] = {}
            for name, value in signals.items():
                if name in self.spec.signals:
                    known[name] = float(value)
                else:
                    self.ignored[name] += 1
            try:
                values.append(from_signals(self.spec, known))
            except InvalidArgument:
                self.refused += 1
                return logged
        self.rescored += 1
        if not values:
            return self.spec.default
        return clip(self.spec, aggregate(self.spec.aggregation, values))

    @property
    def kept(self) -> int:
        """Events that kept their logged reward."""
        return self.without_signals + self.refused
