"""The nextbest benchmark suite: every figure the issues ask for, each against a floor
measured in the same run on the same machine.

    .venv/bin/python bench/run.py                 # ≈ 2.5-3 minutes
    .venv/bin/python bench/run.py --quick         # ≈ 35 s, shorter phases and fewer events
    .venv/bin/python bench/run.py --json FILE     # also write every number to FILE

It reports and never gates: PASS/MISS per target, exit status 0 (a section that fails is
reported as an error and the others still run). Sections, in the order they run:

1. floors: raw VW in this process (pyvw predict + learn; the pylibvw fast path that
   nextbest's Model uses: predict + learn, predict only, learn only), then a bare grpc.aio
   server (decide_bench's floor; its Reward returns a prebuilt ACCEPTED);
2. nextbest: Decide c=1 p50/p99, Decide c=16 and c=64, DecideBatch (100 per call), Reward
   ingest at c=16 (aggregation `sum`: the joins stay pending; and `earliest`: each reward
   closes and learns its event), learning (in process: `Engine.close_due` over N due events;
   through the server: N decisions with a 200 ms window and no rewards, until the engine's
   learned count says all are learned);
3. durability: the disk's fsync latency, then Decide c=16 and Reward c=16 with
   `fsync: always` against `fsync: interval`, each in its own server process with its own
   data directory;
4. memory: a fresh server's RSS idle and with N pending events (VmRSS of the server process);
5. learning quality: seeded synthetic streams through raw VW (learning at once, and K rounds
   late), through nextbest's own model and exploration in process, and through the service
   (rewards sent K decisions later); the progressive reward of each.

The RPC phases run `--repeat` interleaved rounds (floor, nextbest, nextbest-always for each
shape), and the tables show medians.

Servers run in their own processes (spawn), bound to 127.0.0.1 on OS-chosen ports, with data
directories under one temporary root that is removed at the end; see bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import datetime as dt
import functools
import json
import math
import os
import random
import statistics
import sys
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pylibvw
import vowpalwabbit
import yaml
from _common import (
    CALL_TIMEOUT,
    DEFAULT_CONFIG,
    POLICY,
    Phase,
    ServeOptions,
    ServerPool,
    ServerProcess,
    TableData,
    Timing,
    batch_call,
    connect,
    decide_call,
    floor_response,
    host_info,
    load_average,
    make_batches,
    make_requests,
    percentile,
    phase_table,
    render,
    render_markdown,
    run_phase,
    summarize,
)

# Typed under the repo-wide `mypy`; `mypy bench/run.py` alone sees the editable install,
# which has no py.typed marker: hence the tolerant ignores.
from nextbest.api import convert  # type: ignore[import-untyped, unused-ignore]
from nextbest.observability.logging import (  # type: ignore[import-untyped, unused-ignore]
    configure,
)
from nextbest.observability.metrics import (  # type: ignore[import-untyped, unused-ignore]
    Metrics,
    Telemetry,
)
from nextbest.policy.config import load_config  # type: ignore[import-untyped, unused-ignore]
from nextbest.policy.engine import Engine  # type: ignore[import-untyped, unused-ignore]
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
from nextbest.policy.ports import run_now  # type: ignore[import-untyped, unused-ignore]
from nextbest.policy.vw_args import (  # type: ignore[import-untyped, unused-ignore]
    DEFAULT_VW_ARGS,
    scorer_args,
)
from nextbest.store import codec  # type: ignore[import-untyped, unused-ignore]
from nextbest.store.durable import (  # type: ignore[import-untyped, unused-ignore]
    Durability,
    open_store,
)
from nextbest_client.v1 import decision_pb2 as pb

# Policies of the suite's config file (written to the temporary root; see write_config).
SUM_POLICY = "bench.reward_sum"  # support.next_step with aggregation sum, 10 min window
EARLIEST_POLICY = "bench.reward_earliest"  # … aggregation earliest: a reward closes the join
LEARN_POLICY = "bench.learn"  # … a 200 ms window: learned (with the default) soon after
LEARN_WAIT = 0.2
QUALITY_POLICY = "bench.quality"  # + ".s<seed>": the synthetic problem of section 5, one
# policy (so one fresh model) per seed of the stream

# The targets: reported as PASS/MISS, never enforced.
TARGET_THROUGHPUT_RATIO = 0.8  # Decide c=16 / floor c=16
TARGET_P50_OVERHEAD_MS = 0.25  # Decide p50 c=1 − floor p50 c=1
TARGET_BATCH_DECISIONS = 25_000.0  # DecideBatch decisions/s
TARGET_BYTES_PER_PENDING = 1.5 * 1024  # 1.5 KiB of server RSS per pending event
TARGET_LEARNING_RATIO = 0.98  # service progressive reward / raw VW's

LEARN_TIMEOUT = 120.0  # seconds to wait for the server to learn the decided events
REWARD_RATE_GUESS = 6_000.0  # rewards/s used to size the events decided before a phase

# -- the synthetic problem (section 5) --------------------------------------------------------

Q_INTENTS = ("billing_dispute", "refund_request", "login_problem", "cancel_subscription")
Q_PLANS = ("free", "pro", "enterprise")
Q_CHANNELS = ("chat", "email")  # carries no signal: a distractor feature
Q_ACTIONS = ("ask_details", "offer_refund", "transfer_billing", "escalate_human", "send_article")
Q_EPSILON = 0.1  # nextbest's ε: 1 − ε on greedy, ε/(K−1) on each other action
QUALITY_SEED = 0  # the quality policy's `seed` (with the event id, fixes nextbest's draw)


@dataclass(frozen=True)
class Round:
    intent: str
    context: dict[str, str]
    u: float  # the round's uniform number: action a pays 1 when u < p(intent, plan, a)


@dataclass(frozen=True)
class Problem:
    """A hidden reward-probability table over (intent, plan, action) and a seeded stream.

    Every arm sees the same contexts and the same u per round (common random numbers), so
    two arms that choose alike are paid alike. The table is exactly what the default
    interactions can represent (`--cubic ica`: intent × context × action).
    """

    table: dict[tuple[str, str], tuple[float, ...]]
    rounds: list[Round]

    def probability(self, r: Round, action: int) -> float:
        return self.table[(r.intent, r.context["plan"])][action]

    def reward(self, r: Round, action: int) -> float:
        return 1.0 if r.u < self.probability(r, action) else 0.0

    def best(self, r: Round) -> float:
        return max(self.table[(r.intent, r.context["plan"])])


def make_problem(seed: int, rounds: int) -> Problem:
    rng = random.Random(seed)
    table: dict[tuple[str, str], tuple[float, ...]] = {}
    for intent in Q_INTENTS:
        for plan in Q_PLANS:
            p = [rng.uniform(0.05, 0.45) for _ in Q_ACTIONS]
            p[rng.randrange(len(Q_ACTIONS))] = rng.uniform(0.6, 0.85)
            table[(intent, plan)] = tuple(p)
    stream = [
        Round(
            rng.choice(Q_INTENTS),
            {"plan": rng.choice(Q_PLANS), "channel": rng.choice(Q_CHANNELS)},
            rng.random(),
        )
        for _ in range(rounds)
    ]
    return Problem(table, stream)


@dataclass
class Arm:
    """One learner's run over the stream."""

    name: str
    rounds: int = 0
    reward_sum: float = 0.0  # realized rewards
    expected_sum: float = 0.0  # p(intent, plan, chosen): the same, without the coin flips
    best_sum: float = 0.0  # what always choosing the best action would expect
    explored: int = 0
    curve: list[tuple[int, float]] = field(default_factory=list)  # (rounds, mean reward)
    seconds: float = 0.0
    choices: list[int] = field(default_factory=list, repr=False)  # the action of each round

    def add(self, problem: Problem, r: Round, chosen: int, reward: float, explored: bool) -> None:
        self.rounds += 1
        self.reward_sum += reward
        self.expected_sum += problem.probability(r, chosen)
        self.best_sum += problem.best(r)
        self.explored += explored
        self.choices.append(chosen)
        if self.rounds % 500 == 0:
            self.curve.append((self.rounds, self.reward_sum / self.rounds))

    @property
    def progressive(self) -> float:
        return self.reward_sum / self.rounds if self.rounds else math.nan

    @property
    def expected(self) -> float:
        return self.expected_sum / self.rounds if self.rounds else math.nan

    def merge(self, other: Arm) -> None:
        """Pool another seed's run into this one (curves are kept per seed in the JSON)."""
        self.rounds += other.rounds
        self.reward_sum += other.reward_sum
        self.expected_sum += other.expected_sum
        self.best_sum += other.best_sum
        self.explored += other.explored
        self.seconds += other.seconds
        self.choices += other.choices

    def agreement(self, other: Arm) -> float:
        """The share of rounds in which both arms chose the same action."""
        same = sum(a == b for a, b in zip(self.choices, other.choices, strict=False))
        return same / max(1, min(len(self.choices), len(other.choices)))

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "rounds": self.rounds,
            "progressive_reward": self.progressive,
            "expected_reward": self.expected,
            "optimal_expected_reward": self.best_sum / self.rounds if self.rounds else math.nan,
            "explored_share": self.explored / self.rounds if self.rounds else math.nan,
            "curve": self.curve,
            "seconds": self.seconds,
        }


def quality_action_lines() -> list[str]:
    return [action_line(a, {}) for a in Q_ACTIONS]


def quality_policy(seed: int) -> str:
    return f"{QUALITY_POLICY}.s{seed}"


def quality_event_id(seed: int, t: int) -> str:
    return f"quality-{seed}-{t}"


def quality_uniform(seed: int, t: int) -> float:
    """Round t's uniform number: nextbest's own seeded draw for that round's event id, so that
    raw VW and the service sample alike from alike pmfs (common random numbers)."""
    u: float = draw(QUALITY_SEED, quality_policy(seed), quality_event_id(seed, t))
    return u


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


# -- the config the servers run ---------------------------------------------------------------


def write_config(root: Path, quality_seeds: Sequence[int]) -> Path:
    """examples/support.yaml's policy, variants of it for rewards and learning, and one
    policy per seed of the synthetic problem."""
    data = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    base: dict[str, Any] = data["policies"][POLICY]

    def variant(**reward: Any) -> dict[str, Any]:
        policy = copy.deepcopy(base)
        policy["reward"] = {**base["reward"], **reward}
        return policy

    policies = {
        POLICY: base,
        SUM_POLICY: variant(wait="10m", aggregation="sum"),
        EARLIEST_POLICY: variant(wait="10m", aggregation="earliest"),
        LEARN_POLICY: variant(wait=f"{LEARN_WAIT * 1000:.0f}ms"),
    }
    for seed in quality_seeds:
        policies[quality_policy(seed)] = {
            "actions": [{"id": a} for a in Q_ACTIONS],
            "exploration": {"epsilon": Q_EPSILON, "max_epsilon": Q_EPSILON},
            "reward": {"wait": "1h", "default": 0.0, "aggregation": "earliest", "clip": [0, 1]},
            "vw_args": DEFAULT_VW_ARGS,
            "mode": "online",
            "seed": QUALITY_SEED,
        }
    path = root / "bench.yaml"
    path.write_text(yaml.safe_dump({"policies": policies}, sort_keys=False), encoding="utf-8")
    load_config(path)  # fail here, with the reason, rather than in a server process
    return path


# -- figures ------------------------------------------------------------------------------------


@dataclass
class Figure:
    section: str
    name: str
    value: float
    unit: str
    floor: float | None = None
    floor_name: str = ""
    target: str = ""
    passed: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.floor is None or not self.floor or math.isnan(self.floor):
            return None
        return self.value / self.floor

    def row(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio}


def shown(value: float | None, unit: str) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    if unit == "ms":
        return f"{value:.3f} ms"
    if unit == "MB":
        return f"{value / 1e6:,.1f} MB"
    if unit == "B":
        return f"{value:,.0f} B"
    if unit == "reward":
        return f"{value:.4f}"
    if unit == "s":
        return f"{value:.3f} s"
    return f"{value:,.0f} {unit}"


def figure_tables(figures: Sequence[Figure]) -> list[TableData]:
    tables: dict[str, TableData] = {}
    for f in figures:
        table = tables.get(f.section)
        if table is None:
            table = tables[f.section] = TableData(
                f.section, ["figure", "value", "floor", "ratio", "target", "result"]
            )
        ratio = f.ratio
        floor = shown(f.floor, f.unit) if f.floor is not None else ""
        if f.floor_name and floor:
            floor = f"{floor} ({f.floor_name})"
        table.rows.append(
            [
                f.name + (f" [{f.note}]" if f.note else ""),
                shown(f.value, f.unit),
                floor,
                "" if ratio is None else f"{ratio:.2f}",
                f.target,
                "" if f.passed is None else "PASS" if f.passed else "MISS",
            ]
        )
    return list(tables.values())


# -- section 1: raw VW floors, in this process --------------------------------------------------


def vw_examples() -> list[list[str]]:
    """support.next_step's 4 catalog actions with decide_bench's 48 contexts."""
    config = load_config(DEFAULT_CONFIG).policies[POLICY]
    actions = [action_line(a.id, dict(a.features)) for a in config.actions]
    out = []
    for req in make_requests(48):
        context = convert.from_features(req.context, "context")
        out.append([shared_line(req.intent, context), *actions])
    return out


def rate(fn: Callable[[int], object], n: int, chunks: int = 3) -> float:
    """Calls per second of fn(i), i = 0…n−1: the median over `chunks` equal chunks."""
    per = max(1, n // chunks)
    rates = []
    for c in range(chunks):
        t0 = time.perf_counter()
        for i in range(c * per, (c + 1) * per):
            fn(i)
        rates.append(per / (time.perf_counter() - t0))
    return statistics.median(rates)


def raw_vw_floors(n: int) -> dict[str, float]:
    examples = vw_examples()
    k = len(examples[0]) - 1

    def label(i: int) -> tuple[list[str], int, float, float]:
        lines = examples[i % len(examples)]
        return lines, i % k, -1.0 if i % 3 == 0 else 0.0, 1.0 / k

    out: dict[str, float] = {}
    ws = vowpalwabbit.Workspace(scorer_args(DEFAULT_VW_ARGS))
    try:

        def pyvw_step(i: int) -> None:
            lines, chosen, cost, p = label(i)
            ws.predict(lines)
            ws.learn(labelled(lines, chosen, cost, p))

        out["pyvw predict+learn"] = rate(pyvw_step, n)
    finally:
        ws.finish()

    fast = vowpalwabbit.Workspace(scorer_args(DEFAULT_VW_ARGS))

    def predict(i: int) -> list[float]:  # as nextbest.policy.model.Model.costs
        examples_ = fast._parse("\n".join(examples[i % len(examples)]))
        try:
            pylibvw.vw.predict_multi(fast, examples_)
            scores: list[float] = examples_[0].get_action_scores()
        finally:
            pylibvw.vw._finish_example_multi_ex(fast, examples_)
        return scores

    def learn(i: int) -> None:  # as Model.learn
        lines, chosen, cost, p = label(i)
        examples_ = fast._parse("\n".join(labelled(lines, chosen, cost, p)))
        try:
            pylibvw.vw.learn_multi(fast, examples_)
        finally:
            pylibvw.vw._finish_example_multi_ex(fast, examples_)

    def both(i: int) -> None:
        predict(i)
        learn(i)

    try:
        out["pylibvw predict+learn"] = rate(both, n)
        out["pylibvw predict"] = rate(predict, n)
        out["pylibvw learn"] = rate(learn, n)
    finally:
        fast.finish()
    return out


# -- section 2: learning in process -------------------------------------------------------------


def learn_in_process(config_path: Path, data_dir: Path, n: int) -> dict[str, float]:
    """Engine.decide N events of LEARN_POLICY, then Engine.close_due over all of them once due
    (a durable store in its own directory: each close writes its DSJSON line, then learns)."""
    configure("warning")  # the engine's listener logs a line per join: not here
    config = load_config(config_path)
    store, models, _ = open_store(data_dir, config, Durability(), 50_000)
    now = [1_000_000.0]
    engine = Engine(config, store, Telemetry(Metrics()), lambda: now[0], models=models)
    try:
        inputs = [convert.decide_input(r) for r in make_requests(48, policy=LEARN_POLICY)]
        sizes = [
            len(codec.encode(run_now(engine.decide(inputs[i % len(inputs)])))) for i in range(1000)
        ]
        t0 = time.perf_counter()
        for i in range(n):
            run_now(engine.decide(inputs[i % len(inputs)]))
        decide_s = time.perf_counter() - t0
        now[0] += 3600.0
        learned_before = models[LEARN_POLICY].learned
        t0 = time.perf_counter()
        for _ in range(n // 1000 + 3):  # bounded: 1000 a call, as the server's join clock
            if run_now(engine.close_due(limit=1000)) == 0:
                break
        close_s = time.perf_counter() - t0
        learned = models[LEARN_POLICY].learned - learned_before
    finally:
        engine.close()
        store.close_files()
    return {
        "events": n + len(sizes),
        "learned": learned,
        "decide_per_s": n / decide_s,
        "close_per_s": learned / close_s,
        "encoded_event_bytes_mean": statistics.fmean(sizes),
    }


# -- section 3: the disk ------------------------------------------------------------------------


def fsync_latencies(directory: Path, budget: float = 1.0, limit: int = 300) -> list[float]:
    """Append a 200 B line and fsync it, repeatedly, in `directory`: what one group commit
    costs on this disk at best (seconds each; at most `limit` or `budget` seconds)."""
    path = directory / "fsync-probe"
    out: list[float] = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        end = time.perf_counter() + budget
        while len(out) < limit and time.perf_counter() < end:
            os.write(fd, b"x" * 199 + b"\n")
            t0 = time.perf_counter()
            os.fsync(fd)
            out.append(time.perf_counter() - t0)
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)
    return out


# -- section 2: RPC phases ------------------------------------------------------------------------


async def predecide(server: ServerProcess, policy: str, n: int, batch_size: int = 100) -> list[str]:
    """Decide n events of `policy` with DecideBatch; their event ids."""
    requests = make_requests(48, seed=11, policy=policy)
    batches = make_batches(requests, batch_size, math.ceil(n / batch_size))
    ids: list[str] = []
    async with connect(server) as stub:
        for batch in batches:
            resp: pb.DecideBatchResponse = await stub.DecideBatch(batch, timeout=CALL_TIMEOUT)
            for item in resp.results:
                if item.WhichOneof("result") != "decision":
                    raise RuntimeError(f"predecide on {server.name}: {item.error.message}")
                ids.append(item.decision.event_id)
    return ids[:n]


def reward_call(stub: Any, rewards: Sequence[pb.RewardRequest]) -> Any:
    async def call(i: int) -> int:
        resp: pb.RewardResponse = await stub.Reward(rewards[i], timeout=CALL_TIMEOUT)
        if resp.status != pb.REWARD_STATUS_ACCEPTED:
            raise ValueError(f"reward status {resp.status}, not ACCEPTED")
        return 1

    return call


async def learn_through_server(server: ServerProcess, n: int, batch_size: int) -> dict[str, Any]:
    """Decide n events with a 200 ms window and send no reward; time until the engine has
    learned them all (its learned count, read over the bench's control pipe)."""

    def learned() -> int:
        return int(server.stats().get("learned", {}).get(LEARN_POLICY, 0))

    before = learned()
    batches = make_batches(
        make_requests(48, seed=13, policy=LEARN_POLICY), batch_size, math.ceil(n / batch_size)
    )
    n = batch_size * len(batches)
    t0 = time.perf_counter()
    async with connect(server) as stub:
        for batch in batches:
            await stub.DecideBatch(batch, timeout=CALL_TIMEOUT)
    t1 = time.perf_counter()
    done = before
    while time.perf_counter() - t1 < LEARN_TIMEOUT:
        done = learned()
        if done - before >= n:
            break
        await asyncio.sleep(0.005)
    t2 = time.perf_counter()
    return {
        "events": n,
        "learned": done - before,
        "decide_s": t1 - t0,
        "until_learned_s": t2 - t0,
        "drain_after_window_s": t2 - t1 - LEARN_WAIT,
        # events decided, closed and learned per second, the window itself left out
        "per_s": (done - before) / max(t2 - t0 - LEARN_WAIT, 1e-9),
    }


# -- the run --------------------------------------------------------------------------------------

F1 = "1. Floors (same machine, same run)"
F2 = "2. nextbest"
F3 = "3. Durability: fsync=always against fsync=interval"
F4 = "4. Memory (server RSS, VmRSS)"
F5 = "5. Learning quality (progressive reward = mean reward over all rounds)"


@dataclass
class Suite:
    args: argparse.Namespace
    figures: list[Figure] = field(default_factory=list)
    phases: list[Phase] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @contextlib.contextmanager
    def section(self, name: str) -> Iterator[None]:
        """Run a section; a failure is reported and the suite goes on."""
        progress(f"{name} …")
        started = time.perf_counter()
        try:
            yield
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            self.errors.append(f"{name}: {type(exc).__name__}: {exc}")
        self.data.setdefault("section_seconds", {})[name] = round(time.perf_counter() - started, 1)

    def add(self, *figures: Figure) -> None:
        self.figures.extend(figures)


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def run(args: argparse.Namespace) -> Suite:
    suite = Suite(args)
    s = suite.data
    seeds = list(range(args.quality_seed, args.quality_seed + args.quality_seeds))
    with ServerPool(args.data_root) as pool:
        config = write_config(pool.root, seeds)
        s["config"] = yaml.safe_load(config.read_text(encoding="utf-8"))

        raw: dict[str, float] = {}
        with suite.section("raw VW floors (in process)"):
            raw = raw_vw_floors(args.vw_events)
            s["raw_vw"] = raw
            for name, value in raw.items():
                suite.add(Figure(F1, f"raw VW {name}, 4 actions (in process)", value, "events/s"))

        with suite.section("learning in process (Engine.close_due)"):
            inproc = learn_in_process(config, pool.root / "data-inprocess", args.learn_events)
            s["learning_in_process"] = inproc
            suite.add(
                Figure(
                    F2,
                    "Engine.decide, in process",
                    inproc["decide_per_s"],
                    "events/s",
                    raw.get("pylibvw predict"),
                    "raw predict",
                ),
                Figure(
                    F2,
                    f"learning in process: Engine.close_due, {inproc['learned']:,} due events",
                    inproc["close_per_s"],
                    "events/s",
                    raw.get("pylibvw learn"),
                    "raw learn",
                ),
            )

        arms: dict[str, Arm] = {}
        per_seed: dict[str, list[dict[str, Any]]] = {}
        k = len(Q_ACTIONS)
        matched = Q_EPSILON * k / (k - 1)  # VW's non-greedy mass e·(K−1)/K = nextbest's ε
        delay = args.quality_delay
        raw_arms = {
            "vw": (matched, 0, f"raw VW --epsilon {matched:.4g}, learns at once"),
            "vw_eps": (Q_EPSILON, 0, f"raw VW --epsilon {Q_EPSILON:g}, learns at once"),
            "vw_delayed": (matched, delay, f"raw VW --epsilon {matched:.4g}, {delay} rounds late"),
        }
        problems = {seed: make_problem(seed, args.quality_rounds) for seed in seeds}

        def pool_arm(key: str, name: str, arm: Arm) -> None:
            per_seed.setdefault(key, []).append(arm.summary())
            if key in arms:
                arms[key].merge(arm)
            else:
                arms[key] = arm
                arm.name = name

        nb_arms = {
            "nb": (0, "nextbest Model + ε-greedy in process, learns at once"),
            "nb_delayed": (delay, f"nextbest Model + ε-greedy in process, {delay} rounds late"),
        }
        with suite.section("learning quality: raw VW and nextbest's model (in process)"):
            for seed, problem in problems.items():
                for key, (epsilon, lag, name) in raw_arms.items():
                    pool_arm(key, name, raw_vw_arm(problem, epsilon, lag, seed, name))
                for key, (lag, name) in nb_arms.items():
                    pool_arm(key, name, nextbest_model_arm(problem, lag, seed, name))

        floor = floor_response()
        with suite.section("starting servers"):
            pool.start("floor", ServeOptions("floor", floor_response=floor.SerializeToString()))
            pool.start("nextbest", ServeOptions("nextbest", config=str(config)))
            pool.start(
                "nextbest-always", ServeOptions("nextbest", config=str(config), fsync="always")
            )
            s["idle_rss"] = {name: pool[name].rss_bytes() for name in pool.servers}

        if "nextbest-always" in pool:
            await rpc_sections(suite, pool, raw)
            with suite.section("learning quality: through the service"):
                name = f"nextbest ε={Q_EPSILON:g}, rewards {delay} decisions late"
                for seed, problem in problems.items():
                    progress(f"  seed {seed}: {len(problem.rounds):,} rounds …")
                    arm = await service_arm(pool["nextbest"], problem, delay, seed, name)
                    pool_arm("service", name, arm)
                learned = pool["nextbest"].stats().get("learned", {})
                s["quality_service_learned"] = {
                    quality_policy(seed): learned.get(quality_policy(seed)) for seed in seeds
                }
        for name in list(pool.servers):
            pool.stop(name)
        quality_figures(suite, arms, per_seed, matched, seeds)

        with suite.section("memory"):
            await memory_section(suite, pool, config, floor_rss=s.get("idle_rss", {}))
    return suite


async def rpc_sections(suite: Suite, pool: ServerPool, raw: dict[str, float]) -> None:
    """Decide, DecideBatch and Reward phases, interleaved across servers, `--repeat` rounds;
    then learning through the server."""
    args = suite.args
    floor, nb, always = pool["floor"], pool["nextbest"], pool["nextbest-always"]
    requests = make_requests(48)
    batches = make_batches(requests, args.batch_size, 16)
    c, bc, rounds = args.reward_concurrency, args.batch_concurrency, args.repeat
    n = max(c, int(REWARD_RATE_GUESS * (args.warmup + args.seconds)) // c * c)
    rewards: dict[str, list[pb.RewardRequest]] = {}

    with suite.section("deciding the events to reward"):
        progress(f"  {n * rounds:,} events per reward phase ({rounds} round(s)) …")
        for kind, server, policy in (
            ("nextbest/sum", nb, SUM_POLICY),
            ("nextbest-always/sum", always, SUM_POLICY),
            ("nextbest/earliest", nb, EARLIEST_POLICY),
        ):
            ids = await predecide(server, policy, n * rounds)
            rewards[kind] = [pb.RewardRequest(event_id=e, value=0.5) for e in ids]
        rewards["floor"] = [  # free to make: plenty, so that the floor never runs out
            pb.RewardRequest(event_id=uuid.uuid4().hex, value=0.5) for _ in range(4 * n * rounds)
        ]

    def decide(stub: Any) -> Any:
        return decide_call(stub, requests)

    def batch(stub: Any) -> Any:
        return batch_call(stub, batches)

    # (server, method, concurrency, call, items, batch, reward kind)
    plan: list[tuple[ServerProcess, str, int, Callable[[Any], Any], int, int, str]] = [
        (floor, "Decide", 1, decide, len(requests), 1, ""),
        (nb, "Decide", 1, decide, len(requests), 1, ""),
        (floor, "Decide", 16, decide, len(requests), 1, ""),
        (nb, "Decide", 16, decide, len(requests), 1, ""),
        (always, "Decide", 16, decide, len(requests), 1, ""),
        (floor, "Decide", 64, decide, len(requests), 1, ""),
        (nb, "Decide", 64, decide, len(requests), 1, ""),
        (floor, "DecideBatch", bc, batch, len(batches), args.batch_size, ""),
        (nb, "DecideBatch", bc, batch, len(batches), args.batch_size, ""),
    ]
    if rewards:
        plan += [
            (floor, "Reward", c, decide, 0, 1, "floor"),
            (nb, "Reward-sum", c, decide, 0, 1, "nextbest/sum"),
            (always, "Reward-sum", c, decide, 0, 1, "nextbest-always/sum"),
            (nb, "Reward-earliest", c, decide, 0, 1, "nextbest/earliest"),
        ]
    fsyncs: list[float] = []
    with suite.section("disk fsync latency"):
        fsyncs += fsync_latencies(pool.root)
    with suite.section("Decide, DecideBatch and Reward phases"):
        for round_no in range(rounds):
            for server, method, conc, make_call, items, size, kind in plan:
                progress(f"  round {round_no + 1}/{rounds}: {server.name} {method} c={conc} …")
                cap = 1_000_000
                if kind:  # this round's share of the decided events, one reward per event
                    per_round = len(rewards[kind]) // rounds
                    share = rewards[kind][round_no * per_round : (round_no + 1) * per_round]
                    make_call = functools.partial(reward_call, rewards=share)
                    items, cap = len(share), len(share) // conc
                timing = Timing(args.warmup, args.seconds, cap)
                p = await run_phase(
                    server, method, conc, timing, make_call, items, batch=size, round_no=round_no
                )
                suite.phases.append(p)
                if p.errors:
                    suite.errors.append(f"{p.key}: {p.errors} errors, e.g. {p.error_sample}")

    with suite.section("disk fsync latency"):
        fsyncs += fsync_latencies(pool.root)  # again: other users of the disk come and go
        fsyncs.sort()
        suite.data["fsync"] = {
            "count": len(fsyncs),
            "p50_ms": percentile(fsyncs, 0.5) * 1e3,
            "p99_ms": percentile(fsyncs, 0.99) * 1e3,
        }
        suite.add(
            Figure(F3, "disk: append 200 B + fsync, p50", percentile(fsyncs, 0.5) * 1e3, "ms"),
            Figure(F3, "disk: append 200 B + fsync, p99", percentile(fsyncs, 0.99) * 1e3, "ms"),
        )

    with suite.section("learning through the server"):
        suite.data["learning_service"] = await learn_through_server(
            nb, args.learn_events, args.batch_size
        )

    summary = summarize(suite.phases)
    suite.data["summary"] = summary
    rpc_figures(suite, summary, raw)


def rpc_figures(suite: Suite, summary: dict[str, dict[str, Any]], raw: dict[str, float]) -> None:
    args = suite.args

    def get(key: str, metric: str) -> float:
        row = summary.get(key)
        return float(row[metric]) if row is not None else math.nan

    def note(key: str) -> str:
        row = summary.get(key)
        return "ran out of events" if row is not None and row.get("exhausted") else ""

    def rounds(key: str, metric: str) -> list[float]:
        return [float(getattr(p, metric)) for p in suite.phases if p.key == key]

    def per_round(values: Sequence[float], fmt: str) -> str:
        """Each round's own value (phases of one round ran back to back), when there are
        several: how much the machine moved the verdict."""
        return "per round " + ", ".join(format(v, fmt) for v in values) if len(values) > 1 else ""

    b = f"b{args.batch_size}xc{args.batch_concurrency}"
    rc = f"c{args.reward_concurrency}"
    suite.add(
        Figure(F1, "gRPC floor Decide p50, c=1", get("floor/Decide/c1", "p50_ms"), "ms"),
        Figure(F1, "gRPC floor Decide p99, c=1", get("floor/Decide/c1", "p99_ms"), "ms"),
        Figure(F1, "gRPC floor Decide, c=16", get("floor/Decide/c16", "calls_per_s"), "calls/s"),
        Figure(F1, "gRPC floor Decide, c=64", get("floor/Decide/c64", "calls_per_s"), "calls/s"),
        Figure(
            F1,
            f"gRPC floor DecideBatch, {args.batch_size} per call, c={args.batch_concurrency}",
            get(f"floor/DecideBatch/{b}", "decisions_per_s"),
            "decisions/s",
        ),
        Figure(
            F1,
            f"gRPC floor Reward, c={args.reward_concurrency}",
            get(f"floor/Reward/{rc}", "calls_per_s"),
            "calls/s",
        ),
    )
    p50, floor_p50 = get("nextbest/Decide/c1", "p50_ms"), get("floor/Decide/c1", "p50_ms")
    c16 = get("nextbest/Decide/c16", "calls_per_s")
    floor_c16 = get("floor/Decide/c16", "calls_per_s")
    batch = get(f"nextbest/DecideBatch/{b}", "decisions_per_s")
    reward_floor = get(f"floor/Reward/{rc}", "calls_per_s")
    suite.add(
        Figure(
            F2,
            "Decide p50, c=1",
            p50,
            "ms",
            floor_p50,
            "",
            f"≤ floor + {TARGET_P50_OVERHEAD_MS} ms",
            p50 - floor_p50 <= TARGET_P50_OVERHEAD_MS,
            "; ".join(
                x
                for x in (
                    f"floor +{p50 - floor_p50:.3f} ms",
                    per_round(
                        [
                            a - b
                            for a, b in zip(
                                rounds("nextbest/Decide/c1", "p50_ms"),
                                rounds("floor/Decide/c1", "p50_ms"),
                                strict=False,
                            )
                        ],
                        "+.3f",
                    ),
                )
                if x
            ),
        ),
        Figure(
            F2,
            "Decide p99, c=1",
            get("nextbest/Decide/c1", "p99_ms"),
            "ms",
            get("floor/Decide/c1", "p99_ms"),
        ),
        Figure(
            F2,
            "Decide throughput, c=16",
            c16,
            "calls/s",
            floor_c16,
            "",
            f"ratio ≥ {TARGET_THROUGHPUT_RATIO}",
            c16 / floor_c16 >= TARGET_THROUGHPUT_RATIO,
            per_round(
                [
                    a / b
                    for a, b in zip(
                        rounds("nextbest/Decide/c16", "calls_per_s"),
                        rounds("floor/Decide/c16", "calls_per_s"),
                        strict=False,
                    )
                ],
                ".2f",
            ),
        ),
        Figure(
            F2,
            "Decide throughput, c=64",
            get("nextbest/Decide/c64", "calls_per_s"),
            "calls/s",
            get("floor/Decide/c64", "calls_per_s"),
        ),
        Figure(
            F2,
            f"DecideBatch, {args.batch_size} per call, c={args.batch_concurrency}",
            batch,
            "decisions/s",
            get(f"floor/DecideBatch/{b}", "decisions_per_s"),
            "",
            f"≥ {TARGET_BATCH_DECISIONS:,.0f}/s",
            batch >= TARGET_BATCH_DECISIONS,
            per_round(rounds(f"nextbest/DecideBatch/{b}", "decisions_per_s"), ",.0f"),
        ),
        Figure(
            F2,
            f"Reward ingest, c={args.reward_concurrency}, sum (joins stay pending)",
            get(f"nextbest/Reward-sum/{rc}", "calls_per_s"),
            "calls/s",
            reward_floor,
            note=note(f"nextbest/Reward-sum/{rc}"),
        ),
        Figure(
            F2,
            f"Reward ingest, c={args.reward_concurrency}, earliest (each closes + learns)",
            get(f"nextbest/Reward-earliest/{rc}", "calls_per_s"),
            "calls/s",
            reward_floor,
            note=note(f"nextbest/Reward-earliest/{rc}"),
        ),
    )
    ls = suite.data.get("learning_service")
    if ls is not None:
        suite.add(
            Figure(
                F2,
                f"learning through the server: {ls['learned']:,} decided, "
                f"{LEARN_WAIT * 1000:.0f} ms window, no rewards",
                ls["per_s"],
                "events/s",
                raw.get("pylibvw predict+learn"),
                "raw predict+learn",
                note=f"all learned {ls['drain_after_window_s'] * 1000:.0f} ms after the last "
                "window ended",
            )
        )
    fsynced = "a commit fsyncs the files written since the last sync: usually the journal"
    suite.add(
        Figure(
            F3,
            "Decide throughput c=16, fsync=always",
            get("nextbest-always/Decide/c16", "calls_per_s"),
            "calls/s",
            c16,
            "interval",
            note=fsynced,
        ),
        Figure(
            F3,
            f"Reward ingest c={args.reward_concurrency} (sum), fsync=always",
            get(f"nextbest-always/Reward-sum/{rc}", "calls_per_s"),
            "calls/s",
            get(f"nextbest/Reward-sum/{rc}", "calls_per_s"),
            "interval",
            note=note(f"nextbest-always/Reward-sum/{rc}"),
        ),
    )


def quality_figures(
    suite: Suite,
    arms: dict[str, Arm],
    per_seed: dict[str, list[dict[str, Any]]],
    matched: float,
    seeds: Sequence[int],
) -> None:
    args = suite.args
    suite.data["quality"] = {
        "seeds": list(seeds),
        "rounds_per_seed": args.quality_rounds,
        "delay": args.quality_delay,
        "vw_args": DEFAULT_VW_ARGS,
        "nextbest_epsilon": Q_EPSILON,
        "vw_epsilon_matched": matched,
        "arms": {key: arm.summary() for key, arm in arms.items()},
        "per_seed": per_seed,
    }
    for key in ("vw", "vw_eps", "vw_delayed", "nb", "nb_delayed"):
        arm = arms.get(key)
        if arm is not None:
            suite.add(
                Figure(F5, arm.name, arm.progressive, "reward", note=f"expected {arm.expected:.4f}")
            )
    service, reference, twin = arms.get("service"), arms.get("vw"), arms.get("nb_delayed")
    if service is None:
        return
    if reference is not None:
        ratio = service.progressive / reference.progressive
        suite.add(
            Figure(
                F5,
                f"{service.name} vs raw VW learning at once",
                service.progressive,
                "reward",
                reference.progressive,
                "",
                f"ratio ≥ {TARGET_LEARNING_RATIO}",
                ratio >= TARGET_LEARNING_RATIO,
                f"expected {service.expected:.4f}: ratio "
                f"{service.expected / reference.expected:.3f}",
            )
        )
    if twin is not None:
        agree = service.agreement(twin)
        suite.data["quality"]["service_agreement_with_in_process_twin"] = agree
        suite.add(
            Figure(
                F5,
                f"{service.name} vs nextbest's model in process, {args.quality_delay} rounds "
                "late (the plumbing alone)",
                service.progressive,
                "reward",
                twin.progressive,
                note=f"same choice in {agree * 100:.2f}% of rounds",
            )
        )


async def memory_section(
    suite: Suite, pool: ServerPool, config: Path, floor_rss: dict[str, int | None]
) -> None:
    """A fresh server: RSS idle; after 1,000 warm-up decisions; after N more, all pending."""
    args = suite.args
    server = pool.start("nextbest-mem", ServeOptions("nextbest", config=str(config)))
    try:
        await asyncio.sleep(0.5)
        idle = server.rss_bytes()
        requests = make_requests(48, seed=17)
        size = args.batch_size
        warm = make_batches(requests, size, math.ceil(1000 / size))
        batches = make_batches(requests, size, math.ceil(args.memory_events / size))
        n = size * len(batches)
        progress(f"  deciding {n:,} events (10 min window, no rewards) …")
        async with connect(server) as stub:
            for b in warm:
                await stub.DecideBatch(b, timeout=CALL_TIMEOUT)
            warm_rss = server.rss_bytes()

            async def worker(w: int) -> None:
                for b in batches[w :: args.batch_concurrency]:
                    resp: pb.DecideBatchResponse = await stub.DecideBatch(b, timeout=CALL_TIMEOUT)
                    if any(r.WhichOneof("result") != "decision" for r in resp.results):
                        raise RuntimeError("a batch item failed")

            t0 = time.perf_counter()
            await asyncio.gather(*(worker(w) for w in range(args.batch_concurrency)))
            decide_s = time.perf_counter() - t0
        stats = server.stats()
        loaded = server.rss_bytes()
        pending = stats.get("pending_events")
    finally:
        pool.stop("nextbest-mem")
    if idle is None or warm_rss is None or loaded is None:
        raise RuntimeError("no /proc/PID/status: cannot read RSS here")
    per_event = (loaded - warm_rss) / n
    floor_idle = floor_rss.get("floor")
    suite.data["memory"] = {
        "rss_idle": idle,
        "rss_after_warmup": warm_rss,
        "rss_loaded": loaded,
        "events": n,
        "pending_after": pending,
        "bytes_per_pending_event": per_event,
        "floor_rss_idle": floor_idle,
        "decide_per_s": n / decide_s,
    }
    suite.add(
        Figure(
            F4,
            "server RSS, idle (fresh process)",
            float(idle),
            "MB",
            None if floor_idle is None else float(floor_idle),
            "gRPC floor idle",
        ),
        Figure(F4, "server RSS after 1,000 warm-up decisions", float(warm_rss), "MB"),
        Figure(
            F4,
            f"server RSS with {n:,} more pending events",
            float(loaded),
            "MB",
            note=f"pending {pending:,}" if isinstance(pending, int) else "",
        ),
        Figure(
            F4,
            "bytes per pending event = (RSS loaded − RSS warm) / N",
            per_event,
            "B",
            target=f"≤ {TARGET_BYTES_PER_PENDING:,.0f} B (1.5 KiB)",
            passed=per_event <= TARGET_BYTES_PER_PENDING,
        ),
    )


# -- main ---------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--quick", action="store_true", help="≈ 40 s: shorter phases, fewer events")
    p.add_argument("--seconds", type=float, help="measured seconds per RPC phase (2; quick 1)")
    p.add_argument("--warmup", type=float, help="unmeasured seconds before each (0.5; quick 0.3)")
    p.add_argument("--repeat", type=int, help="rounds of RPC phases, medians shown (3; quick 1)")
    p.add_argument("--batch-size", type=int, default=100, help="requests per DecideBatch")
    p.add_argument("--batch-concurrency", type=int, default=2, help="DecideBatch calls in flight")
    p.add_argument("--reward-concurrency", type=int, default=16, help="Reward calls in flight")
    p.add_argument("--vw-events", type=int, help="events per raw VW floor (15,000; quick 3,000)")
    p.add_argument("--learn-events", type=int, help="events per learning figure (20,000; 5,000)")
    p.add_argument("--memory-events", type=int, help="pending events measured (100,000; 30,000)")
    p.add_argument("--quality-rounds", type=int, help="rounds per seed (5,000; quick 2,000)")
    p.add_argument("--quality-seeds", type=int, help="seeds of the stream, pooled (3; quick 1)")
    p.add_argument("--quality-seed", type=int, default=1, help="the first seed")
    p.add_argument("--quality-delay", type=int, default=50, help="rewards sent K rounds late")
    p.add_argument("--data-root", type=Path, default=None, help="where temporary data dirs go")
    p.add_argument("--json", type=Path, default=None, metavar="FILE", help="write results here")
    p.add_argument("--plain", action="store_true", help="plain text, not rich")
    p.add_argument("--markdown", action="store_true", help="also print markdown tables")
    args = p.parse_args(argv)
    defaults = {
        "seconds": (2.0, 1.0),
        "warmup": (0.5, 0.3),
        "repeat": (3, 1),
        "vw_events": (15_000, 3_000),
        "learn_events": (20_000, 5_000),
        "memory_events": (100_000, 30_000),
        "quality_rounds": (5_000, 2_000),
        "quality_seeds": (3, 1),
    }
    for name, (full, quick) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    for name in (
        "seconds",
        "repeat",
        "batch_size",
        "batch_concurrency",
        "reward_concurrency",
        "vw_events",
        "learn_events",
        "memory_events",
        "quality_rounds",
        "quality_seeds",
    ):
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be positive")
    if args.warmup < 0 or args.quality_delay < 0:
        p.error("--warmup and --quality-delay must not be negative")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = load_average()
    started = time.perf_counter()
    date = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    try:
        suite = asyncio.run(run(args))
    except Exception as exc:  # it reports; it does not gate
        traceback.print_exc()
        print(f"the suite could not run: {type(exc).__name__}: {exc}")
        return 0
    host = host_info()
    results: dict[str, Any] = {
        "date": date,
        "host": host,
        "load_average": {"before": load_before, "after": load_average()},
        "wall_seconds": round(time.perf_counter() - started, 1),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "figures": [f.row() for f in suite.figures],
        "errors": suite.errors,
        **suite.data,
        "phases": [asdict(p) for p in suite.phases],
    }
    la = results["load_average"]
    print(
        f"nextbest benchmark suite, {date}: nproc={host['nproc']} ({host['cpu']}), "
        f"Python {host['python']}, grpcio {host['grpcio']}; git {host['git'] or 'n/a'}; "
        f"RPC phases: {args.repeat} round(s) of {args.seconds:g} s after {args.warmup:g} s "
        f"warm-up, medians shown; load average before {la['before']}, after {la['after']}; "
        f"{results['wall_seconds']:g} s in all"
    )
    tables = figure_tables(sorted(suite.figures, key=lambda f: f.section))
    if "summary" in suite.data:
        tables.append(
            phase_table(suite.data["summary"], "RPC phases (per call; CPU as a share of one core)")
        )
    render(tables, args.plain)
    q = suite.data.get("quality")
    if q is not None:
        k = len(Q_ACTIONS)
        print(
            f"Learning quality: seeds {q['seeds']} × {q['rounds_per_seed']:,} rounds, pooled; "
            f"{len(Q_INTENTS)} intents × {len(Q_PLANS)} plans (+ a distractor) × {k} actions; "
            f"vw_args '{q['vw_args']}'. nextbest's ε-greedy puts ε/(K−1) = "
            f"{Q_EPSILON / (k - 1):.4g} on each non-greedy action, VW's --epsilon e puts e/K: "
            f"--epsilon {q['vw_epsilon_matched']:.4g} gives the same pmf (the reference). "
            f"Round t's uniform is nextbest's seeded draw for the round's event id in every arm."
        )
    if args.markdown:
        render_markdown(tables, sys.stdout)
    for error in suite.errors:
        print(f"ERROR {error}")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2, allow_nan=True) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
