"""One simulation: a stream of rounds, the baselines on it, nextbest on it over gRPC.

Only nextbest goes over the wire; the baselines are computed from the ground truth on the
very same rounds, so the comparison is fair and costs nothing extra.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import grpc

from nextbest.policy.config import parse_config
from nextbest.simulate.baselines import BEST_FIXED, ORACLE, RANDOM, RULE, evaluate
from nextbest.simulate.embedded import embedded_server
from nextbest.simulate.runner import DecisionStats, Runner
from nextbest.simulate.scenario import Exploring, Scenario
from nextbest_proto.v1 import decision_pb2_grpc as rpc

NEXTBEST = "nextbest"
POLICIES = (NEXTBEST, RANDOM, BEST_FIXED, RULE, ORACLE)
CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class Options:
    """What a run plays: None means the scenario's default."""

    rounds: int | None = None
    seed: int = 0
    delay: int | None = None
    exploring: Exploring | None = None
    target: str | None = None  # host:port of a running service; None starts an embedded one


@dataclass(frozen=True, slots=True)
class Result:
    scenario: Scenario
    seed: int
    rounds: int
    delay: int
    exploring: Exploring | None  # None: the --target service's own configuration
    target: str | None
    rewards: dict[str, list[float]]  # per policy in POLICIES, one reward per round
    best_fixed_action: str
    stats: DecisionStats
    seconds: float

    def mean(self, policy: str, last: int | None = None) -> float:
        """Average reward of a policy, over all rounds or over the last `last`."""
        series = self.rewards[policy]
        if last is not None:
            series = series[-last:]
        return sum(series) / len(series) if series else 0.0


@contextmanager
def _channel(target: str) -> Iterator[grpc.Channel]:
    channel = grpc.insecure_channel(target)
    try:
        grpc.channel_ready_future(channel).result(timeout=CONNECT_TIMEOUT)
        yield channel
    finally:
        channel.close()


def simulate(
    scenario: Scenario,
    options: Options,
    on_round: Callable[[int, float], None] | None = None,
) -> Result:
    """Run the scenario; `on_round(index, nextbest_reward)` is called after each decision."""
    count = scenario.default_rounds if options.rounds is None else options.rounds
    if count < 1:
        raise ValueError("rounds must be ≥ 1")
    delay = scenario.default_delay if options.delay is None else options.delay
    stream = scenario.stream(options.seed, count)
    baselines = evaluate(scenario, stream, options.seed)
    exploring: Exploring | None = None
    if options.target is None:
        exploring = options.exploring or scenario.default_exploring
        config = scenario.config(exploring)
        parse_config(config, f"scenario {scenario.name}")  # a bad --epsilon fails here, named
        server = embedded_server(config)
        run_id = f"s{options.seed}"  # a fresh server: the same ids reproduce the same draws
    else:
        server = _existing(options.target)
        run_id = f"s{options.seed}-{uuid.uuid4().hex[:8]}"  # a long-lived server: never reuse
    start = time.perf_counter()
    with server as target, _channel(target) as channel:
        runner = Runner(
            rpc.DecisionServiceStub(channel),
            scenario,
            run_id=run_id,
            delay=delay,
            cap=exploring.epsilon if exploring is not None else None,
        )
        runner.play(stream, on_round)
    return Result(
        scenario=scenario,
        seed=options.seed,
        rounds=count,
        delay=delay,
        exploring=exploring,
        target=options.target,
        rewards={NEXTBEST: runner.rewards} | {p: baselines.rewards[p] for p in POLICIES[1:]},
        best_fixed_action=baselines.best_fixed_action,
        stats=runner.stats,
        seconds=time.perf_counter() - start,
    )


@contextmanager
def _existing(target: str) -> Iterator[str]:
    yield target
