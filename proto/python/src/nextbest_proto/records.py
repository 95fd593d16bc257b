"""The statuses and the eligible action of the contract, defined once for both sides.

Each status is a name (what the SDK returns, what the server's own enums hold as values)
tied to its ``nextbest.v1`` enum value here and nowhere else: the server encodes through the
name → wire tables, the SDK decodes through the wire → name ones. :class:`EligibleAction` is
an eligible action as ``Explain`` carries it; :func:`eligible_message` and
:func:`eligible_action` are its two directions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

from nextbest_proto.v1 import decision_pb2 as pb
from nextbest_proto.values import FeatureValue, from_features, to_features

RewardStatus: TypeAlias = Literal["accepted", "duplicate", "late", "queued"]
"""How a reward was taken: accepted (counts for learning), duplicate (its reward id was
already applied), late (the join had closed), queued (Redis mode: kept by a replica cut off
from Redis, joined when it is back)."""
ActivationStatus: TypeAlias = Literal["activated", "already_active", "late"]
"""How an Activate was taken: activated, already_active, or late (the join had closed)."""
JoinStatus: TypeAlias = Literal["pending", "learned", "skipped"]
"""Where an event's join stands: pending (window open), learned, or skipped (joined, not
learned)."""

REWARD_STATUSES: dict[RewardStatus, pb.RewardStatus] = {
    "accepted": pb.REWARD_STATUS_ACCEPTED,
    "duplicate": pb.REWARD_STATUS_DUPLICATE,
    "late": pb.REWARD_STATUS_LATE,
    "queued": pb.REWARD_STATUS_QUEUED,
}
ACTIVATION_STATUSES: dict[ActivationStatus, pb.ActivationStatus] = {
    "activated": pb.ACTIVATION_STATUS_ACTIVATED,
    "already_active": pb.ACTIVATION_STATUS_ALREADY_ACTIVE,
    "late": pb.ACTIVATION_STATUS_LATE,
}
JOIN_STATUSES: dict[JoinStatus, pb.JoinStatus] = {
    "pending": pb.JOIN_STATUS_PENDING,
    "learned": pb.JOIN_STATUS_LEARNED,
    "skipped": pb.JOIN_STATUS_SKIPPED,
}
# The other way: wire value → name (UNSPECIFIED, or a value newer than this copy, is absent).
REWARD_STATUS_NAMES: dict[int, RewardStatus] = {v: k for k, v in REWARD_STATUSES.items()}
ACTIVATION_STATUS_NAMES: dict[int, ActivationStatus] = {
    v: k for k, v in ACTIVATION_STATUSES.items()
}
JOIN_STATUS_NAMES: dict[int, JoinStatus] = {v: k for k, v in JOIN_STATUSES.items()}


@dataclass(frozen=True)
class EligibleAction:
    """An action that was eligible for a decision, as an explanation records it.

    Attributes:
        action: The action id.
        features: The action's features, as scored.
        probability: The probability with which it was to be drawn.
        score: The model's predicted reward (higher is better).
        explore: The action may be explored; False: chosen only when it is the greedy choice.
    """

    action: str
    features: dict[str, FeatureValue]
    probability: float
    score: float
    explore: bool


def eligible_message(action: EligibleAction) -> pb.EligibleAction:
    """Encode an eligible action (the server, answering Explain)."""
    return pb.EligibleAction(
        action_id=action.action,
        features=to_features(action.features, "features"),
        probability=action.probability,
        score=action.score,
        explore=action.explore,
    )


def eligible_action(message: pb.EligibleAction, where: str = "eligible") -> EligibleAction:
    """Decode an eligible action (the SDK, reading Explain); ``where`` names it in an error."""
    return EligibleAction(
        action=message.action_id,
        features=from_features(message.features, f"{where}.features"),
        probability=message.probability,
        score=message.score,
        explore=message.explore,
    )
