"""Against known truth: intervals cover it, DR is the tightest, a better learner shows,
and a reward redesign moves the estimates the way it must."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from nextbest.evaluate.evaluation import Options, PolicyResult, evaluate
from nextbest.evaluate.specs import parse
from nextbest.policy.features import action_json, features_json
from nextbest.simulate.news import ARTICLES, NewsScenario
from nextbest.simulate.scenario import Luck
from nextbest.simulate.support import W_CSAT, SupportScenario
from tests.unit.evaluate.logs import generate, world, write

SEEDS = 50
EVENTS = 1000
ESTIMATORS = ("ips", "snips", "dr")


def by_policy(results: list[PolicyResult]) -> dict[str, PolicyResult]:
    return {r.policy: r for r in results}


def test_intervals_cover_the_truth_and_dr_is_no_wider_than_ips(tmp_path: Path) -> None:
    """50 seeds of a world whose mean rewards are known, logged by a non-uniform policy:
    each 95% interval of the uniform and constant targets covers the true value in ≥ 90%
    of them, and DR's interval is on average no wider than IPS's."""
    targets = {"uniform": None, "constant:#1": 0, "constant:a2": 2}
    covered = {(t, e): 0 for t in targets for e in ESTIMATORS}
    widths: dict[tuple[str, str], list[float]] = {k: [] for k in covered}
    for seed in range(SEEDS):
        w = world(seed)
        log = write(tmp_path / f"s{seed}.dsjson", generate(w, EVENTS, seed))
        results = by_policy(evaluate([log], Options([parse(t) for t in targets])).results)
        for target, k in targets.items():
            truth = w.value(w.uniform() if k is None else w.constant(k))
            for name in ESTIMATORS:
                est = getattr(results[target], name)
                assert est.low is not None
                assert est.high is not None
                covered[target, name] += est.low <= truth <= est.high
                widths[target, name].append(est.high - est.low)
    assert all(w.logging.max() > 0.5 for w in map(world, range(3)))  # not uniform
    for key, count in covered.items():
        assert count >= 0.9 * SEEDS, (key, count)
    for target in targets:
        assert np.mean(widths[target, "dr"]) <= np.mean(widths[target, "ips"]), target


def news_log(path: Path, rounds: int, epsilon: float, seed: int) -> Path:
    """The news scenario logged by its hand-written rule (each user's favourite topic)
    with ε spread over the other articles: a fixed policy, far from the best."""
    scenario = NewsScenario()
    rng = random.Random(seed)
    lines = []
    for _ in range(rounds):
        situation = scenario.situation(rng)
        rule = ARTICLES.index(scenario.rule(situation))
        pmf = [epsilon / (len(ARTICLES) - 1)] * len(ARTICLES)
        pmf[rule] = 1 - epsilon
        chosen = rng.choices(range(len(ARTICLES)), weights=pmf)[0]
        reward = scenario.expected_reward(situation, ARTICLES[chosen])
        order = [chosen, *(k for k in range(len(ARTICLES)) if k != chosen)]
        line = {
            "_label_cost": -reward,
            "_label_probability": pmf[chosen],
            "_label_Action": chosen + 1,
            "_labelIndex": chosen,
            "a": [k + 1 for k in order],
            "c": {
                "i": {"read_news": 1.0},
                "c": features_json(situation.context),
                "_multi": [{"a": action_json(article, {})} for article in ARTICLES],
            },
            "p": [pmf[k] for k in order],
        }
        lines.append(orjson.dumps(line))
    return write(path, lines)


def test_a_vw_candidate_known_to_be_better_is_estimated_above_the_logged_policy(
    tmp_path: Path,
) -> None:
    """On news, the rule earns 0.5 at best; a learner crossing user × time × article (the
    scenario's own VW arguments) learns the truth and is estimated far above it."""
    log = news_log(tmp_path / "news.dsjson", rounds=2000, epsilon=0.4, seed=1)
    candidate = "vw:--cb_explore_adf -q ca --cubic cca -l 0.5"
    results = by_policy(evaluate([log], Options([parse("logged"), parse(candidate)])).results)
    logged, better = results["logged"], results[candidate]
    assert logged.ips.value is not None
    assert logged.ips.high is not None
    assert logged.ips.value < 0.45
    for name in ESTIMATORS:
        est = getattr(better, name)
        assert est.low > logged.ips.high, name  # above it, intervals apart
        assert est.value > 0.75, name


def support_log(path: Path, rounds: int, seed: int) -> tuple[Path, float]:
    """The support scenario logged uniformly among allowed actions, with the raw signals in
    a ``_nextbest`` record; also the mean csat term of the reward in the log."""
    scenario = SupportScenario()
    rng = random.Random(seed)
    lines, csat_terms = [], []
    for i in range(rounds):
        situation = scenario.situation(rng)
        allowed = scenario.allowed_actions(situation)
        chosen = rng.randrange(len(allowed))
        outcome = scenario.outcome(situation, allowed[chosen], Luck.draw(rng, 4))
        csat = outcome.signals.get("csat")
        csat_terms.append(0.0 if csat is None else W_CSAT * (csat - 1) / 4)
        nextbest: dict[str, Any] = {
            "event_id": f"e{i}",
            "policy": scenario.policy,
            "mode": "online",
            "eligible": [{"id": a} for a in allowed],
            "rewards": [
                {"value": outcome.reward, "signals": dict(outcome.signals), "status": "accepted"}
            ],
        }
        p = 1 / len(allowed)
        order = [chosen, *(k for k in range(len(allowed)) if k != chosen)]
        line = {
            "_label_cost": -outcome.reward,
            "_label_probability": p,
            "_label_Action": chosen + 1,
            "_labelIndex": chosen,
            "a": [k + 1 for k in order],
            "c": {
                "i": {situation.intent: 1.0},
                "c": features_json(situation.context),
                "_multi": [{"a": action_json(a, {})} for a in allowed],
            },
            "p": [p] * len(allowed),
            "_nextbest": nextbest,
        }
        lines.append(orjson.dumps(line))
    return write(path, lines), float(np.mean(csat_terms))


NO_CSAT = """\
reward:
  default: 0.0
  aggregation: earliest
  clip: [-1, 1]
  signals:
    resolved:  {weight: 0.7}
    escalated: {weight: -0.5}
"""


def test_a_reward_that_ignores_csat_lowers_every_estimate_by_the_csat_share(
    tmp_path: Path,
) -> None:
    """csat only ever adds to the support reward (0.3 · (csat − 1) / 4 ≥ 0), so the same
    log re-scored without it must estimate every policy lower; the logged policy's drop is
    exactly the log's mean csat term."""
    log, csat_mean = support_log(tmp_path / "support.dsjson", rounds=1500, seed=4)
    spec = tmp_path / "no_csat.yaml"
    spec.write_text(NO_CSAT)
    policies = ["logged", "uniform", "constant:escalate_human", "constant:ask_details"]
    ev = evaluate([log], Options([parse(p) for p in policies], reward_spec=spec))
    assert ev.alternative is not None
    assert ev.rescorer is not None
    assert ev.rescorer.rescored == 1500
    assert ev.rescorer.kept == 0
    assert ev.rescorer.ignored["csat"] > 0
    before, after = by_policy(ev.results), by_policy(ev.alternative)
    assert csat_mean > 0.01
    # logged uniformly among the allowed actions: uniform's weights are all 1 as well
    for policy in ("logged", "uniform"):
        drop = _value(before[policy], "ips") - _value(after[policy], "ips")
        assert drop == pytest.approx(csat_mean, abs=1e-9), policy
    for policy in policies:
        for name in ESTIMATORS:
            assert _value(after[policy], name) < _value(before[policy], name), (policy, name)


def _value(result: PolicyResult, name: str) -> float:
    value = getattr(result, name).value
    assert value is not None
    return float(value)
