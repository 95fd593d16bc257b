"""Section 2's Decide figures: Decide at c=1 (p50, p99), c=16 and c=64, and DecideBatch, on
support.next_step, each against the floor server under the same load; and the same Decide
c=16 on nextbest-always, which section 3 (durability) reads.

support.next_step waits 10 minutes for rewards and none is sent, so every decision stays
pending: later phases run against a bigger store than earlier ones, on every server alike.
"""

from __future__ import annotations

import functools
import sys

from lib.load import batch_call, decide_call
from lib.suite import Calls, Section, Step, Suite, every_round
from lib.tables import NEXTBEST, Figure, per_round
from lib.targets import BATCH_DECISIONS, P50_OVERHEAD_MS, THROUGHPUT_RATIO
from lib.traffic import make_batches, make_requests


def section() -> Section:
    """Its phases run in the shared rounds; its figures read their medians."""
    return Section(steps=_steps, figures=_figures)


async def _steps(suite: Suite) -> list[Step]:
    """Floor first, then nextbest (then nextbest-always) for each shape."""
    args = suite.args
    requests = make_requests(48)
    batches = make_batches(requests, args.batch_size, 16)
    decide = every_round(Calls(functools.partial(decide_call, requests=requests), len(requests)))
    batch = every_round(Calls(functools.partial(batch_call, batches=batches), len(batches)))
    bc, size = args.batch_concurrency, args.batch_size
    return [
        Step("floor", "Decide", 1, decide),
        Step("nextbest", "Decide", 1, decide),
        Step("floor", "Decide", 16, decide),
        Step("nextbest", "Decide", 16, decide),
        Step("nextbest-always", "Decide", 16, decide),
        Step("floor", "Decide", 64, decide),
        Step("nextbest", "Decide", 64, decide),
        Step("floor", "DecideBatch", bc, batch, size),
        Step("nextbest", "DecideBatch", bc, batch, size),
    ]


def _figures(suite: Suite) -> list[Figure]:
    if "summary" not in suite.data:
        return []
    m = suite.median
    return [
        _p50(suite),
        Figure(
            NEXTBEST,
            "Decide p99, c=1",
            m("nextbest/Decide/c1", "p99_ms"),
            "ms",
            m("floor/Decide/c1", "p99_ms"),
        ),
        _throughput(suite),
        Figure(
            NEXTBEST,
            "Decide throughput, c=64",
            m("nextbest/Decide/c64", "calls_per_s"),
            "calls/s",
            m("floor/Decide/c64", "calls_per_s"),
        ),
        _batch(suite),
    ]


def _p50(suite: Suite) -> Figure:
    """Target: what nextbest adds to an unloaded call, ≤ floor + 0.25 ms."""
    p50 = suite.median("nextbest/Decide/c1", "p50_ms")
    floor = suite.median("floor/Decide/c1", "p50_ms")
    rounds = [
        a - b
        for a, b in zip(
            suite.per_round("nextbest/Decide/c1", "p50_ms"),
            suite.per_round("floor/Decide/c1", "p50_ms"),
            strict=False,
        )
    ]
    notes = (f"floor +{p50 - floor:.3f} ms", per_round(rounds, "+.3f"))
    return Figure(
        NEXTBEST,
        "Decide p50, c=1",
        p50,
        "ms",
        floor,
        "",
        f"≤ floor + {P50_OVERHEAD_MS} ms",
        p50 - floor <= P50_OVERHEAD_MS,
        "; ".join(x for x in notes if x),
    )


def _throughput(suite: Suite) -> Figure:
    """Target: at least 0.8 of the calls per second that bare gRPC serves at c=16."""
    c16 = suite.median("nextbest/Decide/c16", "calls_per_s")
    floor = suite.median("floor/Decide/c16", "calls_per_s")
    rounds = [
        a / b
        for a, b in zip(
            suite.per_round("nextbest/Decide/c16", "calls_per_s"),
            suite.per_round("floor/Decide/c16", "calls_per_s"),
            strict=False,
        )
    ]
    return Figure(
        NEXTBEST,
        "Decide throughput, c=16",
        c16,
        "calls/s",
        floor,
        "",
        f"ratio ≥ {THROUGHPUT_RATIO}",
        c16 / floor >= THROUGHPUT_RATIO,
        per_round(rounds, ".2f"),
    )


def _batch(suite: Suite) -> Figure:
    """Target: 25,000 decisions/s in batches, for offline or agent fan-out use."""
    args = suite.args
    key = f"b{args.batch_size}xc{args.batch_concurrency}"
    batch = suite.median(f"nextbest/DecideBatch/{key}", "decisions_per_s")
    return Figure(
        NEXTBEST,
        f"DecideBatch, {args.batch_size} per call, c={args.batch_concurrency}",
        batch,
        "decisions/s",
        suite.median(f"floor/DecideBatch/{key}", "decisions_per_s"),
        "",
        f"≥ {BATCH_DECISIONS:,.0f}/s",
        batch >= BATCH_DECISIONS,
        per_round(suite.per_round(f"nextbest/DecideBatch/{key}", "decisions_per_s"), ",.0f"),
    )


if __name__ == "__main__":  # this section alone, with run.py's flags
    import run

    sys.exit(run.main(only=("decide",)))
