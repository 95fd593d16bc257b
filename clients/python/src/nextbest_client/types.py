"""Plain typed results, so callers never handle protobuf messages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Self, TypeAlias

from nextbest_client._values import Context, ContextValue, from_features
from nextbest_client.v1 import decision_pb2 as pb

RewardSpec: TypeAlias = float | Mapping[str, float]
"""A reward: a number, or named signals that the policy's reward spec weighs into one."""

RewardStatus = Literal["accepted", "duplicate", "late"]
ActivationStatus = Literal["activated", "already_active", "late"]
JoinStatus = Literal["pending", "learned", "skipped"]

_REWARD_STATUS: dict[int, RewardStatus] = {
    pb.REWARD_STATUS_ACCEPTED: "accepted",
    pb.REWARD_STATUS_DUPLICATE: "duplicate",
    pb.REWARD_STATUS_LATE: "late",
}
_ACTIVATION_STATUS: dict[int, ActivationStatus] = {
    pb.ACTIVATION_STATUS_ACTIVATED: "activated",
    pb.ACTIVATION_STATUS_ALREADY_ACTIVE: "already_active",
    pb.ACTIVATION_STATUS_LATE: "late",
}
_JOIN_STATUS: dict[int, JoinStatus] = {
    pb.JOIN_STATUS_PENDING: "pending",
    pb.JOIN_STATUS_LEARNED: "learned",
    pb.JOIN_STATUS_SKIPPED: "skipped",
}


@dataclass(frozen=True)
class RankedAction:
    action: str
    probability: float
    score: float
    """The model's predicted reward (higher is better)."""


@dataclass(frozen=True)
class MaskedAction:
    action: str
    reason: str
    rule: str | None
    """The safety rule that masked it; None for the caller's exclusions and candidates."""


@dataclass(frozen=True, kw_only=True)
class DecisionRequest:
    """One item of :meth:`NextBest.decide_batch`; the fields mean what decide's arguments do."""

    policy: str
    intent: str
    context: Context | None = None
    candidates: Sequence[str] | None = None
    exclude: Sequence[str] | None = None
    baseline: str | None = None
    defer: bool = False
    actions: Mapping[str, Context] | None = None
    event_id: str | None = None


@dataclass(kw_only=True)
class DecisionFields:
    """What the server decided. Subclassed by the sync and asyncio ``Decision``."""

    policy: str
    event_id: str
    action: str
    probability: float
    explored: bool
    """The action is not the model's greedy choice (exploration)."""
    fallback: bool
    """Every candidate was masked and the policy's fallback action was returned."""
    ranking: tuple[RankedAction, ...]
    masked: tuple[MaskedAction, ...]
    epsilon: float
    model_version: str
    config_version: str
    rewarded: bool = field(default=False, compare=False)
    """A reward was sent through this object (the context manager then sends none)."""
    default_reward: RewardSpec | None = field(default=None, compare=False, repr=False)
    """Sent when a ``with`` block ends normally without a reward; None: send nothing."""
    error_reward: RewardSpec | None = field(default=None, compare=False, repr=False)
    """Sent when a ``with`` block raises before a reward; None: send nothing."""

    @property
    def masked_reasons(self) -> dict[str, str]:
        return {m.action: m.reason for m in self.masked}

    @classmethod
    def from_response(cls, policy: str, d: pb.DecideResponse, **extra: Any) -> Self:
        """Build from a DecideResponse; ``extra`` carries the subclass's own fields."""
        return cls(
            policy=policy,
            event_id=d.event_id,
            action=d.action_id,
            probability=d.probability,
            explored=d.explored,
            fallback=d.fallback,
            ranking=tuple(RankedAction(r.action_id, r.probability, r.score) for r in d.ranking),
            masked=tuple(MaskedAction(m.action_id, m.reason, m.rule or None) for m in d.masked),
            epsilon=d.epsilon,
            model_version=d.model_version,
            config_version=d.config_version,
            **extra,
        )


@dataclass(frozen=True)
class RewardResult:
    status: RewardStatus
    """accepted (counts for learning), duplicate (this reward id was already applied), late."""
    value: float
    """The reward computed from this request (signals weighted, scaled, clipped)."""


@dataclass(frozen=True)
class EligibleAction:
    action: str
    features: dict[str, ContextValue]
    probability: float
    score: float
    explore: bool


@dataclass(frozen=True)
class ReceivedReward:
    reward_id: str
    value: float
    signals: dict[str, float]
    status: RewardStatus
    received_at: float


@dataclass(frozen=True, kw_only=True)
class Explanation:
    """The stored record of one event: what was seen, masked, scored, chosen, rewarded."""

    event_id: str
    policy: str
    intent: str
    context: dict[str, ContextValue]
    eligible: tuple[EligibleAction, ...]
    action: str
    probability: float
    explored: bool
    fallback: bool
    masked: tuple[MaskedAction, ...]
    epsilon: float
    model_version: str
    config_version: str
    mode: str
    baseline: str | None
    greedy_action: str
    defer_activation: bool
    activated: bool
    rewards: tuple[ReceivedReward, ...]
    join_status: JoinStatus
    joined_reward: float | None
    """The aggregated reward the event was (or will be) learned with."""
    decided_at: float
    join_deadline: float
    vw_example: tuple[str, ...]


def reward_result(r: pb.RewardResponse) -> RewardResult:
    return RewardResult(_REWARD_STATUS.get(r.status, "accepted"), r.value)


def activation_status(r: pb.ActivateResponse) -> ActivationStatus:
    return _ACTIVATION_STATUS.get(r.status, "activated")


def explanation(e: pb.ExplainResponse) -> Explanation:
    return Explanation(
        event_id=e.event_id,
        policy=e.policy,
        intent=e.intent,
        context=from_features(e.context),
        eligible=tuple(
            EligibleAction(
                a.action_id, from_features(a.features), a.probability, a.score, a.explore
            )
            for a in e.eligible
        ),
        action=e.action_id,
        probability=e.probability,
        explored=e.explored,
        fallback=e.fallback,
        masked=tuple(MaskedAction(m.action_id, m.reason, m.rule or None) for m in e.masked),
        epsilon=e.epsilon,
        model_version=e.model_version,
        config_version=e.config_version,
        mode=e.mode,
        baseline=e.baseline_action_id or None,
        greedy_action=e.greedy_action_id,
        defer_activation=e.defer_activation,
        activated=e.activated,
        rewards=tuple(
            ReceivedReward(
                r.reward_id,
                r.value,
                dict(r.signals),
                _REWARD_STATUS.get(r.status, "accepted"),
                r.received_at,
            )
            for r in e.rewards
        ),
        join_status=_JOIN_STATUS.get(e.join_status, "pending"),
        joined_reward=e.joined_reward if e.HasField("joined_reward") else None,
        decided_at=e.decided_at,
        join_deadline=e.join_deadline,
        vw_example=tuple(e.vw_example),
    )
