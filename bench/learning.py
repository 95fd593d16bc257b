"""Section 2's learning figures: how fast nextbest closes joins and learns them, on
`bench.learn` (support.next_step with a 200 ms window; no rewards: the default is learned).

In process: Engine.decide N events with a fake clock, then move the clock past their
windows and call Engine.settle_due (1,000 a call, as the join clock does) until none is due:
aggregate, write the DSJSON line, learn, metrics. Through the server: N events decided with
DecideBatch, timed until the server's learned count (read over the control pipe) reaches N.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from lib.load import CALL_TIMEOUT
from lib.processes import ServerProcess, connect
from lib.suite import Section, Suite, reward_variant
from lib.tables import NEXTBEST, Figure
from lib.traffic import make_batches, make_requests

# Typed under the repo-wide `mypy`; `mypy` on one bench file sees the editable install,
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
from nextbest.policy.ports import run_now  # type: ignore[import-untyped, unused-ignore]
from nextbest.store import codec  # type: ignore[import-untyped, unused-ignore]
from nextbest.store.durable import (  # type: ignore[import-untyped, unused-ignore]
    Durability,
    open_store,
)

LEARN_POLICY = "bench.learn"  # support.next_step with a 200 ms window
LEARN_WAIT = 0.2
LEARN_TIMEOUT = 120.0  # seconds to wait for the server to learn the decided events


def section() -> Section:
    """In process before the servers start; through `nextbest` after the shared rounds."""
    return Section(
        policies=_policies, in_process=_in_process, after=_through_server, figures=_figures
    )


def _policies(args: argparse.Namespace, base: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {LEARN_POLICY: reward_variant(base, wait=f"{LEARN_WAIT * 1000:.0f}ms")}


def _in_process(suite: Suite) -> None:
    raw = suite.data.get("raw_vw", {})
    with suite.section("learning in process (Engine.settle_due)"):
        inproc = learn_in_process(
            suite.config, suite.pool.root / "data-inprocess", suite.args.learn_events
        )
        suite.data["learning_in_process"] = inproc
        suite.add(
            Figure(
                NEXTBEST,
                "Engine.decide, in process",
                inproc["decide_per_s"],
                "events/s",
                raw.get("pylibvw predict"),
                "raw predict",
            ),
            Figure(
                NEXTBEST,
                f"learning in process: Engine.settle_due, {inproc['learned']:,} due events",
                inproc["close_per_s"],
                "events/s",
                raw.get("pylibvw learn"),
                "raw learn",
            ),
        )


def learn_in_process(config_path: Path, data_dir: Path, n: int) -> dict[str, float]:
    """Engine.decide N events of LEARN_POLICY, then Engine.settle_due over all of them once due
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
            if run_now(engine.settle_due(limit=1000)) == 0:
                break
        close_s = time.perf_counter() - t0
        learned = models[LEARN_POLICY].learned - learned_before
    finally:
        engine.shutdown()
        store.shutdown()
    return {
        "events": n + len(sizes),
        "learned": learned,
        "decide_per_s": n / decide_s,
        "close_per_s": learned / close_s,
        "encoded_event_bytes_mean": statistics.fmean(sizes),
    }


async def _through_server(suite: Suite) -> None:
    with suite.section("learning through the server"):
        suite.data["learning_service"] = await learn_through_server(
            suite.pool["nextbest"], suite.args.learn_events, suite.args.batch_size
        )


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


def _figures(suite: Suite) -> list[Figure]:
    ls = suite.data.get("learning_service")
    if ls is None:
        return []
    return [
        Figure(
            NEXTBEST,
            f"learning through the server: {ls['learned']:,} decided, "
            f"{LEARN_WAIT * 1000:.0f} ms window, no rewards",
            ls["per_s"],
            "events/s",
            suite.data.get("raw_vw", {}).get("pylibvw predict+learn"),
            "raw predict+learn",
            note=f"all learned {ls['drain_after_window_s'] * 1000:.0f} ms after the last "
            "window ended",
        )
    ]


# Run alone, with run.py's flags (the raw VW floors it is compared with are left blank).
if __name__ == "__main__":
    import run

    sys.exit(run.main(only=("learning",)))
