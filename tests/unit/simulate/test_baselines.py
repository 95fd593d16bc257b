"""Baselines are computed on the same stream, reproducibly, and rank as they must."""

from __future__ import annotations

import statistics

import pytest

from nextbest.simulate.baselines import (
    BEST_FIXED,
    ORACLE,
    RANDOM,
    RULE,
    evaluate,
    fixed_choice,
)
from nextbest.simulate.scenario import Situation
from nextbest.simulate.scenarios import SCENARIOS, get
from nextbest.simulate.support import SupportScenario


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_oracle_earns_at_least_as_much_as_every_other_baseline(name: str) -> None:
    scenario = get(name)
    result = evaluate(scenario, scenario.stream(0, 3000), seed=0)
    means = {policy: statistics.fmean(r) for policy, r in result.rewards.items()}
    assert means[ORACLE] >= max(means[RULE], means[BEST_FIXED], means[RANDOM])
    assert means[RULE] > means[RANDOM]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_same_seed_reproduces_every_baseline(name: str) -> None:
    scenario = get(name)
    first = evaluate(scenario, scenario.stream(3, 500), seed=3)
    assert first == evaluate(scenario, scenario.stream(3, 500), seed=3)
    other = evaluate(scenario, scenario.stream(4, 500), seed=4)
    assert first.rewards[RANDOM] != other.rewards[RANDOM]


def test_best_fixed_is_the_best_single_action_in_hindsight() -> None:
    scenario = SupportScenario()
    stream = scenario.stream(1, 2000)
    result = evaluate(scenario, stream, seed=1)
    totals = {
        a: sum(
            scenario.outcome(r.situation, fixed_choice(scenario, r.situation, a), r.luck).reward
            for r in stream
        )
        for a in scenario.actions
    }
    assert result.best_fixed_action == max(totals, key=lambda a: totals[a])
    assert sum(result.rewards[BEST_FIXED]) == pytest.approx(max(totals.values()))


def test_a_fixed_policy_falls_back_where_its_action_is_forbidden() -> None:
    scenario = SupportScenario()
    new_account = Situation("refund_request", {"account_age_days": 3.0, "amount": 20.0})
    assert fixed_choice(scenario, new_account, "offer_refund") == "escalate_human"
    assert fixed_choice(scenario, new_account, "ask_details") == "ask_details"


@pytest.mark.parametrize("seed", [2, 3])
def test_no_baseline_ever_breaks_the_safety_rule(seed: int) -> None:
    scenario = SupportScenario()
    stream = scenario.stream(seed, 2000)
    result = evaluate(scenario, stream, seed=seed)
    assert set(result.choices) == {RANDOM, BEST_FIXED, RULE, ORACLE}
    for policy, choices in result.choices.items():
        assert len(choices) == len(stream)
        for r, action in zip(stream, choices, strict=True):
            assert scenario.allowed(r.situation, action), (policy, r.situation, action)
