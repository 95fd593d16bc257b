"""Section 5's synthetic problem: a hidden reward-probability table over (intent, plan,
action), a seeded stream of rounds, and the bookkeeping of one learner's run over it.

Every arm sees the same contexts and the same uniform number per round (common random
numbers), so two arms that choose alike are paid alike: the differences left are the
learners' own.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

Q_INTENTS = ("billing_dispute", "refund_request", "login_problem", "cancel_subscription")
Q_PLANS = ("free", "pro", "enterprise")
Q_CHANNELS = ("chat", "email")  # carries no signal: a distractor feature
Q_ACTIONS = ("ask_details", "offer_refund", "transfer_billing", "escalate_human", "send_article")


@dataclass(frozen=True)
class Round:
    intent: str
    context: dict[str, str]
    u: float  # the round's uniform number: action a pays 1 when u < p(intent, plan, a)


@dataclass(frozen=True)
class Problem:
    """The table and the stream. The table is exactly what the default interactions can
    represent (`--cubic ica`: intent × context × action)."""

    table: dict[tuple[str, str], tuple[float, ...]]
    rounds: list[Round]

    def probability(self, r: Round, action: int) -> float:
        return self.table[(r.intent, r.context["plan"])][action]

    def reward(self, r: Round, action: int) -> float:
        return 1.0 if r.u < self.probability(r, action) else 0.0

    def best(self, r: Round) -> float:
        return max(self.table[(r.intent, r.context["plan"])])


def make_problem(seed: int, rounds: int) -> Problem:
    """Per cell: 0.05-0.45 for each action, one best action at 0.6-0.85; all from the seed."""
    rng = random.Random(seed)
    table: dict[tuple[str, str], tuple[float, ...]] = {}
    for intent in Q_INTENTS:
        for plan in Q_PLANS:
            p = [rng.uniform(0.05, 0.45) for _ in Q_ACTIONS]
            p[rng.randrange(len(Q_ACTIONS))] = rng.uniform(0.6, 0.85)
            table[(intent, plan)] = tuple(p)
    stream = [
        Round(
            rng.choice(Q_INTENTS),
            {"plan": rng.choice(Q_PLANS), "channel": rng.choice(Q_CHANNELS)},
            rng.random(),
        )
        for _ in range(rounds)
    ]
    return Problem(table, stream)


@dataclass
class Arm:
    """One learner's run over the stream."""

    name: str
    rounds: int = 0
    reward_sum: float = 0.0  # realized rewards
    expected_sum: float = 0.0  # p(intent, plan, chosen): the same, without the coin flips
    best_sum: float = 0.0  # what always choosing the best action would expect
    explored: int = 0
    curve: list[tuple[int, float]] = field(default_factory=list)  # (rounds, mean reward)
    seconds: float = 0.0
    choices: list[int] = field(default_factory=list, repr=False)  # the action of each round

    def add(self, problem: Problem, r: Round, chosen: int, reward: float, explored: bool) -> None:
        self.rounds += 1
        self.reward_sum += reward
        self.expected_sum += problem.probability(r, chosen)
        self.best_sum += problem.best(r)
        self.explored += explored
        self.choices.append(chosen)
        if self.rounds % 500 == 0:
            self.curve.append((self.rounds, self.reward_sum / self.rounds))

    @property
    def progressive(self) -> float:
        return self.reward_sum / self.rounds if self.rounds else math.nan

    @property
    def expected(self) -> float:
        return self.expected_sum / self.rounds if self.rounds else math.nan

    def merge(self, other: Arm) -> None:
        """Pool another seed's run into this one (curves are kept per seed in the JSON)."""
        self.rounds += other.rounds
        self.reward_sum += other.reward_sum
        self.expected_sum += other.expected_sum
        self.best_sum += other.best_sum
        self.explored += other.explored
        self.seconds += other.seconds
        self.choices += other.choices

    def agreement(self, other: Arm) -> float:
        """The share of rounds in which both arms chose the same action."""
        same = sum(a == b for a, b in zip(self.choices, other.choices, strict=False))
        return same / max(1, min(len(self.choices), len(other.choices)))

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "rounds": self.rounds,
            "progressive_reward": self.progressive,
            "expected_reward": self.expected,
            "optimal_expected_reward": self.best_sum / self.rounds if self.rounds else math.nan,
            "explored_share": self.explored / self.rounds if self.rounds else math.nan,
            "curve": self.curve,
            "seconds": self.seconds,
        }
