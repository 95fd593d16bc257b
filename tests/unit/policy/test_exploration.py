"""Exploration is bounded by ε, never explores `explore: false`, and replays by event id."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nextbest.policy.exploration import (
    draw,
    epsilon_greedy,
    greedy_index,
    sample,
    squarecb,
)


@given(
    explorable=st.lists(st.booleans(), min_size=1, max_size=20),
    epsilon=st.floats(0, 1),
    data=st.data(),
)
def test_pmf_bounds(explorable: list[bool], epsilon: float, data: st.DataObject) -> None:
    greedy = data.draw(st.integers(0, len(explorable) - 1))
    pmf = epsilon_greedy(greedy, explorable, epsilon)
    assert sum(pmf) == pytest.approx(1.0)
    assert pmf[greedy] >= 1 - epsilon - 1e-12
    for i, p in enumerate(pmf):
        if i != greedy and not explorable[i]:
            assert p == 0.0


def test_nothing_to_explore_means_greedy_for_sure() -> None:
    assert epsilon_greedy(1, [True, True, False], 0.0) == [0.0, 1.0, 0.0]
    assert epsilon_greedy(0, [True, False, False], 0.3) == [1.0, 0.0, 0.0]
    assert epsilon_greedy(0, [True, True, True], 0.2) == pytest.approx([0.8, 0.1, 0.1])


def test_greedy_is_lowest_cost_with_stable_ties() -> None:
    assert greedy_index([0.0, -1.0, -1.0]) == 1
    assert greedy_index([0.0, 0.0]) == 0


def test_draw_is_fixed_by_seed_policy_and_event() -> None:
    assert draw(0, "p", "e1") == draw(0, "p", "e1")
    assert len({draw(0, "p", f"e{i}") for i in range(100)}) == 100
    assert draw(1, "p", "e1") != draw(0, "p", "e1")
    assert all(0 <= draw(0, "p", f"e{i}") < 1 for i in range(1000))


def test_sampling_frequencies_follow_the_pmf() -> None:
    pmf = [0.7, 0.2, 0.1, 0.0]
    counts = [0, 0, 0, 0]
    for i in range(20_000):
        counts[sample(pmf, draw(7, "p", str(i)))] += 1
    assert counts[3] == 0
    for c, p in zip(counts, pmf, strict=True):
        assert abs(c / 20_000 - p) < 0.015


def test_sample_never_returns_a_zero_probability_action_at_the_top_edge() -> None:
    assert sample([0.5, 0.5, 0.0], 0.999999999999) == 1


@given(
    costs=st.lists(st.floats(-1, 1), min_size=1, max_size=12),
    epsilon=st.floats(0, 1),
    gamma=st.floats(0, 1e4),
    data=st.data(),
)
def test_squarecb_stays_within_the_cap(
    costs: list[float], epsilon: float, gamma: float, data: st.DataObject
) -> None:
    explorable = data.draw(st.lists(st.booleans(), min_size=len(costs), max_size=len(costs)))
    greedy = greedy_index(costs)
    pmf = squarecb(costs, greedy, explorable, epsilon, gamma)
    assert sum(pmf) == pytest.approx(1.0)
    assert pmf[greedy] >= 1 - epsilon - 1e-9
    assert all(p == 0.0 for i, p in enumerate(pmf) if i != greedy and not explorable[i])


def test_squarecb_explores_clearly_worse_actions_less() -> None:
    pmf = squarecb([-0.9, -0.8, 0.5], 0, [True, True, True], epsilon=1.0, gamma=100)
    assert pmf[1] > pmf[2] > 0
    assert pmf[0] == pytest.approx(1 - pmf[1] - pmf[2])
