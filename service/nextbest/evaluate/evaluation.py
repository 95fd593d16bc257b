"""One evaluation: read the log, run the learners, estimate every policy under each reward.

The log is read once into arrays; VW reads the used lines again only when something needs
features (a ``vw:``/``model:`` target, and the DR reward model, which is always fitted).
With ``--reward-spec`` every estimate is made twice: under the logged reward and under the
recomputed one, with the ``vw:`` learners and the reward model trained on each (a saved
model's choices do not depend on the reward, so it is scored once).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nextbest.evaluate import learners, targets
from nextbest.evaluate.estimators import (
    MIN_EFFECTIVE,
    Estimate,
    dr,
    effective_sample_size,
    ips,
    snips,
)
from nextbest.evaluate.reader import FloatArray, Log, Progress, Window, read
from nextbest.evaluate.reward_spec import Rescorer, load_spec
from nextbest.evaluate.specs import Spec
from nextbest.evaluate.targets import BoolArray, Distribution


@dataclass(frozen=True, slots=True)
class Options:
    specs: Sequence[Spec]
    window: Window = field(default_factory=Window)
    reward_spec: Path | None = None
    reward_model: str = learners.REWARD_MODEL_ARGS
    features: int = 0  # top N feature weights of each VW learner; 0: none


@dataclass(frozen=True, slots=True)
class PolicyResult:
    """The estimates of one policy under one reward."""

    policy: str
    events: int  # events where the policy applies
    ips: Estimate
    snips: Estimate
    dr: Estimate
    effective_sample_size: float
    warning: str | None = None
    expected_sample_size: float | None = None  # n² / Σ E[w²], from the logged pmfs
    unsupported: int = 0  # events where the target takes actions logged with probability 0


@dataclass(slots=True)
class Evaluation:
    files: list[Path]
    log: Log
    results: list[PolicyResult]
    alternative: list[PolicyResult] | None = None  # under --reward-spec
    reward_spec: Path | None = None
    rescorer: Rescorer | None = None
    features: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    seconds: float = 0.0


def evaluate(
    files: Sequence[Path], options: Options, progress: Progress | None = None
) -> Evaluation:
    """The whole evaluation; LogError (bad input) and ValueError (bad learner) propagate."""
    start = time.perf_counter()
    rescorer = None
    if options.reward_spec is not None:
        spec = load_spec(options.reward_spec, options.window.policy)
        rescorer = Rescorer(spec)
    needs_ids = any(s.kind in ("constant", "baseline") for s in options.specs)
    log = read(files, options.window, ids=needs_ids, rescorer=rescorer, progress=progress)
    vw_specs = [s for s in options.specs if s.learner]
    learned = learners.learn(
        log,
        vw_specs,
        -log.reward,
        reward_model=options.reward_model,
        features=options.features,
        progress=progress,
    )
    static = {s.text: targets.distribution(s, log) for s in options.specs if not s.learner}
    results = _estimate_all(log, options.specs, static, learned, log.reward)
    evaluation = Evaluation(list(files), log, results, features=learned.features, rescorer=rescorer)
    if log.alt_reward is not None:
        again = learners.learn(
            log,
            [s for s in vw_specs if s.kind == "vw"],
            -log.alt_reward,
            reward_model=options.reward_model,
            progress=progress,
            label=" (reward spec)",
        )
        again.pi = learned.pi | again.pi  # saved models choose the same under any reward
        evaluation.alternative = _estimate_all(log, options.specs, static, again, log.alt_reward)
        evaluation.reward_spec = options.reward_spec
    evaluation.seconds = time.perf_counter() - start
    return evaluation


def _estimate_all(
    log: Log,
    specs: Sequence[Spec],
    static: dict[str, Distribution],
    learned: learners.Learned,
    rewards: FloatArray,
) -> list[PolicyResult]:
    assert learned.reward_hat is not None
    out = []
    for spec in specs:
        if spec.learner:
            dist = Distribution(learned.pi[spec.text], np.ones(log.n, dtype=np.bool_))
        else:
            dist = static[spec.text]
        out.append(estimate(log, spec, dist, rewards, learned.reward_hat))
    return out


def estimate(
    log: Log, spec: Spec, dist: Distribution, rewards: FloatArray, reward_hat: FloatArray
) -> PolicyResult:
    """IPS, SNIPS and DR of one target over the events where it applies."""
    if spec.kind == "logged":  # the log's own policy: every weight is 1, DR adds nothing
        on_policy = Estimate.of_mean(rewards)
        return PolicyResult(spec.text, log.n, on_policy, on_policy, on_policy, float(log.n))
    slots = log.chosen_slots
    weights = dist.pi[slots] / log.probability
    target_model = np.add.reduceat(dist.pi * reward_hat, log.offsets[:-1])
    chosen_model = reward_hat[slots]
    used = dist.applies
    if not used.all():
        weights, target_model, chosen_model = weights[used], target_model[used], chosen_model[used]
        rewards = rewards[used]
    events = len(weights)
    ess = effective_sample_size(weights)
    expected, unsupported = _support(log, dist, used)
    return PolicyResult(
        spec.text,
        events,
        ips(weights, rewards),
        snips(weights, rewards),
        dr(weights, rewards, chosen_model, target_model),
        ess,
        _warning(spec, events, ess, expected, unsupported),
        expected,
        unsupported,
    )


def _support(log: Log, dist: Distribution, used: BoolArray) -> tuple[float | None, int]:
    """From the logged pmfs, where known: the sample size the weights are worth in
    expectation, n² / Σ_i Σ_a π_i(a)² / μ_i(a) (the realised one depends on luck: a target
    whose actions were logged with tiny probabilities can look fine until one is drawn), and
    the events where the target puts mass on actions the log could never take (no estimator
    sees those: the estimates are biased)."""
    mu, pi = log.logged_pmf, dist.pi
    known = np.add.reduceat(np.isnan(mu).astype(np.int64), log.offsets[:-1]) == 0
    known &= used
    never = np.add.reduceat(((pi > 0) & (mu == 0)).astype(np.int64), log.offsets[:-1]) > 0
    unsupported = int(np.count_nonzero(never & known))
    count = int(np.count_nonzero(known & ~never))
    if count == 0:
        return None, unsupported
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(mu > 0, pi * pi / mu, 0.0)
    second = np.add.reduceat(ratio, log.offsets[:-1])[known & ~never]
    total = float(np.sum(second))
    return (count * count / total if total > 0 else 0.0), unsupported


def _warning(
    spec: Spec, events: int, ess: float, expected: float | None, unsupported: int
) -> str | None:
    if events == 0:
        if spec.kind == "constant":
            return f"no event has an action with id {spec.argument!r}"
        if spec.kind == "baseline":
            return "no event carries a baseline_action_id"
        return f"no event has {spec.position} actions"
    if unsupported:
        return (
            f"on {unsupported:,} events it takes actions the log chose with probability 0 "
            "(never explored): no estimator sees them, the estimates are biased"
        )
    if ess == 0.0:
        return "the log never took this policy's actions: nothing to estimate from"
    smallest = ess if expected is None else min(ess, expected)
    if smallest < MIN_EFFECTIVE:
        sizes = f"effective sample size {ess:,.1f}"
        if expected is not None:
            sizes += f", {expected:,.1f} expected from the logged probabilities"
        return (
            f"{sizes} (< {MIN_EFFECTIVE:.0f}): a few heavily weighted events carry the "
            "estimate; do not trust its intervals"
        )
    return None
