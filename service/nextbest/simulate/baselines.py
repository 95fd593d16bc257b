"""The yardsticks nextbest is measured against, computed in-process from the ground truth.

On the same rounds (same customers, same luck) as nextbest:

- ``random``: a uniform choice among the actions the safety rule allows — what learning
  must beat to have learned anything;
- ``best fixed``: the single action that, always chosen (the scenario's fallback where it is
  forbidden), earned most over this very stream — chosen in hindsight, so it is a strong
  non-contextual bar;
- ``rule``: the scenario's hand-written rules, what a team ships without learning;
- ``oracle``: the best allowed action by the hidden truth — the ceiling no policy can beat
  in expectation.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from nextbest.simulate.scenario import Round, Scenario, Situation

RANDOM, BEST_FIXED, RULE, ORACLE = "random", "best_fixed", "rule", "oracle"


@dataclass(frozen=True, slots=True)
class Baselines:
    """Per-round actions and rewards of each baseline; which action the best fixed one is."""

    choices: dict[str, list[str]]
    rewards: dict[str, list[float]]
    best_fixed_action: str


def fixed_choice(scenario: Scenario, situation: Situation, action: str) -> str:
    """A fixed policy's pick: its action, or the fallback where the safety rule forbids it."""
    if scenario.allowed(situation, action):
        return action
    if scenario.fallback is not None and scenario.allowed(situation, scenario.fallback):
        return scenario.fallback
    return scenario.allowed_actions(situation)[0]


def evaluate(scenario: Scenario, rounds: Sequence[Round], seed: int) -> Baselines:
    """Play every baseline on the rounds; only the random baseline draws, from its own rng."""
    rng = random.Random(f"nextbest-simulate:random:{seed}")
    policies: dict[str, Callable[[Situation], str]] = {
        RANDOM: lambda s: rng.choice(scenario.allowed_actions(s)),
        RULE: scenario.rule,
        ORACLE: scenario.oracle,
    }
    played = {name: _play(scenario, rounds, policy) for name, policy in policies.items()}
    fixed = {
        action: _play(scenario, rounds, partial(fixed_choice, scenario, action=action))
        for action in scenario.actions
    }
    best = max(scenario.actions, key=lambda a: sum(fixed[a][1]))
    played[BEST_FIXED] = fixed[best]
    return Baselines(
        choices={name: choices for name, (choices, _) in played.items()},
        rewards={name: earned for name, (_, earned) in played.items()},
        best_fixed_action=best,
    )


def _play(
    scenario: Scenario, rounds: Sequence[Round], policy: Callable[[Situation], str]
) -> tuple[list[str], list[float]]:
    choices = [policy(r.situation) for r in rounds]
    earned = [
        scenario.outcome(r.situation, a, r.luck).reward
        for r, a in zip(rounds, choices, strict=True)
    ]
    return choices, earned
