"""IPS and SNIPS equal hand-computed values on a tiny log, exactly; intervals and ESS."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import numpy as np
import orjson
import pytest

from nextbest.evaluate.estimators import Estimate, Z, effective_sample_size, ips, snips
from nextbest.evaluate.evaluation import Options, evaluate
from nextbest.evaluate.specs import parse
from tests.unit.evaluate.logs import record, write

# Two actions per event; (logged pmf, chosen, reward). Probabilities are binary fractions,
# so every weight and sum below is exact in floating point.
TINY = [
    ((0.5, 0.5), 0, 1.0),
    ((0.75, 0.25), 1, 0.5),
    ((0.875, 0.125), 1, 0.25),
    ((0.0, 1.0), 1, -1.0),
]


def tiny_log(tmp_path: Path) -> Path:
    lines = [
        orjson.dumps(record(0, np.asarray(pmf), chosen, reward)) for pmf, chosen, reward in TINY
    ]
    return write(tmp_path / "tiny.dsjson", lines)


def results(tmp_path: Path, *specs: str) -> dict[str, tuple[Estimate, Estimate, float]]:
    ev = evaluate([tiny_log(tmp_path)], Options([parse(s) for s in specs]))
    return {r.policy: (r.ips, r.snips, r.effective_sample_size) for r in ev.results}


def test_ips_and_snips_equal_the_hand_computed_values(tmp_path: Path) -> None:
    got = results(tmp_path, "uniform", "constant:#2", "constant:a0", "logged")
    # uniform: π = 1/2 → w = 1, 2, 4, 0.5; w·r = 1, 1, 1, −0.5
    ips_u, snips_u, ess_u = got["uniform"]
    assert ips_u.value == (1 + 1 + 1 - 0.5) / 4 == 0.625
    assert snips_u.value == 2.5 / 7.5
    assert ess_u == 7.5**2 / (1 + 4 + 16 + 0.25)
    # constant:#2 (action a1): w = 0, 4, 8, 1; w·r = 0, 2, 2, −1
    ips_2, snips_2, _ = got["constant:#2"]
    assert ips_2.value == 3 / 4
    assert snips_2.value == 3 / 13
    # constant:a0 is the same as constant:#1: only event 1 took it, w = 2, w·r = 2
    ips_0, snips_0, ess_0 = got["constant:a0"]
    assert ips_0.value == 2 / 4
    assert snips_0.value == 1.0
    assert ess_0 == 1.0
    # logged: the plain average, every weight 1
    ips_l, snips_l, ess_l = got["logged"]
    assert ips_l.value == snips_l.value == (1 + 0.5 + 0.25 - 1) / 4
    assert ess_l == 4


def test_the_interval_is_the_normal_one_with_the_sample_variance(tmp_path: Path) -> None:
    ips_u, snips_u, _ = results(tmp_path, "uniform")["uniform"]
    terms = [1.0, 1.0, 1.0, -0.5]
    half = Z * statistics.stdev(terms) / math.sqrt(4)
    assert ips_u.low == pytest.approx(0.625 - half, abs=1e-12)
    assert ips_u.high == pytest.approx(0.625 + half, abs=1e-12)
    # SNIPS, delta method: sd of w·(r − V) over the mean weight
    weights, rewards = [1.0, 2.0, 4.0, 0.5], [1.0, 0.5, 0.25, -1.0]
    value = 2.5 / 7.5
    residual = [w * (r - value) for w, r in zip(weights, rewards, strict=True)]
    half = Z * statistics.stdev(residual) / (7.5 / 4 * math.sqrt(4))
    assert snips_u.low == pytest.approx(value - half, abs=1e-12)
    assert snips_u.high == pytest.approx(value + half, abs=1e-12)


def test_degenerate_inputs_give_no_value_rather_than_nan() -> None:
    empty = np.zeros(0)
    assert ips(empty, empty) == Estimate(None, None, None)
    assert snips(np.zeros(3), np.ones(3)) == Estimate(None, None, None)  # no weight at all
    one = ips(np.ones(1), np.ones(1))
    assert one.value == 1.0
    assert one.low is None
    assert effective_sample_size(np.zeros(3)) == 0.0
    assert pytest.approx(1.959964, abs=1e-6) == Z
