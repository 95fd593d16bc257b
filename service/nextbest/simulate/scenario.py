"""What a simulated world is: situations, a hidden ground truth, and feedback drawn from it.

A scenario knows everything nextbest must learn: how likely each action is to work in each
situation (the ground truth), which actions its safety rule forbids, and the policy config
the service runs with. The simulator keeps the truth to itself; nextbest sees only what an
agent would send (intent, context) and the rewards that come back.

The stream of situations and the random numbers that decide each round's outcome are drawn
once per round, before any policy chooses. Every policy (nextbest and each baseline) is
then judged on the same customers with the same luck: if two policies pick the same action
in a round they get the same reward, so differences come from the choices, not the dice.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from nextbest.policy.features import FeatureValue

Algorithm = Literal["epsilon_greedy", "squarecb"]


@dataclass(frozen=True, slots=True)
class Situation:
    """What the agent knows at a decision point, as it would send it to Decide."""

    intent: str
    context: Mapping[str, FeatureValue]


@dataclass(frozen=True, slots=True)
class Luck:
    """Uniform numbers in [0, 1) that decide a round's outcome, whichever action is chosen."""

    values: tuple[float, ...]

    @classmethod
    def draw(cls, rng: random.Random, count: int) -> Luck:
        return cls(tuple(rng.random() for _ in range(count)))


@dataclass(frozen=True, slots=True)
class Round:
    """One step of the stream: the customer and the dice for every possible answer."""

    index: int
    situation: Situation
    luck: Luck


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one action went: the number it is worth and what the agent reports to Reward.

    ``reward`` is what the policy's reward spec makes of the report; the simulator scores
    every policy with it and checks that the server computed the same value.
    """

    reward: float
    value: float | None = None
    signals: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Exploring:
    """The exploration a run asks for; ``epsilon`` is also the cap (``max_epsilon``)."""

    algorithm: Algorithm
    epsilon: float


class Scenario(ABC):
    """A world to simulate. Subclasses define the truth; the helpers here derive the rest."""

    name: str
    policy: str  # the policy name the scenario's config defines and its requests use
    actions: tuple[str, ...]
    fallback: str | None = None  # what a fixed policy does when its action is forbidden
    default_rounds: int
    default_delay: int
    default_exploring: Exploring
    luck_size: int  # how many uniforms one round's outcome needs

    @abstractmethod
    def situation(self, rng: random.Random) -> Situation:
        """Draw the next customer."""

    @abstractmethod
    def allowed(self, situation: Situation, action: str) -> bool:
        """The safety rule, written from its meaning rather than from the policy's CEL."""

    @abstractmethod
    def expected_reward(self, situation: Situation, action: str) -> float:
        """The ground truth: the mean reward of this action here. Hidden from nextbest."""

    @abstractmethod
    def outcome(self, situation: Situation, action: str, luck: Luck) -> Outcome:
        """The reward this action gets in this round, decided by the round's luck."""

    @abstractmethod
    def rule(self, situation: Situation) -> str:
        """The hand-written rule baseline: what a team would code without learning."""

    @abstractmethod
    def policy_config(self, exploring: Exploring) -> dict[str, Any]:
        """The policy (as parsed YAML) that the service runs this scenario with."""

    def config(self, exploring: Exploring | None = None) -> dict[str, Any]:
        """A whole policy file for this scenario: `nextbest serve --config` accepts it."""
        return {"policies": {self.policy: self.policy_config(exploring or self.default_exploring)}}

    def allowed_actions(self, situation: Situation) -> list[str]:
        return [a for a in self.actions if self.allowed(situation, a)]

    def oracle(self, situation: Situation) -> str:
        """The allowed action with the best expected reward: what perfect knowledge picks."""
        return max(
            self.allowed_actions(situation), key=lambda a: self.expected_reward(situation, a)
        )

    def stream(self, seed: int, rounds: int) -> list[Round]:
        """The reproducible sequence of rounds for a seed: situations and their luck."""
        rng = random.Random(f"nextbest-simulate:{self.name}:{seed}")
        out = []
        for i in range(rounds):
            situation = self.situation(rng)
            out.append(Round(i, situation, Luck.draw(rng, self.luck_size)))
        return out
