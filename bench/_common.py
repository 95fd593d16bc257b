"""What the benchmarks share: server processes, the load generator, tables, host facts.

Used by ``decide_bench.py`` and ``run.py`` (both run as scripts from ``bench/``, so this is
imported as the top-level module ``_common``; spawned server processes import it the same
way, since multiprocessing hands them the parent's ``sys.path``).

Servers run in their own processes (multiprocessing, spawn), bound to 127.0.0.1 on a port
the OS picks, so a load generator in the parent never shares a GIL with a server. Each
nextbest server gets its own data directory under a temporary root that is removed at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import gc
import math
import multiprocessing
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Literal, TextIO

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
STATS_TIMEOUT = 10.0  # seconds a server gets to answer "stats"
MAX_ERRORS_PER_WORKER = 100  # a worker that keeps failing stops early (a dead server)


# -- the servers (each in its own process) ----------------------------------------------------


@dataclass(frozen=True)
class ServeOptions:
    """What a server process needs; pickled to the child (spawn)."""

    kind: str  # "floor", "floor-bytes" (grpc.aio, fixed bytes), "floor-sync" or "nextbest"
    config: str = str(DEFAULT_CONFIG)
    log_level: str = "warning"
    log_to_devnull: bool = False
    floor_response: bytes = b""
    profile: str = ""  # a path: profile the server's event-loop thread, dump pstats there
    data_dir: str = ""  # nextbest's data dir; ServerPool fills it in (a fresh directory)
    fsync: Literal["always", "interval", "never"] = "interval"  # nextbest only
    loop: Literal["asyncio", "uvloop"] = "asyncio"  # the event loop of an aio server
    workers: int = 16  # floor-sync: threads in its pool
    checkpoint_interval: float = 60.0  # nextbest: seconds between its own checkpoints
    checkpoint_every: int = 10_000  # nextbest: learned events between its own checkpoints


class FloorServicer(rpc.DecisionServiceServicer):
    """No work: the same prebuilt response for every Decide (and every batch item), and one
    prebuilt ACCEPTED for every Reward."""

    def __init__(self, response: pb.DecideResponse) -> None:
        self.response = response
        self.reward = pb.RewardResponse(status=pb.REWARD_STATUS_ACCEPTED, value=0.5)
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
        return self.reward

    async def Activate(self, request: pb.ActivateRequest, context: Any) -> pb.ActivateResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the floor serves Decide and Reward")
        raise AssertionError("unreachable: abort raises")

    async def Explain(self, request: pb.ExplainRequest, context: Any) -> pb.ExplainResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the floor serves Decide and Reward")
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


def floor_bytes_handler(response: bytes, sync: bool) -> grpc.GenericRpcHandler:
    """DecisionService's Decide and Reward answering fixed bytes, neither parsing nor
    serializing anything: what the transport alone costs (sync: for grpc.server)."""
    reward = pb.RewardResponse(status=pb.REWARD_STATUS_ACCEPTED, value=0.5).SerializeToString()
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for name, body in (("Decide", response), ("Reward", reward)):
        if sync:

            def answer(request: bytes, context: Any, body: bytes = body) -> bytes:
                return body

            handlers[name] = grpc.unary_unary_rpc_method_handler(answer)
        else:

            async def answer_aio(request: bytes, context: Any, body: bytes = body) -> bytes:
                return body

            handlers[name] = grpc.unary_unary_rpc_method_handler(answer_aio)
    service = pb.DESCRIPTOR.services_by_name["DecisionService"].full_name
    return grpc.method_handlers_generic_handler(service, handlers)


def _serve_sync(opts: ServeOptions, conn: Connection) -> None:
    """The synchronous grpc server with a thread pool, answering fixed bytes."""
    from concurrent import futures

    watch = GcWatch()
    gc.callbacks.append(watch)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=opts.workers))
    server.add_generic_rpc_handlers((floor_bytes_handler(opts.floor_response, sync=True),))
    port = server.add_insecure_port("127.0.0.1:0")
    if port == 0:
        raise OSError("cannot bind 127.0.0.1")
    server.start()
    conn.send(("ready", port))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            break
        if message != "stats":
            break
        conn.send(("stats", watch.snapshot()))
    server.stop(1.0).wait()


def server_main(opts: ServeOptions, conn: Connection) -> None:
    """The child process: serve until the parent says stop (or goes away)."""
    with contextlib.ExitStack() as stack:
        stream: BinaryIO | None = None
        if opts.log_to_devnull:
            stream = stack.enter_context(open(os.devnull, "wb"))
        try:
            if opts.kind == "floor-sync":
                _serve_sync(opts, conn)
            elif opts.loop == "uvloop":
                import uvloop

                uvloop.run(_serve(opts, conn, stream))
            else:
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
    state: Callable[[], dict[str, Any]] = dict
    checkpoints: list[Callable[[], object]] = []  # nextbest's checkpoint, once it runs

    def on_message() -> None:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the parent died: do not outlive it
            message = "stop"
        if message == "stats":
            conn.send(("stats", {**watch.snapshot(), **state()}))
        elif message == "checkpoint":  # on the loop, as the join clock does it
            # Timed: the part on the loop (the models' bytes); a thread writes the files.
            started = time.perf_counter()
            for checkpoint in checkpoints:
                checkpoint()
            conn.send(("checkpoint", time.perf_counter() - started))
        else:
            loop.remove_reader(conn.fileno())
            stopping.set()

    profiler = cProfile.Profile() if opts.profile else None
    if opts.kind == "floor-bytes":
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((floor_bytes_handler(opts.floor_response, sync=False),))
        port = server.add_insecure_port("127.0.0.1:0")
        if port == 0:
            raise OSError("cannot bind 127.0.0.1")
        await server.start()
        loop.add_reader(conn.fileno(), on_message)
        conn.send(("ready", port))
        await stopping.wait()
        await server.stop(1.0)
    elif opts.kind == "floor":
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
        # Typed under the repo-wide `mypy`; `mypy bench/_common.py` alone sees the
        # editable install, which has no py.typed marker: hence the tolerant ignores.
        from nextbest.api.server import (  # type: ignore[import-untyped, unused-ignore]
            Server,
            settle_gc,
        )
        from nextbest.observability.logging import (  # type: ignore[import-untyped, unused-ignore]
            configure,
        )
        from nextbest.settings import ServerSettings  # type: ignore[import-untyped, unused-ignore]
        from nextbest.store.durable import (  # type: ignore[import-untyped, unused-ignore]
            Durability,
        )

        configure(opts.log_level, stream)
        nb = Server(
            ServerSettings(
                config=Path(opts.config),
                address="127.0.0.1:0",
                metrics_address="127.0.0.1:0",
                log_level=opts.log_level,
                grace=1.0,
                data_dir=Path(opts.data_dir or "nextbest-data"),
                durability=Durability(fsync=opts.fsync),
                checkpoint_interval=opts.checkpoint_interval,
                checkpoint_every=opts.checkpoint_every,
            )
        )
        await nb.start()
        settle_gc()  # as `nextbest serve` does
        checkpoints.append(nb.start_checkpoint)

        def engine_state() -> dict[str, Any]:
            pending = nb.engine.pending_counts()
            return {
                "pending_events": sum(pending.values()),
                "pending": dict(pending),
                "learned": {name: m.learned for name, m in nb.engine.models().items()},
            }

        state = engine_state
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

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float | None:
        return process_cpu_seconds(self.process.pid)

    def rss_bytes(self) -> int | None:
        return process_rss_bytes(self.process.pid)

    def stats(self) -> dict[str, Any]:
        """GC counters, pending and learned events, from the server; {} if it does not answer."""
        try:
            self.conn.send("stats")
            if not self.conn.poll(STATS_TIMEOUT):
                return {}
            status, value = self.conn.recv()
        except (EOFError, OSError):
            return {}
        return dict(value) if status == "stats" else {}

    def start_checkpoint(self) -> None:
        """Ask a nextbest server to checkpoint now, on its event loop; collect the answer
        with `checkpoint_seconds` before the next `stats`."""
        self.conn.send("checkpoint")

    def checkpoint_seconds(self) -> float | None:
        """How long the checkpoint asked for held the server's loop: taking the models'
        bytes; its file work, on a thread, is not counted (None: no answer)."""
        try:
            if not self.conn.poll(STATS_TIMEOUT):
                return None
            status, value = self.conn.recv()
        except (EOFError, OSError):
            return None
        return float(value) if status == "checkpoint" else None

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


class ServerPool:
    """Servers started by name, each nextbest one with its own data dir under a temporary
    root; `close()` (or leaving the `with`) stops them all and deletes the root."""

    def __init__(self, data_root: Path | None = None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="nextbest-bench-", dir=data_root))
        self.servers: dict[str, ServerProcess] = {}

    def start(self, name: str, opts: ServeOptions) -> ServerProcess:
        if opts.kind == "nextbest" and not opts.data_dir:
            data_dir = self.root / f"data-{name}"
            data_dir.mkdir()
            opts = replace(opts, data_dir=str(data_dir))
        server = self.servers[name] = start_server(name, opts)
        return server

    def stop(self, name: str) -> None:
        server = self.servers.pop(name, None)
        if server is not None:
            server.stop()

    def __getitem__(self, name: str) -> ServerProcess:
        return self.servers[name]

    def __contains__(self, name: str) -> bool:
        return name in self.servers

    def close(self) -> None:
        for name in list(self.servers):
            self.stop(name)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> ServerPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


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


def process_rss_bytes(pid: int | None) -> int | None:
    """A process's resident set (VmRSS in /proc/PID/status), in bytes; None where unavailable."""
    if pid is None:
        return None
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024  # reported in kB
    return None


@contextlib.asynccontextmanager
async def connect(server: ServerProcess) -> AsyncIterator[Any]:
    """A DecisionService stub on one fresh grpc.aio channel to the server."""
    async with grpc.aio.insecure_channel(server.address) as channel:
        await asyncio.wait_for(channel.channel_ready(), timeout=START_TIMEOUT)
        yield rpc.DecisionServiceStub(channel)  # type: ignore[no-untyped-call, unused-ignore]


# -- the load generator -------------------------------------------------------------------------


def make_requests(n: int, seed: int = 7, policy: str = POLICY) -> list[pb.DecideRequest]:
    """Varied requests: some get offer_refund masked (young account or large amount)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        out.append(
            pb.DecideRequest(
                policy=policy,
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


async def drive(
    call: Call,
    n_items: int,
    concurrency: int,
    timing: Timing,
    server: ServerProcess,
) -> Driven:
    """Run `concurrency` loops of calls; measure those that start after the warm-up.

    Worker w calls items w, w + concurrency, w + 2·concurrency, … (mod n_items).
    """
    t_start = time.perf_counter()
    measure_from = t_start + timing.warmup
    end = measure_from + timing.seconds
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    decisions = 0
    errors = 0
    capped = 0
    last_done = measure_from
    error_sample = ""
    cpu_mark: list[tuple[float, float, float | None]] = []

    async def mark() -> None:
        await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
        cpu_mark.append((time.perf_counter(), time.process_time(), server.cpu_seconds()))

    async def worker(w: int) -> None:
        nonlocal decisions, errors, last_done, error_sample, capped
        mine = latencies[w]
        index = w
        failed = 0
        for _ in range(timing.max_calls):
            t0 = time.perf_counter()
            if t0 >= end:
                break
            try:
                made = await call(index % n_items)
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
        else:
            capped += 1

    marker = asyncio.create_task(mark())
    await asyncio.wait_for(
        asyncio.gather(*(worker(w) for w in range(concurrency))),
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
        latencies=[x for part in latencies for x in part],
        decisions=decisions,
        errors=errors,
        span=max(last_done - measure_from, 1e-9),
        client_cpu=(cpu_end - cpu_start) / span,
        server_cpu=server_share,
        error_sample=error_sample,
        exhausted=capped == concurrency,
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


# -- results ----------------------------------------------------------------------------------


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
        row["exhausted"] = any(p.exhausted for p in group)
        out[key] = row
    return out


@dataclass
class TableData:
    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.0f}%"


def phase_table(summary: dict[str, dict[str, Any]], title: str) -> TableData:
    """One row per phase key: rates, latencies, CPU, the server's longest GC pause."""
    table = TableData(
        title,
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
        table.rows.append(
            [
                key + (" (ran out)" if row.get("exhausted") else ""),
                f"{row['calls_per_s']:,.0f}",
                f"{row['decisions_per_s']:,.0f}",
                f"{row['p50_ms']:.3f}",
                f"{row['p90_ms']:.3f}",
                f"{row['p99_ms']:.3f}",
                f"{row['max_ms']:.2f}",
                pct(row["client_cpu"]),
                pct(row["server_cpu"]),
                "n/a" if row["gc_pause_max_ms"] is None else f"{row['gc_pause_max_ms']:.1f}",
                str(row["errors"]),
            ]
        )
    return table


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
    """Rich tables (PASS green, MISS red), or plain text without rich or with plain=True."""
    if not plain:
        try:
            from rich.console import Console
            from rich.markup import escape
            from rich.table import Table
        except ImportError:
            plain = True
        else:
            console = Console()
            if not console.is_terminal:  # piped or redirected: do not squeeze to 80 columns
                console = Console(width=200)
            for t in tables:
                table = Table(title=escape(t.title), title_justify="left")
                for i, h in enumerate(t.headers):
                    table.add_column(escape(h), justify="left" if i == 0 else "right")
                for r in t.rows:
                    styled = [
                        f"[bold green]{c}[/]"
                        if c == "PASS"
                        else f"[bold red]{c}[/]"
                        if c == "MISS"
                        else escape(c)
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
