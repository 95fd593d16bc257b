"""Section 4, memory: what a pending event costs in server RSS (VmRSS from /proc).

A fresh server, started after the others have stopped so nothing else runs: its RSS idle
(0.5 s after start), after 1,000 warm-up decisions, and after N more (all pending: 10 min
window, no rewards; DecideBatch, 2 in flight). Bytes per pending event = (RSS loaded − RSS
after warm-up) ÷ N, so one-time allocations (VW buffers, gRPC, metric children) do not
count. The idle RSS is compared with the floor server's.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from dataclasses import asdict, dataclass

from lib.load import CALL_TIMEOUT
from lib.processes import ServerProcess, connect
from lib.serve import ServeOptions
from lib.suite import Section, Suite, progress
from lib.tables import MEMORY, Figure
from lib.targets import BYTES_PER_PENDING
from lib.traffic import make_batches, make_requests

from nextbest_client.v1 import decision_pb2 as pb


def section() -> Section:
    """It runs alone, once every other server has stopped."""
    return Section(alone=_alone)


@dataclass
class Measured:
    rss_idle: int
    rss_after_warmup: int
    rss_loaded: int
    events: int
    pending_after: int | None
    decide_s: float


async def _alone(suite: Suite) -> None:
    with suite.section("memory"):
        server = suite.pool.start(
            "nextbest-mem", ServeOptions("nextbest", config=str(suite.config))
        )
        try:
            m = await measure(
                server,
                suite.args.memory_events,
                suite.args.batch_size,
                suite.args.batch_concurrency,
            )
        finally:
            suite.pool.stop("nextbest-mem")
        floor_idle = suite.data.get("idle_rss", {}).get("floor")
        per_event = (m.rss_loaded - m.rss_after_warmup) / m.events
        suite.data["memory"] = {
            **{k: v for k, v in asdict(m).items() if k != "decide_s"},
            "bytes_per_pending_event": per_event,
            "floor_rss_idle": floor_idle,
            "decide_per_s": m.events / m.decide_s,
        }
        suite.add(*_figures(m, per_event, floor_idle))


async def measure(server: ServerProcess, n: int, size: int, in_flight: int) -> Measured:
    """RSS idle, after 1,000 warm-up decisions, and after about n more, all pending."""
    await asyncio.sleep(0.5)
    idle = server.rss_bytes()
    requests = make_requests(48, seed=17)
    warm = make_batches(requests, size, math.ceil(1000 / size))
    batches = make_batches(requests, size, math.ceil(n / size))
    n = size * len(batches)
    progress(f"  deciding {n:,} events (10 min window, no rewards) …")
    async with connect(server) as stub:
        for b in warm:
            await stub.DecideBatch(b, timeout=CALL_TIMEOUT)
        warm_rss = server.rss_bytes()

        async def worker(w: int) -> None:
            for b in batches[w::in_flight]:
                resp: pb.DecideBatchResponse = await stub.DecideBatch(b, timeout=CALL_TIMEOUT)
                if any(r.WhichOneof("result") != "decision" for r in resp.results):
                    raise RuntimeError("a batch item failed")

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(in_flight)))
        decide_s = time.perf_counter() - t0
    pending = server.stats().get("pending_events")
    loaded = server.rss_bytes()
    if idle is None or warm_rss is None or loaded is None:
        raise RuntimeError("no /proc/PID/status: cannot read RSS here")
    return Measured(idle, warm_rss, loaded, n, pending, decide_s)


def _figures(m: Measured, per_event: float, floor_idle: int | None) -> list[Figure]:
    return [
        Figure(
            MEMORY,
            "server RSS, idle (fresh process)",
            float(m.rss_idle),
            "MB",
            None if floor_idle is None else float(floor_idle),
            "gRPC floor idle",
        ),
        Figure(MEMORY, "server RSS after 1,000 warm-up decisions", float(m.rss_after_warmup), "MB"),
        Figure(
            MEMORY,
            f"server RSS with {m.events:,} more pending events",
            float(m.rss_loaded),
            "MB",
            note=f"pending {m.pending_after:,}" if isinstance(m.pending_after, int) else "",
        ),
        Figure(
            MEMORY,
            "bytes per pending event = (RSS loaded − RSS warm) / N",
            per_event,
            "B",
            target=f"≤ {BYTES_PER_PENDING:,.0f} B (1.5 KiB)",
            passed=per_event <= BYTES_PER_PENDING,
        ),
    ]


if __name__ == "__main__":  # this section alone, with run.py's flags
    import run

    sys.exit(run.main(only=("memory",)))
