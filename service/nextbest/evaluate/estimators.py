"""IPS, SNIPS and doubly robust estimates of a target policy's value, with 95% intervals.

For event i with logged action c_i, logged probability p_i, reward r_i and the target's
probability π_i(c_i) of the same action, the importance weight is w_i = π_i(c_i) / p_i.

- IPS: mean(w·r). Unbiased whenever the logging policy gave every action the target
  takes a positive probability; its variance grows with the weights.
- SNIPS: Σw·r / Σw. Slightly biased, far less variable when weights are large; its
  interval comes from the delta method for a ratio of means.
- DR: mean(Σ_a π_i(a)·q̂_i(a) + w_i·(r_i − q̂_i(c_i))) with a reward model q̂ that was not
  fitted on event i (cross-fitting, see ``learners``): unbiased like IPS, and the better
  q̂ predicts rewards the narrower its interval.

Intervals are normal approximations with the sample variance (the central limit theorem
over events); the quantile comes from ``statistics.NormalDist``. They are trustworthy when
the effective sample size (Σw)² / Σw² is large: a few events with huge weights make the
sample variance itself unreliable, hence the warning below ``MIN_EFFECTIVE``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

LEVEL = 0.95
Z = NormalDist().inv_cdf(0.5 + LEVEL / 2)  # 1.959964…
MIN_EFFECTIVE = 100.0  # below this effective sample size, intervals are not to be trusted


@dataclass(frozen=True, slots=True)
class Estimate:
    """A value and its 95% interval; None where the log cannot say (no weight on the
    target's actions, or fewer than two events for a variance)."""

    value: float | None
    low: float | None
    high: float | None

    @classmethod
    def of_mean(cls, terms: FloatArray) -> Estimate:
        """The mean of per-event terms, interval from their sample variance."""
        n = len(terms)
        if n == 0:
            return cls(None, None, None)
        value = float(np.mean(terms))
        if n < 2:
            return cls(value, None, None)
        half = Z * float(np.std(terms, ddof=1)) / math.sqrt(n)
        return cls(value, value - half, value + half)


def ips(weights: FloatArray, rewards: FloatArray) -> Estimate:
    return Estimate.of_mean(weights * rewards)


def snips(weights: FloatArray, rewards: FloatArray) -> Estimate:
    """Σw·r / Σw; variance by the delta method: Var(w·(r − V)) / (n · mean(w)²)."""
    n = len(weights)
    total = float(np.sum(weights))
    if n == 0 or total <= 0.0:
        return Estimate(None, None, None)
    value = float(np.dot(weights, rewards)) / total
    if n < 2:
        return Estimate(value, None, None)
    residual = weights * (rewards - value)
    mean_weight = total / n
    half = Z * float(np.std(residual, ddof=1)) / (mean_weight * math.sqrt(n))
    return Estimate(value, value - half, value + half)


def dr(
    weights: FloatArray, rewards: FloatArray, chosen_model: FloatArray, target_model: FloatArray
) -> Estimate:
    """`chosen_model`: q̂ of the logged action; `target_model`: Σ_a π(a)·q̂(a), per event."""
    return Estimate.of_mean(target_model + weights * (rewards - chosen_model))


def effective_sample_size(weights: FloatArray) -> float:
    """(Σw)² / Σw²: how many equally weighted events the weighted ones are worth."""
    squares = float(np.dot(weights, weights))
    return float(np.sum(weights)) ** 2 / squares if squares > 0 else 0.0
