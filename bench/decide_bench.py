"""Decide latency and throughput: nextbest against a bare grpc.aio floor, on this machine.

Run on demand (it is not a test, and it never fails the build):

    .venv/bin/python bench/decide_bench.py [--seconds 3] [--json results.json]

Each server runs in its own process (multiprocessing, spawn), bound to 127.0.0.1 on a port
the OS picks, so the load generator here does not share a GIL with the server:

- the floor: a grpc.aio DecisionService whose Decide returns one fixed DecideResponse (4
  ranked actions, 1 masked, an event id, versions): what gRPC + protobuf cost in Python;
- nextbest: `nextbest.api.server.Server` on examples/support.yaml, logging at warning;
- nextbest logging every decision at info level into /dev/null (skip: --no-info-logging).

The load generator is one grpc.aio channel per phase, N coroutines each calling in a loop for
a fixed time after a warm-up, timing each call with time.perf_counter. Every server gets the
same request messages. Targets are printed as PASS/MISS; the exit status is always 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import datetime as dt
import gc
import io
import json
import math
import multiprocessing
import os
import platform
import pstats
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import grpc
from google.protobuf import __version__ as protobuf_version

from nextbest_client.v1 import decision_pb2 as pb
from nextbest_client.v1 import decision_pb2_grpc as rpc

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "examples" / "support.yaml"
POLICY = "support.next_step"
INTENTS = ("billing_dispute", "refund_request", "login_problem")
PLANS = ("free", "pro", "team", "enterprise")
CHANNELS = ("chat", "email", "voice", "web")
CALL_TIMEOUT = 10.0  # seconds: a call slower than this is counted as an error
START_TIMEOUT = 60.0  # seconds a server process gets to report its port
STOP_TIMEOUT = 20.0  # seconds a server process gets to stop before it is terminated
MAX_ERRORS_PER_WORKER = 100  # a worker that keeps failing stops early (a dead server)

# The targets (see targets()): reported as PASS/MISS, never enforced.
TARGET_THROUGHPUT_RATIO = 0.8
TARGET_P50_OVERHEAD_MS = 0.25
TARGET_BATCH_DECISIONS = 25_000.0


# -- the servers (each in its own process) ----------------------------------------------------


@dataclass(frozen=True)
class ServeOptions:
    """What a server process needs; pickled to the child (spawn)."""

    kind: str  # "floor" or "nextbest"
    config: str = str(DEFAULT_CONFIG)
    log_level: str = "warning"
    log_to_devnull: bool = False
    floor_response: bytes = b""
    profile: str = ""  # a path: profile the server's event-loop thread, dump pstats there


class FloorServicer(rpc.DecisionServiceServicer):
    """No work: the same prebuilt response for every Decide (and every batch item)."""

    def __init__(self, response: pb.DecideResponse) -> None:
        self.response = response
        self._batches: dict[int, pb.DecideBatchResponse] = {}

    async def Decide(self, request: pb.DecideRequest, context: Any) -> pb.DecideResponse:
        return self.response

    async def DecideBatch(
        self, request: pb.DecideBatchRequest, context: Any
    ) -> pb.DecideBatchResponse:
        n = len(request.requests)
        found = self._batches.get(n)
        if found is None:
            item = pb.DecideBatchResult(decision=self.response)
            found = self._batches[n] = pb.DecideBatchResponse(results=[item] * n)
        return found

    async def Reward(self, request: pb.RewardRequest, context: Any) -> pb.RewardResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the floor serves Decide only")
        raise AssertionError("unreachable: abort raises")

    async def Activate(self, request: pb.ActivateRequest, context: Any) -> pb.ActivateResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the floor serves Decide only")
        raise AssertionError("unreachable: abort raises")

    async def Explain(self, request: pb.ExplainRequest, context: Any) -> pb.ExplainResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the floor serves Decide only")
        raise AssertionError("unreachable: abort raises")


def floor_response() -> pb.DecideResponse:
    """A response shaped like a real support.next_step decision: 4 ranked, 1 masked."""
    return pb.DecideResponse(
        event_id=uuid.uuid4().hex,
        action_id="ask_details",
        probability=0.9333333333333333,
        explored=False,
        fallback=False,
        ranking=[
            pb.RankedAction(
                action_id="ask_details", probability=0.9333333333333333, score=0.018375396728515625
            ),
            pb.RankedAction(
                action_id="transfer_billing",
                probability=0.03333333333333333,
                score=-0.0071258544921875,
            ),
            pb.RankedAction(
                action_id="escalate_human", probability=0.03333333333333333, score=-0.012451171875
            ),
            pb.RankedAction(action_id="offer_refund", probability=0.0, score=-0.0242767333984375),
        ],
        masked=[
            pb.MaskedAction(
                action_id="offer_refund",
                reason="refunds need 30 days of tenure and at most 200",
                rule="refund_limits",
            ),
        ],
        model_version="0",
        config_version="0123456789ab",
        epsilon=0.1,
    )


def server_main(opts: ServeOptions, conn: Connection) -> None:
    """The child process: serve until the parent says stop (or goes away)."""
    with contextlib.ExitStack() as stack:
        stream: BinaryIO | None = None
        if opts.log_to_devnull:
            stream = stack.enter_context(open(os.devnull, "wb"))
        try:
            asyncio.run(_serve(opts, conn, stream))
        except Exception as exc:  # tell the parent instead of leaving it waiting
            with contextlib.suppress(OSError):
                conn.send(("error", f"{type(exc).__name__}: {exc}"))
            raise


class GcWatch:
    """gc.callbacks hook: collections and pause times per generation, in the server process.

    The maxima are since the last snapshot, so the parent reads them per phase.
    """

    def __init__(self) -> None:
        self.count = [0, 0, 0]
        self.total = [0.0, 0.0, 0.0]
        self.max = [0.0, 0.0, 0.0]
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        gen = info["generation"]
        pause = time.perf_counter() - self._started
        self.count[gen] += 1
        self.total[gen] += pause
        self.max[gen] = max(self.max[gen], pause)

    def snapshot(self) -> dict[str, Any]:
        out = {
            "gc_count": list(self.count),
            "gc_total_s": list(self.total),
            "gc_max_s": list(self.max),
        }
        self.max = [0.0, 0.0, 0.0]
        return out


async def _serve(opts: ServeOptions, conn: Connection, stream: BinaryIO | None) -> None:
    """Serve; answer "stats" on the pipe; stop on "stop" or when the parent goes away."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    watch = GcWatch()
    gc.callbacks.append(watch)
    pending: Callable[[], int] = lambda: 0  # noqa: E731

    def on_message() -> None:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the parent died: do not outlive it
            message = "stop"
        if message == "stats":
            conn.send(("stats", {**watch.snapshot(), "pending_events": pending()}))
        else:
            loop.remove_reader(conn.fileno())
            stopping.set()

    profiler = cProfile.Profile() if opts.profile else None
    if opts.kind == "floor":
        server = grpc.aio.server()
        response = pb.DecideResponse.FromString(opts.floor_response)
        rpc.add_DecisionServiceServicer_to_server(  # type: ignore[no-untyped-call, unused-ignore]
            FloorServicer(response), server
        )
        port = server.add_insecure_port("127.0.0.1:0")
        if port == 0:
            raise OSError("cannot bind 127.0.0.1")
        await server.start()
        loop.add_reader(conn.fileno(), on_message)
        conn.send(("ready", port))
        await stopping.wait()
        await server.stop(1.0)
    else:
        # Typed under the repo-wide `mypy`; `mypy bench/decide_bench.py` alone sees the
        # editable install, which has no py.typed marker: hence the tolerant ignores.
        from nextbest.api.server import Server  # type: ignore[import-untyped, unused-ignore]
        from nextbest.observability.logging import (  # type: ignore[import-untyped, unused-ignore]
            configure,
        )
        from nextbest.settings import ServerSettings  # type: ignore[import-untyped, unused-ignore]

        configure(opts.log_level, stream)
        nb = Server(
            ServerSettings(
                config=Path(opts.config),
                address="127.0.0.1:0",
                metrics_address="127.0.0.1:0",
                log_level=opts.log_level,
                grace=1.0,
            )
        )
        await nb.start()

        def count_pending() -> int:
            return sum(nb.engine.pending_counts().values())

        pending = count_pending
        loop.add_reader(conn.fileno(), on_message)
        conn.send(("ready", nb.port))
        if profiler is not None:
            profiler.enable()
        await stopping.wait()
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(opts.profile)
        await nb.stop()


@dataclass
class ServerProcess:
    name: str
    process: BaseProcess
    conn: Connection
    port: int

    def cpu_seconds(self) -> float | None:
        return process_cpu_seconds(self.process.pid)

    def stats(self) -> dict[str, Any]:
        """GC counters and pending events, from the server; {} if it does not answer."""
        try:
            self.conn.send("stats")
            if not self.conn.poll(10.0):
                return {}
            status, value = self.conn.recv()
        except (EOFError, OSError):
            return {}
        return dict(value) if status == "stats" else {}

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send("stop")
        self.process.join(STOP_TIMEOUT)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5.0)
        self.conn.close()


def start_server(name: str, opts: ServeOptions) -> ServerProcess:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=server_main, args=(opts, child), name=f"bench-{name}")
    process.start()
    child.close()
    try:
        if not parent.poll(START_TIMEOUT):
            raise RuntimeError(f"{name}: no port within {START_TIMEOUT:.0f} s")
        status, value = parent.recv()
    except (EOFError, RuntimeError) as exc:
        process.terminate()
        process.join(5.0)
        raise RuntimeError(f"{name} did not start: {exc}") from None
    if status != "ready":
        process.join(5.0)
        raise RuntimeError(f"{name} did not start: {value}")
    return ServerProcess(name, process, parent, int(value))


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU of a process (all its threads), from /proc; None where unavailable."""
    if pid is None:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime


# -- the load generator -------------------------------------------------------------------------


def make_requests(n: int, seed: int = 7) -> list[pb.DecideRequest]:
    """Varied requests: some get offer_refund masked (young account or large amount)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        out.append(
            pb.DecideRequest(
                policy=POLICY,
                intent=INTENTS[i % len(INTENTS)],
                context={
                    "account_age_days": pb.Value(number=float(rng.randint(1, 1500))),
                    "amount": pb.Value(number=round(rng.uniform(5.0, 400.0), 2)),
                    "plan": pb.Value(text=rng.choice(PLANS)),
                    "channel": pb.Value(text=rng.choice(CHANNELS)),
                },
            )
        )
    return out


def make_batches(
    requests: Sequence[pb.DecideRequest], size: int, n: int
) -> list[pb.DecideBatchRequest]:
    """n batches of `size` requests, each starting at a different place in the pool."""
    return [
        pb.DecideBatchRequest(requests=[requests[(b * 7 + i) % len(requests)] for i in range(size)])
        for b in range(n)
    ]


Call = Callable[[int], Awaitable[int]]  # (request index) → decisions made


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


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted values (q in [0, 1])."""
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


async def drive(
    call: Call,
    n_requests: int,
    concurrency: int,
    warmup: float,
    seconds: float,
    max_calls: int,
    server: ServerProcess,
) -> tuple[list[float], int, int, float, float, float | None, str]:
    """Run `concurrency` loops of calls; measure those that start after the warm-up.

    Returns (latencies in seconds, decisions, errors, measured wall time, client CPU share,
    server CPU share, one error message).
    """
    t_start = time.perf_counter()
    measure_from = t_start + warmup
    end = measure_from + seconds
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    decisions = 0
    errors = 0
    last_done = measure_from
    error_sample = ""
    cpu_mark: list[tuple[float, float, float | None]] = []

    async def mark() -> None:
        await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
        cpu_mark.append((time.perf_counter(), time.process_time(), server.cpu_seconds()))

    async def worker(w: int) -> None:
        nonlocal decisions, errors, last_done, error_sample
        mine = latencies[w]
        index = w
        failed = 0
        for _ in range(max_calls):
            t0 = time.perf_counter()
            if t0 >= end:
                break
            try:
                made = await call(index % n_requests)
            except (grpc.aio.AioRpcError, ValueError) as exc:
                errors += 1
                failed += 1
                error_sample = error_sample or str(exc)[:200]
                if failed >= MAX_ERRORS_PER_WORKER:
                    break
                continue
            finally:
                index += concurrency
            t1 = time.perf_counter()
            if t0 >= measure_from:
                mine.append(t1 - t0)
                decisions += made
                last_done = max(last_done, t1)

    marker = asyncio.create_task(mark())
    await asyncio.wait_for(
        asyncio.gather(*(worker(w) for w in range(concurrency))),
        timeout=warmup + seconds + CALL_TIMEOUT + 5.0,
    )
    await marker
    wall_end, cpu_end, server_end = time.perf_counter(), time.process_time(), server.cpu_seconds()
    wall_start, cpu_start, server_start = cpu_mark[0]
    span = max(wall_end - wall_start, 1e-9)
    server_share = (
        (server_end - server_start) / span
        if server_end is not None and server_start is not None
        else None
    )
    merged = [x for part in latencies for x in part]
    return (
        merged,
        decisions,
        errors,
        max(last_done - measure_from, 1e-9),
        (cpu_end - cpu_start) / span,
        server_share,
        error_sample,
    )


async def run_phase(
    server: ServerProcess,
    method: str,
    concurrency: int,
    args: argparse.Namespace,
    requests: Sequence[pb.DecideRequest],
    batches: Sequence[pb.DecideBatchRequest],
    round_no: int,
) -> Phase:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        await asyncio.wait_for(channel.channel_ready(), timeout=START_TIMEOUT)
        stub = rpc.DecisionServiceStub(channel)  # type: ignore[no-untyped-call, unused-ignore]
        if method == "Decide":

            async def call(i: int) -> int:
                resp: pb.DecideResponse = await stub.Decide(requests[i], timeout=CALL_TIMEOUT)
                if not resp.action_id:
                    raise ValueError("a Decide response without action_id")
                return 1

            n_requests, batch = len(requests), 1
        else:

            async def call(i: int) -> int:
                resp: pb.DecideBatchResponse = await stub.DecideBatch(
                    batches[i], timeout=CALL_TIMEOUT
                )
                made = sum(1 for r in resp.results if r.WhichOneof("result") == "decision")
                if made != len(batches[i].requests):
                    raise ValueError(f"{len(batches[i].requests) - made} batch items failed")
                return made

            n_requests, batch = len(batches), args.batch_size
        before = server.stats()  # also resets the server's per-phase GC maxima
        lat, decisions, errors, span, client_cpu, server_cpu, error_sample = await drive(
            call, n_requests, concurrency, args.warmup, args.seconds, args.max_calls, server
        )
        after = server.stats()
    lat.sort()
    conc = f"c{concurrency}" if method == "Decide" else f"b{batch}xc{concurrency}"
    return Phase(
        key=f"{server.name}/{method}/{conc}",
        server=server.name,
        rpc=method,
        concurrency=concurrency,
        batch=batch,
        round=round_no,
        seconds=span,
        calls=len(lat),
        decisions=decisions,
        errors=errors,
        calls_per_s=len(lat) / span,
        decisions_per_s=decisions / span,
        p50_ms=percentile(lat, 0.50) * 1e3,
        p90_ms=percentile(lat, 0.90) * 1e3,
        p99_ms=percentile(lat, 0.99) * 1e3,
        mean_ms=(statistics.fmean(lat) * 1e3) if lat else math.nan,
        max_ms=(lat[-1] * 1e3) if lat else math.nan,
        client_cpu=client_cpu,
        server_cpu=server_cpu,
        **gc_delta(before, after),
        error_sample=error_sample,
    )


def gc_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The server's GC during a phase (warm-up included), from two stats snapshots."""
    if not before or not after:
        return {}
    return {
        "gc_full": after["gc_count"][2] - before["gc_count"][2],
        "gc_pause_max_ms": max(after["gc_max_s"]) * 1e3,
        "gc_pause_total_ms": (sum(after["gc_total_s"]) - sum(before["gc_total_s"])) * 1e3,
        "pending_events": after["pending_events"],
    }


async def sample_sizes(
    server: ServerProcess, requests: Sequence[pb.DecideRequest]
) -> dict[str, Any]:
    """One real Decide per request: response sizes and shapes, to compare with the floor's."""
    sizes: list[int] = []
    shapes: dict[str, int] = {}
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        await asyncio.wait_for(channel.channel_ready(), timeout=START_TIMEOUT)
        stub = rpc.DecisionServiceStub(channel)  # type: ignore[no-untyped-call, unused-ignore]
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


# -- results ----------------------------------------------------------------------------------


@dataclass
class TableData:
    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)


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
        for metric in (
            "calls_per_s",
            "decisions_per_s",
            "p50_ms",
            "p90_ms",
            "p99_ms",
            "mean_ms",
            "max_ms",
            "client_cpu",
        ):
            row[metric] = statistics.median(getattr(p, metric) for p in group)
        for metric in ("server_cpu", "gc_pause_max_ms", "gc_pause_total_ms", "gc_full"):
            known = [getattr(p, metric) for p in group if getattr(p, metric) is not None]
            row[metric] = statistics.median(known) if known else None
        row["pending_events"] = group[-1].pending_events
        row["errors"] = sum(p.errors for p in group)
        row["calls"] = sum(p.calls for p in group)
        out[key] = row
    return out


def targets(summary: dict[str, dict[str, Any]], high: int, batch_key: str) -> list[dict[str, Any]]:
    def get(key: str, metric: str) -> float:
        row = summary.get(key)
        return float(row[metric]) if row is not None else math.nan

    ratio = get(f"nextbest/Decide/c{high}", "calls_per_s") / get(
        f"floor/Decide/c{high}", "calls_per_s"
    )
    overhead = get("nextbest/Decide/c1", "p50_ms") - get("floor/Decide/c1", "p50_ms")
    batch = get(batch_key, "decisions_per_s")
    out = [
        {
            "name": f"Decide throughput c={high} / floor c={high}",
            "value": ratio,
            "goal": f"≥ {TARGET_THROUGHPUT_RATIO}",
            "pass": ratio >= TARGET_THROUGHPUT_RATIO,
            "shown": f"{ratio:.2f}",
        },
        {
            "name": "Decide p50 c=1 − floor p50 c=1",
            "value": overhead,
            "goal": f"≤ {TARGET_P50_OVERHEAD_MS} ms",
            "pass": overhead <= TARGET_P50_OVERHEAD_MS,
            "shown": f"{overhead:.3f} ms",
        },
        {
            "name": "DecideBatch decisions/s",
            "value": batch,
            "goal": f"≥ {TARGET_BATCH_DECISIONS:,.0f}",
            "pass": batch >= TARGET_BATCH_DECISIONS,
            "shown": f"{batch:,.0f}",
        },
    ]
    return out


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.0f}%"


def build_tables(
    summary: dict[str, dict[str, Any]], goals: list[dict[str, Any]]
) -> list[TableData]:
    results = TableData(
        "Results (latency per call; CPU as a share of one core)",
        [
            "phase",
            "calls/s",
            "decisions/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms",
            "client CPU",
            "server CPU",
            "srv GC max ms",
            "errors",
        ],
    )
    for key, row in summary.items():
        results.rows.append(
            [
                key,
                f"{row['calls_per_s']:,.0f}",
                f"{row['decisions_per_s']:,.0f}",
                f"{row['p50_ms']:.3f}",
                f"{row['p90_ms']:.3f}",
                f"{row['p99_ms']:.3f}",
                f"{row['max_ms']:.2f}",
                _pct(row["client_cpu"]),
                _pct(row["server_cpu"]),
                "n/a" if row["gc_pause_max_ms"] is None else f"{row['gc_pause_max_ms']:.1f}",
                str(row["errors"]),
            ]
        )
    target_table = TableData("Targets", ["target", "measured", "goal", "result"])
    for g in goals:
        verdict = "PASS" if g["pass"] else "MISS"
        target_table.rows.append([g["name"], g["shown"], g["goal"], verdict])
    return [results, target_table]


def render_plain(tables: Sequence[TableData], out: TextIO) -> None:
    for t in tables:
        widths = [
            max(len(h), *(len(r[i]) for r in t.rows)) if t.rows else len(h)
            for i, h in enumerate(t.headers)
        ]

        def line(cells: Sequence[str], w: list[int] = widths) -> str:
            first = cells[0].ljust(w[0])
            rest = [c.rjust(w[i + 1]) for i, c in enumerate(cells[1:])]
            return "  ".join([first, *rest]).rstrip()

        print(t.title, file=out)
        print(line(t.headers), file=out)
        print(line(["-" * n for n in widths]), file=out)
        for r in t.rows:
            print(line(r), file=out)
        print(file=out)


def render_markdown(tables: Sequence[TableData], out: TextIO) -> None:
    for t in tables:
        print(f"**{t.title}**\n", file=out)
        print("| " + " | ".join(t.headers) + " |", file=out)
        print("|" + "|".join(["---"] + ["---:"] * (len(t.headers) - 1)) + "|", file=out)
        for r in t.rows:
            print("| " + " | ".join(r) + " |", file=out)
        print(file=out)


def render(tables: Sequence[TableData], plain: bool) -> None:
    if not plain:
        try:
            from rich.console import Console
            from rich.table import Table
        except ImportError:
            plain = True
        else:
            console = Console()
            if not console.is_terminal:  # piped or redirected: do not squeeze to 80 columns
                console = Console(width=200)
            for t in tables:
                table = Table(title=t.title, title_justify="left")
                for i, h in enumerate(t.headers):
                    table.add_column(h, justify="left" if i == 0 else "right")
                for r in t.rows:
                    styled = [
                        f"[bold green]{c}[/]"
                        if c == "PASS"
                        else f"[bold red]{c}[/]"
                        if c == "MISS"
                        else c
                        for c in r
                    ]
                    table.add_row(*styled)
                console.print(table)
            return
    render_plain(tables, sys.stdout)


def host_info() -> dict[str, Any]:
    cpu = platform.processor()
    with contextlib.suppress(OSError):
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                cpu = text.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "protobuf": protobuf_version,
        "git": git_state(),
    }


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages: other work on the machine skews every number."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def git_state() -> str:
    """The commit benchmarked, marked -dirty with local changes; "" outside a work tree."""
    try:
        done = subprocess.run(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty", "--broken"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    if done.returncode != 0:
        return "no commit yet"
    return done.stdout.strip()


# -- main -----------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--seconds", type=float, default=3.0, help="measured seconds per phase")
    p.add_argument("--warmup", type=float, default=0.5, help="unmeasured seconds before each")
    p.add_argument("--concurrency", type=int, default=16, help="the high concurrency (also 1)")
    p.add_argument("--batch-size", type=int, default=100, help="requests per DecideBatch")
    p.add_argument("--batch-concurrency", type=int, default=2, help="DecideBatch calls in flight")
    p.add_argument("--repeat", type=int, default=1, help="rounds; the table shows medians")
    p.add_argument("--max-calls", type=int, default=1_000_000, help="cap per worker per phase")
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="nextbest policy YAML")
    p.add_argument("--json", type=Path, default=None, metavar="FILE", help="write results here")
    p.add_argument(
        "--no-info-logging",
        action="store_true",
        help="skip the phases with info-level logging to /dev/null",
    )
    p.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="FILE",
        help="cProfile the nextbest server (inflates its numbers); pstats to FILE",
    )
    p.add_argument("--plain", action="store_true", help="plain text, not rich")
    p.add_argument("--markdown", action="store_true", help="also print markdown tables")
    args = p.parse_args(argv)
    for name in (
        "seconds",
        "concurrency",
        "batch_size",
        "batch_concurrency",
        "repeat",
        "max_calls",
    ):
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be positive")
    if args.warmup < 0:
        p.error("--warmup must not be negative")
    return args


async def run(args: argparse.Namespace) -> dict[str, Any]:
    requests = make_requests(48)
    batches = make_batches(requests, args.batch_size, 16)
    floor = floor_response()
    servers: dict[str, ServerProcess] = {}
    phases: list[Phase] = []
    high = args.concurrency
    batch_key = f"nextbest/DecideBatch/b{args.batch_size}xc{args.batch_concurrency}"
    try:
        servers["floor"] = start_server(
            "floor", ServeOptions("floor", floor_response=floor.SerializeToString())
        )
        servers["nextbest"] = start_server(
            "nextbest",
            ServeOptions(
                "nextbest",
                config=str(args.config),
                profile=str(args.profile) if args.profile else "",
            ),
        )
        if not args.no_info_logging:
            servers["nextbest-info"] = start_server(
                "nextbest-info",
                ServeOptions(
                    "nextbest", config=str(args.config), log_level="info", log_to_devnull=True
                ),
            )
        sizes = await sample_sizes(servers["nextbest"], requests)
        sizes["floor_response_bytes"] = floor.ByteSize()
        plan: list[tuple[str, str, int]] = []
        for conc in (1, high):
            plan += [("floor", "Decide", conc), ("nextbest", "Decide", conc)]
            if "nextbest-info" in servers:
                plan.append(("nextbest-info", "Decide", conc))
        plan += [
            ("floor", "DecideBatch", args.batch_concurrency),
            ("nextbest", "DecideBatch", args.batch_concurrency),
        ]
        for round_no in range(args.repeat):
            for name, method, conc in plan:
                print(
                    f"  round {round_no + 1}/{args.repeat}: {name} {method} c={conc} …",
                    file=sys.stderr,
                    flush=True,
                )
                phases.append(
                    await run_phase(servers[name], method, conc, args, requests, batches, round_no)
                )
    finally:
        for server in servers.values():
            server.stop()
    summary = summarize(phases)
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "host": host_info(),
        "settings": {
            "seconds": args.seconds,
            "warmup": args.warmup,
            "concurrency": [1, high],
            "batch_size": args.batch_size,
            "batch_concurrency": args.batch_concurrency,
            "repeat": args.repeat,
            "config": str(args.config),
            "policy": POLICY,
            "profiled": args.profile is not None,
        },
        "sizes": sizes,
        "summary": summary,
        "targets": targets(summary, high, batch_key),
        "phases": [asdict(p) for p in phases],
    }


def print_profile(path: Path, top: int = 25) -> None:
    out = io.StringIO()
    stats = pstats.Stats(str(path), stream=out)
    stats.strip_dirs().sort_stats("tottime").print_stats(top)
    print(f"\nnextbest server profile (event-loop thread, by own time) from {path}:")
    print(out.getvalue())


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = load_average()
    results = asyncio.run(run(args))
    results["load_average"] = {"before": load_before, "after": load_average()}
    host, sizes, s = results["host"], results["sizes"], results["settings"]
    print(
        f"nextbest Decide bench, {results['date']}: nproc={host['nproc']} ({host['cpu']}), "
        f"Python {host['python']}, grpcio {host['grpcio']}, protobuf {host['protobuf']}; "
        f"{s['seconds']:g} s per phase after {s['warmup']:g} s warm-up, "
        f"{s['repeat']} round(s); git {host['git'] or 'n/a'}; load average before "
        f"{results['load_average']['before']}, after {results['load_average']['after']}"
    )
    print(
        f"request {sizes['request_bytes_mean']:.0f} B; response: floor "
        f"{sizes['floor_response_bytes']} B, nextbest {sizes['nextbest_response_bytes_mean']:.0f}"
        f" B mean ({', '.join(f'{k}: {v}' for k, v in sizes['nextbest_response_shapes'].items())})"
    )
    if s["profiled"]:
        print("NOTE: the nextbest server ran under cProfile; its numbers are inflated.")
    tables = build_tables(results["summary"], results["targets"])
    render(tables, args.plain)
    if args.markdown:
        render_markdown(tables, sys.stdout)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2, allow_nan=True) + "\n")
        print(f"wrote {args.json}")
    if args.profile is not None and args.profile.exists():
        print_profile(args.profile)
    return 0  # it reports; it does not gate


if __name__ == "__main__":
    sys.exit(main())
