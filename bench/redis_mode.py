"""Issue 9's figures: embedded mode against Redis mode, the same client, one run.

    .venv/bin/python bench/redis_mode.py              # ≈ 2 min
    .venv/bin/python bench/redis_mode.py --quick      # ≈ 1 min
    .venv/bin/python bench/redis_mode.py --json FILE
    .venv/bin/python bench/redis_mode.py --only learner   # the learner figure alone, ≈ 20 s

It reports and never gates: PASS/MISS per target, exit status 0. A real redis-server (AOF on,
appendfsync everysec) in a temporary directory; every server is a `nextbest serve` process
on `examples/support.yaml` (its `earliest` join: a Reward closes the join in the call).

- Decides/s and Rewards/s at concurrency 16: embedded, Redis mode with 1 worker (`--role all`),
  Redis mode with `--workers 2` (`--role all`); server CPU µs per Decide (utime + stime of the
  server's whole process tree from /proc, before and after a fixed number of calls).
- Redis commands per Decide and per Reward (`INFO commandstats` before and after), beside
  the round trips the store makes (one each: tests/integration/redis/test_store.py counts
  the socket writes).
- The learner: joined events learned per second from the stream (in process).
- From a Reward to a model that learned it serving on every replica (a learner and two
  `--role server` replicas): p50 and p99 over rewards sent one at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import grpc
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc
from lib.load import percentile
from lib.processes import process_cpu_seconds
from lib.tables import TableData, render
from lib.traffic import DEFAULT_CONFIG, POLICY, make_requests

from nextbest_client.v1 import decision_pb2 as pb
from nextbest_client.v1 import decision_pb2_grpc as rpc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.redis_server import RedisServer, free_port  # noqa: E402 - the tests' own fixture

TARGET_CPU_RATIO = 1.3  # Redis mode's server CPU per Decide against embedded
TARGET_LEARNER = 20_000.0  # joined events learned per second
START_TIMEOUT = 60.0


@dataclasses.dataclass
class Deployment:
    """`nextbest serve` processes; `address` is where the clients call."""

    name: str
    processes: list[subprocess.Popen[bytes]]
    address: str

    def cpu_seconds(self) -> float:
        return sum(_tree_cpu(p.pid) for p in self.processes)

    def stop(self) -> None:
        for p in self.processes:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.processes:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def _tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its descendants (`--workers` children)."""
    total = process_cpu_seconds(pid) or 0.0
    for child in _children(pid):
        total += _tree_cpu(child)
    return total


def serve(
    root: Path, name: str, *extra: str, port: int | None = None, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """A `nextbest serve` process; its address once it logged `serving`."""
    port = port if port is not None else free_port()
    log = root / f"{name}.log"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nextbest",
            "serve",
            "--config",
            str(DEFAULT_CONFIG),
            "--address",
            f"127.0.0.1:{port}",
            "--metrics-address",
            f"127.0.0.1:{free_port()}",
            "--data-dir",
            str(root / name),
            "--log-level",
            "warning",
            *extra,
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    address = f"127.0.0.1:{port}"
    try:
        _wait_ready(address, process)
    except BaseException:
        process.kill()  # never left running behind a failed bench
        process.wait()
        raise
    return process, address


def _wait_ready(address: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server on {address} exited {process.returncode}")
            try:
                stub.Check(health_pb2.HealthCheckRequest(), timeout=2)  # every role has it
                return
            except grpc.RpcError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the server on {address} did not answer") from None
                time.sleep(0.1)  # polling a condition: the server answers


async def _fixed(address: str, make: Any, calls: int, concurrency: int) -> float:
    """Exactly `calls` calls at `concurrency`, over `concurrency` channels (so the kernel
    spreads them over `--workers` processes); seconds taken."""
    counter = itertools.count()
    channels = [grpc.aio.insecure_channel(address) for _ in range(concurrency)]
    try:
        stubs = [rpc.DecisionServiceStub(c) for c in channels]

        async def worker(w: int) -> None:
            while (i := next(counter)) < calls:
                await make(stubs[w], i)

        started = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        return time.perf_counter() - started
    finally:
        for channel in channels:
            await channel.close()


def commandstats(client: redis.Redis) -> dict[str, int]:
    stats: dict[str, Any] = client.info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}


def _delta(after: dict[str, int], before: dict[str, int]) -> int:
    return sum(after[k] - before.get(k, 0) for k in after if k not in ("info",))


async def throughput(
    deployment: Deployment, calls: int, client: redis.Redis | None
) -> dict[str, float]:
    """Decide, then Reward (earliest: each closes its join) on the events decided."""
    requests = make_requests(512)
    event_ids: list[str] = [""] * calls

    async def decide(stub: Any, i: int) -> None:
        response = await stub.Decide(requests[i % len(requests)], timeout=30)
        event_ids[i] = response.event_id

    async def reward(stub: Any, i: int) -> None:
        await stub.Reward(pb.RewardRequest(event_id=event_ids[i], value=1.0), timeout=30)

    await _fixed(deployment.address, decide, min(calls // 5, 500), 16)  # warm-up
    stats = commandstats(client) if client is not None else {}
    cpu = deployment.cpu_seconds()
    took = await _fixed(deployment.address, decide, calls, 16)
    decide_cpu = deployment.cpu_seconds() - cpu
    mid = commandstats(client) if client is not None else {}
    reward_took = await _fixed(deployment.address, reward, calls, 16)
    end = commandstats(client) if client is not None else {}
    return {
        "decides_per_s": calls / took,
        "rewards_per_s": calls / reward_took,
        "cpu_us_per_decide": decide_cpu / calls * 1e6,
        "commands_per_decide": _delta(mid, stats) / calls if client is not None else 0.0,
        "commands_per_reward": _delta(end, mid) / calls if client is not None else 0.0,
    }


def learner_rate(root: Path, redis_url: str, events: int) -> float:
    """Joined events learned per second from the stream, by `Learner` in this process."""
    fill_joined(redis_url, events)
    return learn_joined(root, redis_url, events)


def fill_joined(redis_url: str, events: int) -> None:
    """`events` closed joins (LEARNED) on the policy's joined stream, as replicas put them."""
    from nextbest.observability.logging import configure
    from nextbest.policy.config import load_config
    from nextbest.policy.engine import Engine
    from nextbest.policy.events import JoinStatus
    from nextbest.policy.ports import NullListener, run_now
    from nextbest.policy.requests import DecideInput
    from nextbest.store import codec, dsjson
    from nextbest.store.memory import MemoryStore
    from nextbest.store.redis import keys
    from nextbest.store.redis.store import example_text

    configure("warning")
    config = load_config(DEFAULT_CONFIG)
    engine = Engine(config, MemoryStore(), NullListener(), time.time, learns=False)
    contexts = make_requests(256)
    sync = redis.Redis.from_url(redis_url)
    pipe = sync.pipeline(transaction=False)
    for i in range(events):
        request = contexts[i % len(contexts)]
        event = run_now(
            engine.decide(
                DecideInput(
                    POLICY,
                    request.intent,
                    {k: v.number for k, v in request.context.items()},
                    event_id=f"learn-{i}",
                )
            )
        )
        closed = dataclasses.replace(event, join_status=JoinStatus.LEARNED, joined_reward=1.0)
        encoded = codec.encode(closed)
        fields = {"e": encoded, "id": event.event_id}  # as a replica settling it puts it:
        fields.update(d=dsjson.line(closed, encoded), x=example_text(closed))  # line, example
        pipe.xadd(keys.joined(POLICY), fields)  # type: ignore[arg-type]
        if i % 1000 == 999:
            pipe.execute()
    pipe.execute()
    engine.shutdown()


def learn_joined(root: Path, redis_url: str, events: int) -> float:
    """Events learned per second by a `Learner` in this process, from its start until it
    learned `events` (what `fill_joined` put on the stream)."""
    from nextbest.observability.logging import configure
    from nextbest.policy.config import load_config
    from nextbest.store.durable import Durability
    from nextbest.store.redis.connection import connect
    from nextbest.store.redis.learner import Learner

    configure("warning")
    config = load_config(DEFAULT_CONFIG)

    async def learn() -> float:
        client = await connect(redis_url)
        learner = Learner(client, config, root / "learner-bench", Durability(fsync="never"))
        task = asyncio.create_task(learner.run())
        started = time.perf_counter()
        try:
            while learner.learned(POLICY) < events:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)  # polling a condition: the learned count
            return events / (time.perf_counter() - started)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await learner.stop()
            await client.aclose()

    return asyncio.run(learn())


async def freshness(replicas: Sequence[str], rewards: int) -> list[float]:
    """Seconds from a Reward (which closes its join) to every replica serving a model that
    learned it, one reward at a time."""
    channels = [grpc.aio.insecure_channel(a) for a in replicas]
    stubs = [rpc.DecisionServiceStub(c) for c in channels]
    out: list[float] = []
    try:
        for i in range(rewards):
            decided = await stubs[i % len(stubs)].Decide(
                pb.DecideRequest(policy=POLICY, intent="billing_dispute"), timeout=10
            )
            target = int(decided.model_version) + 1
            sent = time.perf_counter()
            await stubs[(i + 1) % len(stubs)].Reward(
                pb.RewardRequest(event_id=decided.event_id, value=1.0), timeout=10
            )
            for stub in stubs:
                while True:
                    got = await stub.Decide(pb.DecideRequest(policy=POLICY, intent="x"), timeout=10)
                    if int(got.model_version) >= target:
                        break
                    await asyncio.sleep(0.005)  # polling a condition: the served version
            out.append(time.perf_counter() - sent)
    finally:
        for channel in channels:
            await channel.close()
    return out


@contextlib.contextmanager
def deployment(root: Path, name: str, redis_url: str | None, workers: int) -> Iterator[Deployment]:
    extra: list[str] = []
    if redis_url is not None:
        extra = ["--redis", redis_url, "--role", "all", "--workers", str(workers)]
    process, address = serve(root, name, *extra)
    d = Deployment(name, [process], address)
    try:
        yield d
    finally:
        d.stop()


def run_learner(args: argparse.Namespace) -> dict[str, Any]:
    """The learner figure alone (`--only learner`), on a Redis server of its own."""
    with tempfile.TemporaryDirectory(prefix="nextbest-redis-bench-") as tmp:
        root = Path(tmp)
        server = RedisServer(root / "redis").start()
        try:
            return {"learner_per_s": learner_rate(root, server.url, args.learn_events)}
        finally:
            server.stop()


def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"modes": {}}
    with tempfile.TemporaryDirectory(prefix="nextbest-redis-bench-") as tmp:
        root = Path(tmp)
        server = RedisServer(root / "redis").start()
        try:
            client = redis.Redis(port=server.port)
            for name, url, workers in (
                ("embedded", None, 1),
                ("redis, 1 worker", server.url, 1),
                ("redis, 2 workers", server.url, 2),
            ):
                print(f"  {name} …", file=sys.stderr)
                with deployment(root, name.replace(", ", "-").replace(" ", ""), url, workers) as d:
                    results["modes"][name] = asyncio.run(
                        throughput(d, args.calls, client if url else None)
                    )
                client.flushall()
            print("  learner …", file=sys.stderr)
            results["learner_per_s"] = learner_rate(root, server.url, args.learn_events)
            client.flushall()
            print("  reward → model on every replica …", file=sys.stderr)
            learner, _ = serve(
                root, "fresh-learner", "--redis", server.url, "--role", "learner",
                "--model-publish-interval", str(args.publish_interval),
            )  # fmt: skip
            replicas = [
                serve(
                    root,
                    f"fresh-{i}",
                    "--redis",
                    server.url,
                    "--role",
                    "server",
                    "--model-publish-interval",
                    str(args.publish_interval),
                )
                for i in range(2)
            ]
            try:
                times = asyncio.run(freshness([a for _, a in replicas], args.fresh_rewards))
            finally:
                Deployment("fresh", [learner, *(p for p, _ in replicas)], "").stop()
            ordered = sorted(times)
            results["fresh_p50_s"] = percentile(ordered, 0.50)
            results["fresh_p99_s"] = percentile(ordered, 0.99)
            results["fresh_mean_s"] = statistics.fmean(times)
        finally:
            server.stop()
    return results


def learner_goal(results: dict[str, Any]) -> list[str]:
    rate = results["learner_per_s"]
    return [
        "learner: joined events learned per second",
        f"{rate:,.0f}/s",
        f"≥ {TARGET_LEARNER:,.0f}/s",
        "PASS" if rate >= TARGET_LEARNER else "MISS",
    ]


def tables(results: dict[str, Any]) -> list[TableData]:
    if "modes" not in results:  # --only learner
        goals = TableData("Targets", ["figure", "value", "target", "result"])
        goals.rows.append(learner_goal(results))
        return [goals]
    modes = results["modes"]
    by_mode = TableData(
        "Embedded against Redis mode (c=16, examples/support.yaml, earliest)",
        [
            "mode",
            "Decide/s",
            "Reward/s",
            "server CPU µs/Decide",
            "Redis cmds/Decide",
            "Redis cmds/Reward",
        ],
    )
    for name, m in modes.items():
        by_mode.rows.append(
            [
                name,
                f"{m['decides_per_s']:,.0f}",
                f"{m['rewards_per_s']:,.0f}",
                f"{m['cpu_us_per_decide']:.0f}",
                f"{m['commands_per_decide']:.2f}" if "redis" in name else "",
                f"{m['commands_per_reward']:.2f}" if "redis" in name else "",
            ]
        )
    goals = TableData("Targets", ["figure", "value", "target", "result"])
    embedded = modes["embedded"]["cpu_us_per_decide"]
    redis_one = modes["redis, 1 worker"]["cpu_us_per_decide"]
    ratio = redis_one / embedded
    goals.rows.append(
        [
            "server CPU per Decide, Redis (1 worker) ÷ embedded",
            f"{ratio:.2f}×",
            f"≤ {TARGET_CPU_RATIO}×",
            "PASS" if ratio <= TARGET_CPU_RATIO else "MISS",
        ]
    )
    goals.rows.append(learner_goal(results))
    goals.rows.append(
        [
            "reward → its model on every replica, p50 / p99",
            f"{results['fresh_p50_s'] * 1000:.0f} / {results['fresh_p99_s'] * 1000:.0f} ms",
            "",
            "",
        ]
    )
    return [by_mode, goals]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls and events")
    parser.add_argument("--calls", type=int, help="calls per figure [4000; quick 1500]")
    parser.add_argument("--learn-events", type=int, help="learner events [40000; quick 10000]")
    parser.add_argument("--fresh-rewards", type=int, help="freshness samples [100; quick 30]")
    parser.add_argument("--publish-interval", type=float, default=1.0, help="[1.0 s]")
    parser.add_argument("--json", type=Path, help="also write every number here")
    parser.add_argument("--plain", action="store_true", help="plain text, no rich")
    parser.add_argument("--only", choices=["learner"], help="run just this part")
    args = parser.parse_args(argv)
    args.calls = args.calls or (1500 if args.quick else 4000)
    args.learn_events = args.learn_events or (10_000 if args.quick else 40_000)
    args.fresh_rewards = args.fresh_rewards or (30 if args.quick else 100)
    results = run_learner(args) if args.only == "learner" else run(args)
    render(tables(results), args.plain)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
