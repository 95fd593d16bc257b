"""Plain typed results, so callers never handle protobuf messages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self, TypeAlias

from nextbest_client._values import Context

# The status names and the eligible action are the contract's, shared with the server.
from nextbest_proto.records import (
    ACTIVATION_STATUS_NAMES,
    JOIN_STATUS_NAMES,
    REWARD_STATUS_NAMES,
    eligible_action,
)
from nextbest_proto.records import ActivationStatus as ActivationStatus
from nextbest_proto.records import EligibleAction as EligibleAction
from nextbest_proto.records import JoinStatus as JoinStatus
from nextbest_proto.records import RewardStatus as RewardStatus
from nextbest_proto.v1 import decision_pb2 as pb
from nextbest_proto.values import FeatureValue, from_features

RewardSpec: TypeAlias = float | Mapping[str, float]
"""A reward: a number, or named signals that the policy's reward spec weighs into one."""


@dataclass(frozen=True)
class RankedAction:
    """An eligible action as the decision ranked it.

    Attributes:
        action: The action id.
        probability: The probability with which it was to be drawn.
        score: The model's predicted reward (higher is better).
    """

    action: str
    probability: float
    score: float
    """The model's predicted reward (higher is better)."""


@dataclass(frozen=True)
class MaskedAction:
    """An action left out of a decision, and why.

    Attributes:
        action: The action id.
        reason: Why it was left out, for people (a safety rule's message, or the caller's
            exclusion or candidates).
        rule: The safety rule that masked it; None for the caller's exclusions and
            candidates.
    """

    action: str
    reason: str
    rule: str | None
    """The safety rule that masked it; None for the caller's exclusions and candidates."""


@dataclass(frozen=True, kw_only=True)
class DecisionRequest:
    """One item of :meth:`NextBest.decide_batch`.

    A dict with these keys is accepted in its place.

    Args:
        policy: The policy (decision point) to ask.
        intent: What the user wants, a label such as ``"billing_dispute"``.
        context: Features of the situation: name → text, number, flag or list of texts.
        candidates: Choose only among these action ids; None: every action.
        exclude: Never choose these action ids.
        baseline: The caller's own choice, returned in apprentice mode.
        defer: Learn the event only if it is activated within the reward window.
        actions: Inline actions, id → features, scored like the catalog's.
        event_id: The event's id; made by the client when not given.
    """

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
        """Action id → why it was left out, for every masked action."""
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
    """How the server took one reward."""

    status: RewardStatus
    """accepted (counts for learning), duplicate (this reward id was already applied), late
    (the join had closed), or queued (Redis mode: the replica could not reach Redis; it
    keeps the reward and joins it, as received now, when Redis is back)."""
    value: float
    """The reward computed from this request (signals weighted, scaled, clipped); 0 when
    queued (computed when it is joined)."""


@dataclass(frozen=True)
class ReceivedReward:
    """One reward an event received, as :class:`Explanation` records it.

    Attributes:
        reward_id: The reward's idempotency key.
        value: The reward computed from it (signals weighted, scaled, clipped).
        signals: The signals it carried; empty for a plain value.
        status: How the server took it (see :class:`RewardResult`).
        received_at: When it arrived, in seconds since the Unix epoch.
    """

    reward_id: str
    value: float
    signals: dict[str, float]
    status: RewardStatus
    received_at: float


@dataclass(frozen=True, kw_only=True)
class Explanation:
    """The stored record of one event: what was seen, masked, scored, chosen, rewarded.

    :meth:`NextBest.explain` returns it, to debug a decision or audit what was learned.

    Attributes:
        event_id: The event's id.
        policy: The policy that decided.
        intent: The request's intent.
        context: The request's context, as the server decoded it.
        eligible: Every eligible action, with features, probability and score.
        action: The action chosen.
        probability: The probability with which it was drawn.
        explored: The action is not the model's greedy choice.
        fallback: Every candidate was masked and the fallback action was returned.
        masked: The actions left out, and why.
        epsilon: The exploration rate applied.
        model_version: The model that scored the actions.
        config_version: The policy configuration in force.
        mode: The learning mode in force (``online``, ``apprentice``, ``frozen`` or
            ``logging_only``).
        baseline: The caller's baseline action, or None.
        greedy_action: The action the model would have chosen greedily.
        defer_activation: The event was decided with ``defer=True``.
        activated: The event was activated.
        rewards: Every reward received, in order.
        join_status: ``pending`` (window open), ``learned``, or ``skipped`` (joined, not
            learned: never activated, or a mode that does not learn).
        joined_reward: The aggregated reward the event was (or will be) learned with.
        decided_at: When it was decided, in seconds since the Unix epoch.
        join_deadline: When its reward window closes, in seconds since the Unix epoch.
        vw_example: The VW example as the model saw it: the shared line, then one line per
            eligible action.
    """

    event_id: str
    policy: str
    intent: str
    context: dict[str, FeatureValue]
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
    """Decode a RewardResponse."""
    return RewardResult(REWARD_STATUS_NAMES.get(r.status, "accepted"), r.value)


def activation_status(r: pb.ActivateResponse) -> ActivationStatus:
    """Decode an ActivateResponse."""
    return ACTIVATION_STATUS_NAMES.get(r.status, "activated")


def explanation(e: pb.ExplainResponse) -> Explanation:
    """Decode an ExplainResponse."""
    return Explanation(
        event_id=e.event_id,
        policy=e.policy,
        intent=e.intent,
        context=from_features(e.context, "context"),
        eligible=tuple(eligible_action(a, f"eligible[{i}]") for i, a in enumerate(e.eligible)),
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
                REWARD_STATUS_NAMES.get(r.status, "accepted"),
                r.received_at,
            )
            for r in e.rewards
        ),
        join_status=JOIN_STATUS_NAMES.get(e.join_status, "pending"),
        joined_reward=e.joined_reward if e.HasField("joined_reward") else None,
        decided_at=e.decided_at,
        join_deadline=e.join_deadline,
        vw_example=tuple(e.vw_example),
    )
