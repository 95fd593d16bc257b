"""This tree against another commit, on the same machine at the same time: interleaved rounds.

    .venv/bin/python bench/ab.py                       # against HEAD, 5 rounds (≈ 3 min)
    .venv/bin/python bench/ab.py --against main~3 --rounds 3
    .venv/bin/python bench/ab.py --variant no-coalesce=NEXTBEST_COALESCE_WAIT=0

On a shared VM the speed of the same code drifts by 2× from one minute to the next, so two
runs of `wire.py` minutes apart cannot tell a 20% change from noise. This starts one `nextbest
serve` per tree (the other commit checked out in a temporary git worktree, its code put first
on PYTHONPATH; the venv and its packages are this one's), plus any `--variant` of this tree
with extra environment (a setting), and measures them in turn, round after round, on
`wire.py`'s agent request: server CPU per Decide at concurrency 16 (from /proc, a fixed
number of calls), the calls/s of that phase, server CPU per decision of DecideBatch (64 per
call, concurrency 2) and the p50 latency of Decide at concurrency 1. Medians, and each
round's values. It reports and never gates.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from lib.load import Call, batch_call, decide_call
from lib.processes import process_cpu_seconds
from lib.tables import TableData, per_round, render
from wire import agent_requests, write_config

from nextbest_client.v1 import decision_pb2 as pb
from nextbest_client.v1 import decision_pb2_grpc as rpc

ROOT = Path(__file__).resolve().parent.parent
FIGURES = (
    ("Decide c=16, server CPU µs/call", ",.0f"),
    ("Decide c=16, calls/s", ",.0f"),
    ("DecideBatch 64×c=2, server CPU µs/decision", ",.0f"),
    ("Decide c=1, p50 µs", ",.0f"),
)


@dataclass
class Served:
    name: str
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    port: int = 0
    found: dict[str, list[float]] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(served: Served, config: Path, data: Path) -> None:
    served.port = free_port()
    command = [sys.executable, "-m", "nextbest", "serve", "--config", str(config)]
    command += ["--data-dir", str(data / served.name), "--address", f"127.0.0.1:{served.port}"]
    command += ["--metrics-address", "127.0.0.1:0", "--log-level", "info"]
    served.process = subprocess.Popen(  # its info log into /dev/null, as wire.py's
        command, env={**os.environ, **served.env}, stdout=subprocess.DEVNULL
    )


async def fixed(call: Call, n_items: int, calls: int, concurrency: int) -> None:
    counter = itertools.count()

    async def worker() -> None:
        while (i := next(counter)) < calls:
            await call(i % n_items)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def one_round(served: Served, calls: int) -> dict[str, float]:
    assert served.process is not None
    pid = served.process.pid
    reqs = agent_requests(48)
    batches = [
        pb.DecideBatchRequest(requests=[reqs[(i * 64 + j) % 48] for j in range(64)])
        for i in range(8)
    ]
    out: dict[str, float] = {}
    async with grpc.aio.insecure_channel(f"127.0.0.1:{served.port}") as channel:
        await asyncio.wait_for(channel.channel_ready(), 60)
        stub = rpc.DecisionServiceStub(channel)  # type: ignore[no-untyped-call, unused-ignore]
        for figure, call, n, count, concurrency, per in (
            (FIGURES[0][0], decide_call(stub, reqs), 48, calls, 16, 1),
            (FIGURES[2][0], batch_call(stub, batches), 8, max(calls // 32, 20), 2, 64),
        ):
            await fixed(call, n, max(count // 5, concurrency), concurrency)  # warm-up
            before, t0 = process_cpu_seconds(pid), time.perf_counter()
            await fixed(call, n, count, concurrency)
            after, wall = process_cpu_seconds(pid), time.perf_counter() - t0
            if before is None or after is None:
                raise RuntimeError(f"no /proc figures for {served.name}")
            out[figure] = (after - before) / (count * per) * 1e6
            if per == 1:
                out[FIGURES[1][0]] = count / wall
        latencies = []
        for i in range(100 + calls // 4):
            t0 = time.perf_counter()
            await stub.Decide(reqs[i % 48])
            if i >= 100:
                latencies.append(time.perf_counter() - t0)
        out[FIGURES[3][0]] = statistics.median(latencies) * 1e6
    return out


def worktree(ref: str, where: Path) -> Path:
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(where), ref], check=True
    )
    return where


def table(servers: Sequence[Served]) -> TableData:
    data = TableData(
        "Interleaved A/B (medians; each round in brackets)",
        ["figure", *(s.name for s in servers)],
    )
    for figure, fmt in FIGURES:
        row = [figure]
        for s in servers:
            values = s.found[figure]
            row.append(f"{format(statistics.median(values), fmt)} ({per_round(values, fmt)})")
        data.rows.append(row)
    base = servers[0].found[FIGURES[0][0]]
    for s in servers[1:]:
        ratio = statistics.median(s.found[FIGURES[0][0]]) / statistics.median(base)
        row = [f"CPU per Decide, {s.name} ÷ {servers[0].name}", f"{ratio:.2f}×"]
        data.rows.append(row + [""] * (len(servers) - 1))
    return data


async def run(servers: Sequence[Served], rounds: int, calls: int) -> None:
    for r in range(rounds):
        print(f"round {r + 1}/{rounds}", file=sys.stderr)
        for s in servers if r % 2 == 0 else list(reversed(servers)):  # alternate the order
            for figure, value in (await one_round(s, calls)).items():
                s.found.setdefault(figure, []).append(value)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", default="HEAD", help="the other commit (default HEAD)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=3000, help="Decides per CPU figure")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=VAR=VALUE",
        help="also this tree with an environment variable set (repeatable)",
    )
    parser.add_argument("--plain", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="nextbest-ab-") as tmp:
        root = Path(tmp)
        other = worktree(args.against, root / "tree")
        servers = [
            Served("this tree", {}),
            Served(args.against, {"PYTHONPATH": str(other / "service")}),
        ]
        for variant in args.variant:
            name, var, value = variant.split("=", 2)
            servers.append(Served(name, {var: value}))
        try:
            config = write_config(root)
            for s in servers:
                start(s, config, root)
            asyncio.run(run(servers, args.rounds, args.calls))
        finally:
            for s in servers:
                if s.process is not None:
                    s.process.terminate()
                    s.process.wait()
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(other)])
            shutil.rmtree(other, ignore_errors=True)
    render([table(servers)], plain=args.plain)
    print(f"load average after: {os.getloadavg()[0]:.2f}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
