"""Section 1, the floors every nextbest figure is read against.

In this process: VW alone on support.next_step's decisions, through pyvw's Python layer and
through the service's own `Model` (`costs` and `learn`: the pylibvw fast path the engine
scores and learns with), so a change to that path moves this floor with it. Over gRPC: the
bare floor server under the same load as nextbest (its phases are decide's and rewards').
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

import vowpalwabbit
from lib.suite import Section, Suite
from lib.tables import FLOORS, Figure
from lib.traffic import DEFAULT_CONFIG, POLICY, make_requests

# Typed under the repo-wide `mypy`; `mypy` on one bench file sees the editable install,
# which has no py.typed marker: hence the tolerant ignores.
from nextbest.api import convert  # type: ignore[import-untyped, unused-ignore]
from nextbest.policy.config import load_config  # type: ignore[import-untyped, unused-ignore]
from nextbest.policy.engine import PolicyRuntime  # type: ignore[import-untyped, unused-ignore]
from nextbest.policy.features import (  # type: ignore[import-untyped, unused-ignore]
    labelled,
    shared_line,
)
from nextbest.policy.vw_args import scorer_args  # type: ignore[import-untyped, unused-ignore]

Labelled = tuple[list[str], int, float, float]  # lines, chosen, cost, probability


def section() -> Section:
    """Raw VW before any server starts; the gRPC floor's figures from the shared rounds."""
    return Section(in_process=_raw_vw, figures=_grpc_floor)


def _raw_vw(suite: Suite) -> None:
    with suite.section("raw VW floors (in process)"):
        raw = raw_vw_floors(suite.args.vw_events)
        suite.data["raw_vw"] = raw
        for name, value in raw.items():
            suite.add(Figure(FLOORS, f"raw VW {name}, 4 actions (in process)", value, "events/s"))


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


def examples(runtime: PolicyRuntime) -> list[list[str]]:
    """The VW lines the engine scores for the 48 requests: each request converted as the
    servicer does, its shared line, and the policy's catalog lines as the engine caches them."""
    actions = [a.line for a in runtime.catalog.values()]
    out = []
    for req in make_requests(48):
        decided = convert.decide_input(req)
        out.append([shared_line(decided.intent, decided.context), *actions])
    return out


def raw_vw_floors(n: int) -> dict[str, float]:
    """Events per second: pyvw predict + learn; the policy's Model predict + learn, predict
    only, learn only (named "pylibvw …": the path Model takes)."""
    runtime = PolicyRuntime(POLICY, load_config(DEFAULT_CONFIG).policies[POLICY])
    model = runtime.model
    lines = examples(runtime)
    k = len(lines[0]) - 1

    def label(i: int) -> Labelled:
        return lines[i % len(lines)], i % k, -1.0 if i % 3 == 0 else 0.0, 1.0 / k

    def predict(i: int) -> list[float]:
        costs: list[float] = model.costs(lines[i % len(lines)])
        return costs

    def learn(i: int) -> None:
        model.learn(*label(i))

    def both(i: int) -> None:
        predict(i)
        learn(i)

    try:
        out = {"pyvw predict+learn": _pyvw_rate(runtime.config.vw_args, label, n)}
        out["pylibvw predict+learn"] = rate(both, n)
        out["pylibvw predict"] = rate(predict, n)
        out["pylibvw learn"] = rate(learn, n)
    finally:
        model.close()
    return out


def _pyvw_rate(vw_args: str, label: Callable[[int], Labelled], n: int) -> float:
    """pyvw's own predict and learn, which wrap every line in a Python `Example`: what the
    Model's fast path saves."""
    ws = vowpalwabbit.Workspace(scorer_args(vw_args))
    try:

        def step(i: int) -> None:
            lines, chosen, cost, p = label(i)
            ws.predict(lines)
            ws.learn(labelled(lines, chosen, cost, p))

        return rate(step, n)
    finally:
        ws.finish()


def _grpc_floor(suite: Suite) -> list[Figure]:
    """The floor server's own figures, from the phases decide and rewards ran on it."""
    if "summary" not in suite.data:
        return []
    args, m = suite.args, suite.median
    batch = f"b{args.batch_size}xc{args.batch_concurrency}"
    return [
        Figure(FLOORS, "gRPC floor Decide p50, c=1", m("floor/Decide/c1", "p50_ms"), "ms"),
        Figure(FLOORS, "gRPC floor Decide p99, c=1", m("floor/Decide/c1", "p99_ms"), "ms"),
        Figure(FLOORS, "gRPC floor Decide, c=16", m("floor/Decide/c16", "calls_per_s"), "calls/s"),
        Figure(FLOORS, "gRPC floor Decide, c=64", m("floor/Decide/c64", "calls_per_s"), "calls/s"),
        Figure(
            FLOORS,
            f"gRPC floor DecideBatch, {args.batch_size} per call, c={args.batch_concurrency}",
            m(f"floor/DecideBatch/{batch}", "decisions_per_s"),
            "decisions/s",
        ),
        Figure(
            FLOORS,
            f"gRPC floor Reward, c={args.reward_concurrency}",
            m(f"floor/Reward/c{args.reward_concurrency}", "calls_per_s"),
            "calls/s",
        ),
    ]


# Run alone, with run.py's flags: this section and the decide and rewards phases that its
# gRPC floor figures read.
if __name__ == "__main__":
    import run

    sys.exit(run.main(only=("floors", "decide", "rewards")))
