"""What a unary call costs the server beside its handler's own work (issue 15).

Run on demand (not a test; always exits 0):

    .venv/bin/python bench/handler_cost.py [--calls 4000] [--work 0,50,100,200] [--no-uvloop]

A grpc.aio server (on uvloop, the fastest floor of `bench/wire.py` on a quiet machine) whose
Decide spins for W µs of pure Python and answers fixed bytes; the floor is W = 0 in the same
run. Each row: calls/s and the server's CPU per call (utime + stime from /proc), at
concurrency 1 and 16, and that CPU less W: the transport's share. If the transport's share
stays flat as W grows, a handler's cost in a serving process is its own work plus that flat
share, and issue 15's "≤ 1.5× the floor's CPU" leaves a handler about half the floor's CPU.

Then, in process: `Engine.decide` on the README's support policy in a hot loop, and with 32
MiB of memory touched between calls (as a serving process's transport does to the caches):
what a decision costs when it starts cold.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import time
from multiprocessing.queues import Queue
from typing import Any

import grpc

METHOD = "/nextbest.v1.DecisionService/Decide"
RESPONSE = bytes(64)


def _identity(data: bytes) -> bytes:
    return data


def _spin(us: int) -> None:
    end = time.perf_counter() + us / 1e6
    while time.perf_counter() < end:
        pass


def _serve(ports: Queue[int], work_us: int, uv: bool) -> None:
    async def decide(request: bytes, context: Any) -> bytes:
        if work_us:
            _spin(work_us)
        return RESPONSE

    async def main() -> None:
        handler = grpc.method_handlers_generic_handler(
            "nextbest.v1.DecisionService",
            {
                "Decide": grpc.unary_unary_rpc_method_handler(
                    decide, request_deserializer=_identity, response_serializer=_identity
                )
            },
        )
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((handler,))
        ports.put(server.add_insecure_port("127.0.0.1:0"))
        await server.start()
        await server.wait_for_termination()

    if uv:
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _drive(port: int, calls: int, concurrency: int) -> float:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(
            METHOD, request_serializer=_identity, response_deserializer=_identity
        )
        for _ in range(200):  # warm-up
            await call(b"")
        todo = iter(range(calls))

        async def worker() -> None:
            for _ in todo:
                await call(b"")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return calls / (time.perf_counter() - started)


def _cold_decisions(calls: int) -> tuple[float, float]:
    """Median µs of `Engine.decide`: hot (back to back), and after evicting the caches."""
    import numpy as np

    from nextbest.policy.config import load_config
    from nextbest.policy.engine import Engine
    from nextbest.policy.ports import NullListener, run_now
    from nextbest.policy.requests import DecideInput
    from nextbest.store.memory import MemoryStore

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    config = load_config(os.path.join(root, "examples", "support.yaml"))
    engine = Engine(config, MemoryStore(), NullListener(), time.time)
    contexts: list[dict[str, Any]] = [
        {"account_age_days": float(i * 7 % 500), "amount": float(40 + i % 90), "plan": "gold"}
        for i in range(100)
    ]
    junk = np.ones(32 << 20, dtype=np.uint8)

    def median(cold: bool) -> float:
        took: list[float] = []
        for i in range(calls):
            if cold:
                junk[::64] += 1  # one write per cache line of 32 MiB
            started = time.perf_counter()
            intent = "billing_dispute" if i % 2 else "login_problem"
            run_now(engine.decide(DecideInput("support.next_step", intent, contexts[i % 100])))
            took.append(time.perf_counter() - started)
        return sorted(took)[len(took) // 2] * 1e6

    median(False)  # warm-up
    return median(False), median(True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--work", default="0,50,100,200", help="handler µs, comma-separated")
    parser.add_argument("--no-uvloop", action="store_true")
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    print(f"{'handler µs':>10} {'c':>3} {'calls/s':>9} {'CPU µs/call':>12} {'transport µs':>13}")
    for work in (int(w) for w in args.work.split(",")):
        for concurrency in (1, 16):
            ports: Queue[int] = ctx.Queue()
            process = ctx.Process(target=_serve, args=(ports, work, not args.no_uvloop))
            process.start()
            try:
                port = ports.get(timeout=30)
                assert process.pid is not None
                before = _cpu_seconds(process.pid)
                rate = asyncio.run(_drive(port, args.calls, concurrency))
                per_call = 1e6 * (_cpu_seconds(process.pid) - before) / args.calls
            finally:
                process.terminate()
                process.join()
            transport = per_call - work
            print(
                f"{work:>10} {concurrency:>3} {rate:>9,.0f} {per_call:>12,.0f} {transport:>13,.0f}"
            )
    hot, cold = _cold_decisions(2000)
    print(f"Engine.decide in process, median: hot {hot:.0f} µs, caches evicted {cold:.0f} µs")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
