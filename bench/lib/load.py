"""The load generator: N coroutines calling one server over one grpc.aio channel, timed
with time.perf_counter, after an unmeasured warm-up; and the medians over rounds.

Every loop is bounded: by time, by a call cap, by errors per worker, or by a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from lib.processes import ServerProcess, connect
from nextbest_client.v1 import decision_pb2 as pb

CALL_TIMEOUT = 10.0  # seconds: a call slower than this is counted as an error
MAX_ERRORS_PER_WORKER = 100  # a worker that keeps failing stops early (a dead server)

Call = Callable[[int], Awaitable[int]]  # (item index) → decisions (or rewards) made


def decide_call(stub: Any, requests: Sequence[pb.DecideRequest]) -> Call:
    async def call(i: int) -> int:
        resp: pb.DecideResponse = await stub.Decide(requests[i], timeout=CALL_TIMEOUT)
        if not resp.action_id:
            raise ValueError("a Decide response without action_id")
        return 1

    return call


def batch_call(stub: Any, batches: Sequence[pb.DecideBatchRequest]) -> Call:
    async def call(i: int) -> int:
        resp: pb.DecideBatchResponse = await stub.DecideBatch(batches[i], timeout=CALL_TIMEOUT)
        made = sum(1 for r in resp.results if r.WhichOneof("result") == "decision")
        if made != len(batches[i].requests):
            raise ValueError(f"{len(batches[i].requests) - made} batch items failed")
        return made

    return call


def reward_call(stub: Any, rewards: Sequence[pb.RewardRequest]) -> Call:
    async def call(i: int) -> int:
        resp: pb.RewardResponse = await stub.Reward(rewards[i], timeout=CALL_TIMEOUT)
        if resp.status != pb.REWARD_STATUS_ACCEPTED:
            raise ValueError(f"reward status {resp.status}, not ACCEPTED")
        return 1

    return call


@dataclass(frozen=True)
class Timing:
    """How long a phase runs: warm-up (not measured), then measured seconds; a call cap."""

    warmup: float
    seconds: float
    max_calls: int = 1_000_000


@dataclass
class Phase:
    """One measured phase: a server, an RPC, a concurrency."""

    key: str
    server: str
    rpc: str
    concurrency: int
    batch: int
    round: int
    seconds: float
    calls: int
    decisions: int
    errors: int
    calls_per_s: float
    decisions_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    client_cpu: float  # share of one core used by this process while measuring
    server_cpu: float | None  # share of one core used by the server process
    gc_full: int | None = None  # the server's generation-2 collections during the phase
    gc_pause_max_ms: float | None = None  # its longest collection (any generation)
    gc_pause_total_ms: float | None = None
    pending_events: int | None = None  # nextbest's pending joins after the phase
    error_sample: str = ""
    exhausted: bool = False  # every worker hit its call cap (ran out of items) before the end


def timed(fn: Callable[[int], object], n: int) -> float:
    """In-process µs per call of `fn(i)`: median of 3 chunks of n calls, after 500 warm-up calls."""
    for i in range(500):
        fn(i)
    chunks = []
    for _ in range(3):
        t0 = time.perf_counter()
        for i in range(n):
            fn(i)
        chunks.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(chunks)


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted values (q in [0, 1])."""
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


@dataclass
class Driven:
    latencies: list[float]  # seconds, of the calls that started after the warm-up
    decisions: int
    errors: int
    span: float  # measured wall time
    client_cpu: float
    server_cpu: float | None
    error_sample: str
    exhausted: bool


@dataclass
class _Tally:
    """What one drive's workers count; shared by them (one event loop: no locks)."""

    measure_from: float
    end: float
    latencies: list[list[float]]  # per worker
    last_done: float
    decisions: int = 0
    errors: int = 0
    capped: int = 0
    error_sample: str = ""


async def _worker(
    tally: _Tally, w: int, call: Call, n_items: int, concurrency: int, max_calls: int
) -> None:
    """Call items w, w + concurrency, w + 2·concurrency, … (mod n_items) until the window
    ends, the call cap, or MAX_ERRORS_PER_WORKER errors; time those started after warm-up."""
    mine = tally.latencies[w]
    measure_from, end = tally.measure_from, tally.end
    index = w
    failed = 0
    for _ in range(max_calls):
        t0 = time.perf_counter()
        if t0 >= end:
            break
        try:
            made = await call(index % n_items)
        except (grpc.aio.AioRpcError, ValueError) as exc:
            tally.errors += 1
            failed += 1
            tally.error_sample = tally.error_sample or str(exc)[:200]
            if failed >= MAX_ERRORS_PER_WORKER:
                break
            continue
        finally:
            index += concurrency
        t1 = time.perf_counter()
        if t0 >= measure_from:
            mine.append(t1 - t0)
            tally.decisions += made
            tally.last_done = max(tally.last_done, t1)
    else:
        tally.capped += 1


async def drive(
    call: Call,
    n_items: int,
    concurrency: int,
    timing: Timing,
    server: ServerProcess,
) -> Driven:
    """Run `concurrency` loops of calls; measure those that start after the warm-up, and
    this process's and the server's CPU over the measured window."""
    t_start = time.perf_counter()
    measure_from = t_start + timing.warmup
    tally = _Tally(
        measure_from, measure_from + timing.seconds, [[] for _ in range(concurrency)], measure_from
    )
    cpu_mark: list[tuple[float, float, float | None]] = []

    async def mark() -> None:
        await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
        cpu_mark.append((time.perf_counter(), time.process_time(), server.cpu_seconds()))

    marker = asyncio.create_task(mark())
    await asyncio.wait_for(
        asyncio.gather(
            *(
                _worker(tally, w, call, n_items, concurrency, timing.max_calls)
                for w in range(concurrency)
            )
        ),
        timeout=timing.warmup + timing.seconds + CALL_TIMEOUT + 5.0,
    )
    if not cpu_mark:  # every worker finished before the warm-up ended: nothing measured
        marker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await marker
        cpu_mark.append((time.perf_counter(), time.process_time(), server.cpu_seconds()))
    else:
        await marker
    wall_end, cpu_end, server_end = time.perf_counter(), time.process_time(), server.cpu_seconds()
    wall_start, cpu_start, server_start = cpu_mark[0]
    span = max(wall_end - wall_start, 1e-9)
    server_share = (
        (server_end - server_start) / span
        if server_end is not None and server_start is not None
        else None
    )
    return Driven(
        latencies=[x for part in tally.latencies for x in part],
        decisions=tally.decisions,
        errors=tally.errors,
        span=max(tally.last_done - measure_from, 1e-9),
        client_cpu=(cpu_end - cpu_start) / span,
        server_cpu=server_share,
        error_sample=tally.error_sample,
        exhausted=tally.capped == concurrency,
    )


async def run_phase(
    server: ServerProcess,
    method: str,
    concurrency: int,
    timing: Timing,
    make_call: Callable[[Any], Call],
    n_items: int,
    *,
    batch: int = 1,
    round_no: int = 0,
) -> Phase:
    """Measure one phase: `make_call(stub)` makes the call; `method` names it in the key."""
    async with connect(server) as stub:
        call = make_call(stub)
        before = server.stats()  # also resets the server's per-phase GC maxima
        d = await drive(call, n_items, concurrency, timing, server)
        after = server.stats()
    lat = sorted(d.latencies)
    conc = f"b{batch}xc{concurrency}" if batch > 1 else f"c{concurrency}"
    return Phase(
        key=f"{server.name}/{method}/{conc}",
        server=server.name,
        rpc=method,
        concurrency=concurrency,
        batch=batch,
        round=round_no,
        seconds=d.span,
        calls=len(lat),
        decisions=d.decisions,
        errors=d.errors,
        calls_per_s=len(lat) / d.span,
        decisions_per_s=d.decisions / d.span,
        p50_ms=percentile(lat, 0.50) * 1e3,
        p90_ms=percentile(lat, 0.90) * 1e3,
        p99_ms=percentile(lat, 0.99) * 1e3,
        mean_ms=(statistics.fmean(lat) * 1e3) if lat else math.nan,
        max_ms=(lat[-1] * 1e3) if lat else math.nan,
        client_cpu=d.client_cpu,
        server_cpu=d.server_cpu,
        **gc_delta(before, after),
        error_sample=d.error_sample,
        exhausted=d.exhausted,
    )


def gc_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The server's GC during a phase (warm-up included), from two stats snapshots."""
    if not before or not after:
        return {}
    return {
        "gc_full": after["gc_count"][2] - before["gc_count"][2],
        "gc_pause_max_ms": max(after["gc_max_s"]) * 1e3,
        "gc_pause_total_ms": (sum(after["gc_total_s"]) - sum(before["gc_total_s"])) * 1e3,
        "pending_events": after.get("pending_events"),
    }


async def sample_sizes(
    server: ServerProcess, requests: Sequence[pb.DecideRequest]
) -> dict[str, Any]:
    """One real Decide per request: response sizes and shapes, to compare with the floor's."""
    sizes: list[int] = []
    shapes: dict[str, int] = {}
    async with connect(server) as stub:
        for req in requests:
            resp: pb.DecideResponse = await stub.Decide(req, timeout=CALL_TIMEOUT)
            sizes.append(resp.ByteSize())
            shape = f"{len(resp.ranking)} ranked, {len(resp.masked)} masked"
            shapes[shape] = shapes.get(shape, 0) + 1
    return {
        "request_bytes_mean": statistics.fmean(r.ByteSize() for r in requests),
        "nextbest_response_bytes_mean": statistics.fmean(sizes),
        "nextbest_response_bytes_max": max(sizes),
        "nextbest_response_shapes": shapes,
    }


# Metrics every phase has, and those read from the server, which may not answer (None).
_MEDIANS = (
    "calls_per_s",
    "decisions_per_s",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "mean_ms",
    "max_ms",
    "client_cpu",
)
_SERVER_MEDIANS = ("server_cpu", "gc_pause_max_ms", "gc_pause_total_ms", "gc_full")


def summarize(phases: Sequence[Phase]) -> dict[str, dict[str, Any]]:
    """Per phase key, each metric's median over rounds (one round: the values themselves)."""
    grouped: dict[str, list[Phase]] = {}
    for p in phases:
        grouped.setdefault(p.key, []).append(p)
    out: dict[str, dict[str, Any]] = {}
    for key, group in grouped.items():
        first = group[0]
        row: dict[str, Any] = {
            "server": first.server,
            "rpc": first.rpc,
            "concurrency": first.concurrency,
            "batch": first.batch,
            "rounds": len(group),
        }
        for metric in _MEDIANS:
            row[metric] = statistics.median(getattr(p, metric) for p in group)
        for metric in _SERVER_MEDIANS:
            known = [getattr(p, metric) for p in group if getattr(p, metric) is not None]
            row[metric] = statistics.median(known) if known else None
        row["pending_events"] = group[-1].pending_events
        row["errors"] = sum(p.errors for p in group)
        row["calls"] = sum(p.calls for p in group)
        row["exhausted"] = any(p.exhausted for p in group)
        out[key] = row
    return out
