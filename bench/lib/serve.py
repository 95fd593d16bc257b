"""A server process's side: what runs in the spawned child, serving until the parent says stop.

The parent talks to it over a pipe: "stats" (GC pauses, and nextbest's pending and learned
counts), "checkpoint" (nextbest: one checkpoint now, on its loop), anything else stops it,
and so does the parent going away.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import gc
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, BinaryIO, Literal

import grpc

from lib.floor import FloorServicer, floor_bytes_handler
from lib.traffic import DEFAULT_CONFIG
from nextbest_client.v1 import decision_pb2 as pb
from nextbest_client.v1 import decision_pb2_grpc as rpc


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


class _Pipe:
    """The parent's pipe, read on the server's event loop. GC is watched from creation."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.stopping = asyncio.Event()
        self.watch = GcWatch()
        gc.callbacks.append(self.watch)
        self.state: Callable[[], dict[str, Any]] = dict
        self.checkpoints: list[Callable[[], object]] = []  # nextbest's checkpoint, once it runs

    def listen(self, port: int) -> None:
        """Start answering the parent, and tell it the port: the server is ready."""
        asyncio.get_running_loop().add_reader(self.conn.fileno(), self._on_message)
        self.conn.send(("ready", port))

    def _on_message(self) -> None:
        try:
            message = self.conn.recv()
        except (EOFError, OSError):  # the parent died: do not outlive it
            message = "stop"
        if message == "stats":
            self.conn.send(("stats", {**self.watch.snapshot(), **self.state()}))
        elif message == "checkpoint":  # on the loop, as the join clock does it
            # Timed: the part on the loop (the models' bytes); a thread writes the files.
            started = time.perf_counter()
            for checkpoint in self.checkpoints:
                checkpoint()
            self.conn.send(("checkpoint", time.perf_counter() - started))
        else:
            asyncio.get_running_loop().remove_reader(self.conn.fileno())
            self.stopping.set()


async def _serve(opts: ServeOptions, conn: Connection, stream: BinaryIO | None) -> None:
    """Serve; answer "stats" on the pipe; stop on "stop" or when the parent goes away."""
    pipe = _Pipe(conn)
    if opts.kind in ("floor", "floor-bytes"):
        await _serve_floor(opts, pipe)
    else:
        await _serve_nextbest(opts, pipe, stream)


async def _serve_floor(opts: ServeOptions, pipe: _Pipe) -> None:
    """A bare grpc.aio DecisionService: prebuilt messages ("floor") or fixed bytes."""
    server = grpc.aio.server()
    if opts.kind == "floor-bytes":
        server.add_generic_rpc_handlers((floor_bytes_handler(opts.floor_response, sync=False),))
    else:
        response = pb.DecideResponse.FromString(opts.floor_response)
        rpc.add_DecisionServiceServicer_to_server(  # type: ignore[no-untyped-call, unused-ignore]
            FloorServicer(response), server
        )
    port = server.add_insecure_port("127.0.0.1:0")
    if port == 0:
        raise OSError("cannot bind 127.0.0.1")
    await server.start()
    pipe.listen(port)
    await pipe.stopping.wait()
    await server.stop(1.0)


async def _serve_nextbest(opts: ServeOptions, pipe: _Pipe, stream: BinaryIO | None) -> None:
    """`nextbest.api.server.Server` as `nextbest serve` runs it, in a fresh data dir."""
    # Imported here: the floors never load nextbest. Typed under the repo-wide `mypy`;
    # `mypy` on one bench file sees the editable install (no py.typed): the tolerant ignores.
    from nextbest.api.server import Server, settle_gc  # type: ignore[import-untyped, unused-ignore]
    from nextbest.observability.logging import (  # type: ignore[import-untyped, unused-ignore]
        configure,
    )
    from nextbest.settings import ServerSettings  # type: ignore[import-untyped, unused-ignore]
    from nextbest.store.durable import Durability  # type: ignore[import-untyped, unused-ignore]

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
    pipe.checkpoints.append(nb.start_checkpoint)

    def engine_state() -> dict[str, Any]:
        pending = nb.engine.pending_counts()
        state: dict[str, Any] = {
            "pending_events": sum(pending.values()),
            "pending": dict(pending),
            "learned": {name: m.learned for name, m in nb.engine.models().items()},
        }
        if nb.decisions is not None:  # unary Decides decided together (api/coalesce.py)
            c = nb.decisions.coalescer
            state["coalescer"] = {"calls": c.calls, "coalesced": c.coalesced, "batches": c.waited}
        return state

    pipe.state = engine_state
    pipe.listen(nb.port)
    profiler = cProfile.Profile() if opts.profile else None
    if profiler is not None:
        profiler.enable()
    await pipe.stopping.wait()
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(opts.profile)
    await nb.stop()
