"""The records the engine keeps: an event (one decision) and the rewards joined to it."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from nextbest.policy.features import FeatureValue
from nextbest.policy.safety import Masked


class RewardStatus(enum.Enum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    LATE = "late"
    QUEUED = "queued"  # kept by a store cut off from its server, joined when it is back


class ActivationStatus(enum.Enum):
    ACTIVATED = "activated"
    ALREADY_ACTIVE = "already_active"
    LATE = "late"


class JoinStatus(enum.Enum):
    PENDING = "pending"
    LEARNED = "learned"
    SKIPPED = "skipped"


@dataclass(slots=True)
class ReceivedReward:
    """One Reward call as received: its value after the spec, and the raw signals."""

    reward_id: str
    value: float
    signals: dict[str, float]
    status: RewardStatus
    received_at: float


@dataclass(slots=True)
class EligibleAction:
    """An action the model scored for this event."""

    id: str
    features: dict[str, FeatureValue]
    explore: bool
    line: str  # the VW action line, kept so that learning sees what scoring saw


@dataclass(slots=True)
class Event:
    """One decision and its join state."""

    event_id: str
    policy: str
    intent: str
    context: dict[str, FeatureValue]
    shared: str  # the VW shared line
    eligible: list[EligibleAction]
    pmf: list[float]
    scores: list[float]  # predicted reward (−cost) per eligible action
    chosen: int
    greedy: int
    explored: bool
    fallback: bool
    masked: list[Masked]
    epsilon: float
    mode: str
    model_version: str
    config_version: str
    decided_at: float
    deadline: float
    baseline_action_id: str = ""
    defer_activation: bool = False
    fingerprint: str = ""  # of the request that made it: a reused event id must match it
    activated: bool = False
    rewards: list[ReceivedReward] = field(default_factory=list)
    join_status: JoinStatus = JoinStatus.PENDING
    joined_reward: float | None = None

    @property
    def action_id(self) -> str:
        return self.eligible[self.chosen].id

    @property
    def probability(self) -> float:
        return self.pmf[self.chosen]

    def vw_lines(self) -> list[str]:
        return [self.shared, *(a.line for a in self.eligible)]

    def accepted_values(self) -> list[float]:
        return [r.value for r in self.rewards if r.status is RewardStatus.ACCEPTED]
