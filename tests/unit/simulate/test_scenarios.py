"""The scenarios' ground truth is what the docs say, and the service's policy agrees with it."""

from __future__ import annotations

import random
import statistics

import pytest

from nextbest.policy import rewards
from nextbest.policy.config import parse_config
from nextbest.policy.safety import CandidateView, SafetyRules
from nextbest.simulate.news import LIKES, NewsScenario
from nextbest.simulate.scenario import Exploring, Luck, Scenario, Situation
from nextbest.simulate.scenarios import SCENARIOS, get
from nextbest.simulate.support import SupportScenario

ALL = sorted(SCENARIOS)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("algorithm", ["epsilon_greedy", "squarecb"])
def test_each_scenario_makes_a_valid_policy_file(name: str, algorithm: str) -> None:
    scenario = get(name)
    config = parse_config(scenario.config(Exploring(algorithm, 0.15)))  # type: ignore[arg-type]
    policy = config.policies[scenario.policy]
    assert [a.id for a in policy.actions] == list(scenario.actions)
    assert policy.exploration.algorithm == algorithm
    assert policy.exploration.epsilon == policy.exploration.max_epsilon == 0.15


@pytest.mark.parametrize("name", ALL)
def test_the_same_seed_gives_the_same_stream_and_another_seed_another(name: str) -> None:
    scenario = get(name)
    assert scenario.stream(7, 200) == scenario.stream(7, 200)
    assert scenario.stream(7, 200) != scenario.stream(8, 200)


@pytest.mark.parametrize("name", ALL)
def test_the_oracle_picks_the_best_allowed_action(name: str) -> None:
    scenario = get(name)
    for r in scenario.stream(0, 500):
        s = r.situation
        best = scenario.oracle(s)
        assert scenario.allowed(s, best)
        assert all(
            scenario.expected_reward(s, best) >= scenario.expected_reward(s, a)
            for a in scenario.allowed_actions(s)
        )


@pytest.mark.parametrize("name", ALL)
def test_the_rule_baseline_never_breaks_the_safety_rule(name: str) -> None:
    scenario = get(name)
    for r in scenario.stream(1, 3000):
        assert scenario.allowed(r.situation, scenario.rule(r.situation))


@pytest.mark.parametrize("name", ALL)
def test_the_policys_safety_rules_mask_exactly_what_the_scenario_forbids(name: str) -> None:
    """The server's CEL mask and the scenario's own rule, written apart, agree everywhere."""
    scenario = get(name)
    policy = parse_config(scenario.config()).policies[scenario.policy]
    rules = SafetyRules(policy.safety)
    views = [CandidateView(a.id, dict(a.features)) for a in policy.actions]
    forbidden_somewhere = False
    for r in scenario.stream(2, 3000):
        s = r.situation
        masked = {m.action_id for m in rules.mask(s.intent, dict(s.context), views)}
        forbidden = {a for a in scenario.actions if not scenario.allowed(s, a)}
        assert masked == forbidden, s
        forbidden_somewhere |= bool(forbidden)
    assert forbidden_somewhere == (name == "support")


def test_support_rewards_are_what_the_policys_reward_spec_makes_of_the_signals() -> None:
    scenario = SupportScenario()
    spec = parse_config(scenario.config()).policies[scenario.policy].reward
    rated = 0
    for r in scenario.stream(3, 500):
        for action in scenario.actions:
            outcome = scenario.outcome(r.situation, action, r.luck)
            assert outcome.value is None
            assert set(outcome.signals) <= set(spec.signals)
            assert rewards.from_signals(spec, outcome.signals) == pytest.approx(outcome.reward)
            assert -0.5 <= outcome.reward <= 1.0  # never clipped
            rated += "csat" in outcome.signals
    assert 0.3 < rated / (500 * len(scenario.actions)) < 0.5  # 40 % of customers rate


def test_support_expected_reward_is_the_mean_of_its_outcomes() -> None:
    scenario = SupportScenario()
    rng = random.Random(4)
    situations = [r.situation for r in scenario.stream(4, 6)]
    for s in situations:
        for action in scenario.actions:
            draws = [
                scenario.outcome(s, action, Luck.draw(rng, scenario.luck_size)).reward
                for _ in range(4000)
            ]
            # 4000 draws of a reward within [-0.5, 1]: the mean is within ±0.04 at > 4 σ
            assert statistics.fmean(draws) == pytest.approx(
                scenario.expected_reward(s, action), abs=0.04
            )


def test_support_ratings_are_noisy_but_follow_resolution() -> None:
    scenario = SupportScenario()
    by_resolved: dict[bool, list[float]] = {True: [], False: []}
    for r in scenario.stream(5, 4000):
        outcome = scenario.outcome(r.situation, "ask_details", r.luck)
        if "csat" in outcome.signals:
            by_resolved[outcome.signals["resolved"] == 1.0].append(outcome.signals["csat"])
    assert statistics.fmean(by_resolved[True]) > 4 > 2.5 > statistics.fmean(by_resolved[False])
    assert {1.0, 5.0} <= set(by_resolved[True])
    assert {1.0, 5.0} <= set(by_resolved[False])


def test_support_escalating_to_a_human_always_counts_as_an_escalation() -> None:
    scenario = SupportScenario()
    for r in scenario.stream(6, 200):
        assert scenario.outcome(r.situation, "escalate_human", r.luck).signals["escalated"] == 1


def test_support_the_mask_forbids_what_would_otherwise_look_best() -> None:
    """Refunds for new accounts resolve well (abuse): without the mask, a learner wants them."""
    scenario = SupportScenario()
    tempting = 0
    for r in scenario.stream(7, 3000):
        s = r.situation
        unmasked_best = max(scenario.actions, key=lambda a: scenario.expected_reward(s, a))
        if not scenario.allowed(s, unmasked_best):
            assert unmasked_best == "offer_refund"
            tempting += 1
    assert tempting > 100


def test_support_refund_rule_boundaries() -> None:
    scenario = SupportScenario()

    def situation(age: float, amount: float) -> Situation:
        return Situation("refund_request", {"account_age_days": age, "amount": amount})

    assert scenario.allowed(situation(30, 200), "offer_refund")
    assert not scenario.allowed(situation(29, 10), "offer_refund")
    assert not scenario.allowed(situation(400, 200.01), "offer_refund")
    assert scenario.allowed(situation(1, 999), "ask_details")


def test_news_is_the_vw_tutorial() -> None:
    scenario = NewsScenario()
    assert LIKES == {
        ("Tom", "morning"): "politics",
        ("Tom", "afternoon"): "music",
        ("Anna", "morning"): "sports",
        ("Anna", "afternoon"): "politics",
    }
    assert len(scenario.actions) == 7
    seen = set()
    for r in scenario.stream(0, 400):
        s = r.situation
        seen.add((s.context["user"], s.context["time_of_day"]))
        rewarded = [a for a in scenario.actions if scenario.outcome(s, a, r.luck).reward == 1.0]
        assert rewarded == [LIKES[(str(s.context["user"]), str(s.context["time_of_day"]))]]
        assert all(scenario.outcome(s, a, r.luck).value in (0.0, 1.0) for a in scenario.actions)
    assert len(seen) == 4


@pytest.mark.parametrize("name", ALL)
def test_defaults_explore_with_squarecb_under_a_cap(name: str) -> None:
    scenario: Scenario = get(name)
    assert scenario.default_exploring == Exploring("squarecb", 0.2)


def test_unknown_scenario_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="known: support, news"):
        get("chess")
