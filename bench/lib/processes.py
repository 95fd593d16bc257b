"""The parent's side of the server processes: start them (spawn), talk to them, read their
CPU and memory from /proc, and stop them.

Each runs in its own process bound to 127.0.0.1 on a port the OS picks, so a load generator
in the parent never shares a GIL with a server. Each nextbest server gets its own data
directory under a temporary root that is removed at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc

from lib.serve import ServeOptions, server_main
from nextbest_client.v1 import decision_pb2_grpc as rpc

START_TIMEOUT = 60.0  # seconds a server process gets to report its port
STOP_TIMEOUT = 20.0  # seconds a server process gets to stop before it is terminated
STATS_TIMEOUT = 10.0  # seconds a server gets to answer "stats"


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
    """Spawn a server and wait for its port; RuntimeError (and no process left) if none."""
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
