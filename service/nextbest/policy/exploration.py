"""Bounded exploration and the seeded draw.

Two algorithms, one bound. ε-greedy puts 1 − ε on the greedy action and splits ε evenly over
the other eligible actions that may be explored. SquareCB gives each other action
1 / (K + γ·gap), so clearly worse actions are explored less as the model grows sure; its
non-greedy mass is then scaled down to at most ε. Either way, actions marked
``explore: false`` get no exploration mass (they are returned only when greedy), and with
nothing to explore the greedy action gets probability 1.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence


def greedy_index(costs: Sequence[float]) -> int:
    """The action with the lowest predicted cost; ties go to the earliest (stable)."""
    best = 0
    for i in range(1, len(costs)):
        if costs[i] < costs[best]:
            best = i
    return best


def epsilon_greedy(greedy: int, explorable: Sequence[bool], epsilon: float) -> list[float]:
    """The pmf over eligible actions: ≥ 1 − ε on greedy, ε shared by explorable others."""
    others = [i for i, ok in enumerate(explorable) if ok and i != greedy]
    pmf = [0.0] * len(explorable)
    if not others or epsilon <= 0.0:
        pmf[greedy] = 1.0
        return pmf
    share = epsilon / len(others)
    for i in others:
        pmf[i] = share
    pmf[greedy] = 1.0 - share * len(others)
    return pmf


def squarecb(
    costs: Sequence[float],
    greedy: int,
    explorable: Sequence[bool],
    epsilon: float,
    gamma: float,
) -> list[float]:
    """SquareCB's pmf over predicted costs, its non-greedy mass capped at epsilon."""
    k = len(costs)
    best = costs[greedy]
    pmf = [0.0] * k
    for i in range(k):
        if i != greedy and explorable[i]:
            pmf[i] = 1.0 / (k + gamma * max(costs[i] - best, 0.0))
    explore_mass = sum(pmf)
    if explore_mass > epsilon:
        scale = epsilon / explore_mass
        pmf = [p * scale for p in pmf]
        explore_mass = epsilon
    pmf[greedy] = 1.0 - explore_mass
    return pmf


def squarecb_gamma(scale: float, exponent: float, learned: int) -> float:
    """γ grows with the examples learned, as in VW's --squarecb (γ = scale · t^exponent)."""
    return scale * math.pow(max(learned, 1), exponent)


def draw(seed: int, policy: str, event_id: str) -> float:
    """A uniform number in [0, 1) fixed by (policy seed, policy, event id): replays agree."""
    digest = hashlib.blake2b(f"{seed}\x00{policy}\x00{event_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def sample(pmf: Sequence[float], u: float) -> int:
    """Inverse-CDF sampling of an index of pmf with the uniform number u."""
    total = 0.0
    last = 0
    for i, p in enumerate(pmf):
        if p <= 0.0:
            continue
        last = i
        total += p
        if u < total:
            return i
    return last  # u fell in the rounding gap at the top: the last action with mass
