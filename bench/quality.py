"""Section 5, learning quality: the synthetic problem of `quality_problem` through raw VW
(learning at once, and K rounds late), through nextbest's own model and exploration in this
process, and through the service (each reward sent K decisions later); the progressive
reward (mean reward over all rounds) of each, pooled over the seeds.

The reference is raw VW with `--epsilon 0.125`: with 5 actions that is exactly nextbest's
pmf for ε = 0.1 (VW puts e/K on each action, nextbest ε/(K−1) on each non-greedy one).
Round t's uniform number is, in every arm, nextbest's own seeded draw for that round's
event id, so arms with equal pmfs make equal choices.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import deque
from typing import Any

import vowpalwabbit
from lib.load import CALL_TIMEOUT
from lib.processes import ServerProcess, connect
from lib.suite import Section, Suite, progress
from lib.tables import QUALITY, Figure
from lib.targets import LEARNING_RATIO
from quality_problem import Q_ACTIONS, Q_INTENTS, Q_PLANS, Arm, Problem, make_problem

# Typed under the repo-wide `mypy`; `mypy` on one bench file sees the editable install,
# which has no py.typed marker: hence the tolerant ignores.
from nextbest.policy.exploration import (  # type: ignore[import-untyped, unused-ignore]
    draw,
    epsilon_greedy,
    greedy_index,
    sample,
)
from nextbest.policy.features import (  # type: ignore[import-untyped, unused-ignore]
    action_line,
    labelled,
    shared_line,
)
from nextbest.policy.model import Model  # type: ignore[import-untyped, unused-ignore]
from nextbest.policy.vw_args import DEFAULT_VW_ARGS  # type: ignore[import-untyped, unused-ignore]
from nextbest_client.v1 import decision_pb2 as pb

QUALITY_POLICY = "bench.quality"  # + ".s<seed>": one policy (so one fresh model) per seed
Q_EPSILON = 0.1  # nextbest's ε: 1 − ε on greedy, ε/(K−1) on each other action
QUALITY_SEED = 0  # the quality policy's `seed` (with the event id, fixes nextbest's draw)
K = len(Q_ACTIONS)
MATCHED_EPSILON = Q_EPSILON * K / (K - 1)  # VW's non-greedy mass e·(K−1)/K = nextbest's ε
ARM_ORDER = ("vw", "vw_eps", "vw_delayed", "nb", "nb_delayed")  # the rows, in this order


def section() -> Section:
    """Raw VW and nextbest's model before the servers start; the service stream after the
    shared rounds (on `nextbest`); the figures once all arms ran."""
    quality = _Quality()
    return Section(
        policies=_policies,
        in_process=quality.in_process,
        after=quality.through_service,
        figures=quality.figures,
        note=_note,
    )


def seeds(args: argparse.Namespace) -> list[int]:
    return list(range(args.quality_seed, args.quality_seed + args.quality_seeds))


def quality_policy(seed: int) -> str:
    return f"{QUALITY_POLICY}.s{seed}"


def _policies(args: argparse.Namespace, base: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """One policy per seed: ε = max_epsilon = 0.1, 1 h window, `earliest` (each reward is
    learned the moment it arrives), the default VW arguments."""
    return {
        quality_policy(seed): {
            "actions": [{"id": a} for a in Q_ACTIONS],
            "exploration": {"epsilon": Q_EPSILON, "max_epsilon": Q_EPSILON},
            "reward": {"wait": "1h", "default": 0.0, "aggregation": "earliest", "clip": [0, 1]},
            "vw_args": DEFAULT_VW_ARGS,
            "mode": "online",
            "seed": QUALITY_SEED,
        }
        for seed in seeds(args)
    }


def quality_event_id(seed: int, t: int) -> str:
    return f"quality-{seed}-{t}"


def quality_uniform(seed: int, t: int) -> float:
    """Round t's uniform number: nextbest's own seeded draw for that round's event id, so that
    raw VW and the service sample alike from alike pmfs (common random numbers)."""
    u: float = draw(QUALITY_SEED, quality_policy(seed), quality_event_id(seed, t))
    return u


def quality_action_lines() -> list[str]:
    return [action_line(a, {}) for a in Q_ACTIONS]


def raw_vw_arm(problem: Problem, epsilon: float, delay: int, seed: int, name: str) -> Arm:
    """VW's own --cb_explore_adf --epsilon, sampling its pmf with round t's seeded uniform;
    each round's example is learned `delay` rounds later (0: at once). Features as nextbest
    encodes them."""
    arm = Arm(name)
    ws = vowpalwabbit.Workspace(f"{DEFAULT_VW_ARGS} --epsilon {epsilon!r} --quiet")
    actions = quality_action_lines()
    queue: deque[tuple[list[str], int, float, float]] = deque()
    started = time.perf_counter()
    try:
        for t, r in enumerate(problem.rounds):
            lines = [shared_line(r.intent, r.context), *actions]
            pmf: list[float] = ws.predict(lines)
            chosen: int = sample(pmf, quality_uniform(seed, t))
            reward = problem.reward(r, chosen)
            arm.add(problem, r, chosen, reward, pmf[chosen] < max(pmf))
            queue.append((lines, chosen, reward, pmf[chosen]))
            while len(queue) > delay:
                lines_, chosen_, reward_, p = queue.popleft()
                ws.learn(labelled(lines_, chosen_, -reward_, p))
    finally:
        ws.finish()
    arm.seconds = time.perf_counter() - started
    return arm


def nextbest_model_arm(problem: Problem, delay: int, seed: int, name: str) -> Arm:
    """nextbest's own pieces in this process, no server: its Model (VW --cb_adf), its
    ε-greedy and its seeded draw. With the service's delay it should choose exactly as the
    service does; any difference is the transport, the store or the join."""
    arm = Arm(name)
    model = Model(DEFAULT_VW_ARGS)
    actions = quality_action_lines()
    explorable = [True] * len(actions)
    queue: deque[tuple[list[str], int, float, float]] = deque()
    started = time.perf_counter()
    try:
        for t, r in enumerate(problem.rounds):
            lines = [shared_line(r.intent, r.context), *actions]
            costs: list[float] = model.costs(lines)
            greedy: int = greedy_index(costs)
            pmf: list[float] = epsilon_greedy(greedy, explorable, Q_EPSILON)
            chosen: int = sample(pmf, quality_uniform(seed, t))
            reward = problem.reward(r, chosen)
            arm.add(problem, r, chosen, reward, chosen != greedy)
            queue.append((lines, chosen, reward, pmf[chosen]))
            while len(queue) > delay:
                lines_, chosen_, reward_, p = queue.popleft()
                model.learn(lines_, chosen_, -reward_, p)
    finally:
        model.close()
    arm.seconds = time.perf_counter() - started
    return arm


async def service_arm(
    server: ServerProcess, problem: Problem, delay: int, seed: int, name: str
) -> Arm:
    """The same stream through Decide; each reward is sent `delay` decisions later."""
    arm = Arm(name)
    queue: deque[tuple[str, float]] = deque()
    started = time.perf_counter()
    async with connect(server) as stub:

        async def send(event_id: str, value: float) -> None:
            resp: pb.RewardResponse = await stub.Reward(
                pb.RewardRequest(event_id=event_id, value=value), timeout=CALL_TIMEOUT
            )
            if resp.status != pb.REWARD_STATUS_ACCEPTED:
                raise RuntimeError(f"reward for {event_id} was not accepted: {resp.status}")

        for t, r in enumerate(problem.rounds):
            req = pb.DecideRequest(
                policy=quality_policy(seed),
                intent=r.intent,
                context={k: pb.Value(text=v) for k, v in r.context.items()},
                event_id=quality_event_id(seed, t),
            )
            resp: pb.DecideResponse = await stub.Decide(req, timeout=CALL_TIMEOUT)
            chosen = Q_ACTIONS.index(resp.action_id)
            reward = problem.reward(r, chosen)
            arm.add(problem, r, chosen, reward, resp.explored)
            queue.append((resp.event_id, reward))
            while len(queue) > delay:
                await send(*queue.popleft())
        while queue:
            await send(*queue.popleft())
    arm.seconds = time.perf_counter() - started
    return arm


class _Quality:
    """The arms, pooled over the seeds as they run, and each seed's own summary."""

    def __init__(self) -> None:
        self.problems: dict[int, Problem] = {}
        self.arms: dict[str, Arm] = {}
        self.per_seed: dict[str, list[dict[str, Any]]] = {}

    def _pool(self, key: str, name: str, arm: Arm) -> None:
        self.per_seed.setdefault(key, []).append(arm.summary())
        if key in self.arms:
            self.arms[key].merge(arm)
        else:
            self.arms[key] = arm
            arm.name = name

    def in_process(self, suite: Suite) -> None:
        delay = suite.args.quality_delay
        raw_arms = {
            "vw": (MATCHED_EPSILON, 0, f"raw VW --epsilon {MATCHED_EPSILON:.4g}, learns at once"),
            "vw_eps": (Q_EPSILON, 0, f"raw VW --epsilon {Q_EPSILON:g}, learns at once"),
            "vw_delayed": (
                MATCHED_EPSILON,
                delay,
                f"raw VW --epsilon {MATCHED_EPSILON:.4g}, {delay} rounds late",
            ),
        }
        nb_arms = {
            "nb": (0, "nextbest Model + ε-greedy in process, learns at once"),
            "nb_delayed": (delay, f"nextbest Model + ε-greedy in process, {delay} rounds late"),
        }
        self.problems = {s: make_problem(s, suite.args.quality_rounds) for s in seeds(suite.args)}
        with suite.section("learning quality: raw VW and nextbest's model (in process)"):
            for seed, problem in self.problems.items():
                for key, (epsilon, lag, name) in raw_arms.items():
                    self._pool(key, name, raw_vw_arm(problem, epsilon, lag, seed, name))
                for key, (lag, name) in nb_arms.items():
                    self._pool(key, name, nextbest_model_arm(problem, lag, seed, name))

    async def through_service(self, suite: Suite) -> None:
        delay = suite.args.quality_delay
        server = suite.pool["nextbest"]
        with suite.section("learning quality: through the service"):
            name = f"nextbest ε={Q_EPSILON:g}, rewards {delay} decisions late"
            for seed, problem in self.problems.items():
                progress(f"  seed {seed}: {len(problem.rounds):,} rounds …")
                self._pool("service", name, await service_arm(server, problem, delay, seed, name))
            learned = server.stats().get("learned", {})
            suite.data["quality_service_learned"] = {
                quality_policy(seed): learned.get(quality_policy(seed)) for seed in self.problems
            }

    def figures(self, suite: Suite) -> list[Figure]:
        args = suite.args
        suite.data["quality"] = {
            "seeds": seeds(args),
            "rounds_per_seed": args.quality_rounds,
            "delay": args.quality_delay,
            "vw_args": DEFAULT_VW_ARGS,
            "nextbest_epsilon": Q_EPSILON,
            "vw_epsilon_matched": MATCHED_EPSILON,
            "arms": {key: arm.summary() for key, arm in self.arms.items()},
            "per_seed": self.per_seed,
        }
        out = [
            Figure(
                QUALITY, arm.name, arm.progressive, "reward", note=f"expected {arm.expected:.4f}"
            )
            for arm in (self.arms.get(key) for key in ARM_ORDER)
            if arm is not None
        ]
        return out + self._service_figures(suite)

    def _service_figures(self, suite: Suite) -> list[Figure]:
        """The target (the service against the reference), and the plumbing alone (the
        service against its in-process twin with the same delay: same choices?)."""
        service, reference = self.arms.get("service"), self.arms.get("vw")
        twin = self.arms.get("nb_delayed")
        if service is None:
            return []
        out = []
        if reference is not None:
            ratio = service.progressive / reference.progressive
            out.append(
                Figure(
                    QUALITY,
                    f"{service.name} vs raw VW learning at once",
                    service.progressive,
                    "reward",
                    reference.progressive,
                    "",
                    f"ratio ≥ {LEARNING_RATIO}",
                    ratio >= LEARNING_RATIO,
                    f"expected {service.expected:.4f}: ratio "
                    f"{service.expected / reference.expected:.3f}",
                )
            )
        if twin is not None:
            agree = service.agreement(twin)
            suite.data["quality"]["service_agreement_with_in_process_twin"] = agree
            out.append(
                Figure(
                    QUALITY,
                    f"{service.name} vs nextbest's model in process, {suite.args.quality_delay} "
                    "rounds late (the plumbing alone)",
                    service.progressive,
                    "reward",
                    twin.progressive,
                    note=f"same choice in {agree * 100:.2f}% of rounds",
                )
            )
        return out


def _note(suite: Suite) -> str:
    q = suite.data.get("quality")
    if q is None:
        return ""
    return (
        f"Learning quality: seeds {q['seeds']} × {q['rounds_per_seed']:,} rounds, pooled; "
        f"{len(Q_INTENTS)} intents × {len(Q_PLANS)} plans (+ a distractor) × {K} actions; "
        f"vw_args '{q['vw_args']}'. nextbest's ε-greedy puts ε/(K−1) = "
        f"{Q_EPSILON / (K - 1):.4g} on each non-greedy action, VW's --epsilon e puts e/K: "
        f"--epsilon {q['vw_epsilon_matched']:.4g} gives the same pmf (the reference). "
        f"Round t's uniform is nextbest's seeded draw for the round's event id in every arm."
    )


if __name__ == "__main__":  # this section alone, with run.py's flags
    import run

    sys.exit(run.main(only=("quality",)))
