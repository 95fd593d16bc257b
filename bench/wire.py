"""Issue 15's figures ("Decide at the speed of the wire"), each against floors measured in
the same run on the same machine.

    .venv/bin/python bench/wire.py                # ≈ 2.5 min: 2 interleaved rounds
    .venv/bin/python bench/wire.py --quick        # ≈ 1 min: 1 round, shorter phases
    .venv/bin/python bench/wire.py --json FILE --markdown

It reports and never gates: PASS/MISS per target, exit status 0. Three floors, each a bare
DecisionService on the same grpcio answering fixed bytes (no parsing, no serializing):
grpc.aio on the default asyncio loop, grpc.aio on uvloop, and the synchronous grpc server with
a thread pool. For each: Decide throughput at c=16, p50 at c=1, and the server's CPU per call
(utime + stime of its process from /proc, before and after a fixed number of calls at c=16).

nextbest runs on two policies: `bench.agent`, the realistic agent request of issue 15 (5
catalog actions, `--cb_explore_adf -q ::`, one CEL rule on one action, a context of 10
features: 8 texts, one number, one flag), and `support.next_step` (examples/support.yaml,
4 features), the light one. Both log at the default level (info), into /dev/null.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import functools
import itertools
import json
import math
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import yaml
from lib.host import host_info, load_average
from lib.load import (
    CALL_TIMEOUT,
    Call,
    Phase,
    Timing,
    batch_call,
    decide_call,
    drive,
    percentile,
    reward_call,
    run_phase,
    summarize,
    timed,
)
from lib.processes import ServerPool, ServerProcess, connect
from lib.serve import ServeOptions
from lib.tables import TableData, render, render_markdown
from lib.traffic import DEFAULT_CONFIG, INTENTS, POLICY, make_batches, make_requests

from nextbest_client.v1 import decision_pb2 as pb

AGENT = "bench.agent"
FLOORS = {
    "floor-aio": "grpc.aio, default loop",
    "floor-uvloop": "grpc.aio, uvloop",
    "floor-sync": "grpc.server, thread pool",
}
TARGET_CPU_RATIO = 1.5
TARGET_THROUGHPUT_RATIO = 0.8
TARGET_P50_OVERHEAD_MS = 0.25
TARGET_BATCH = 25_000.0
TARGET_REWARD_RATIO = 0.8
TARGET_CHECKPOINT_RATIO = 2.0
AGENT_POLICY: dict[str, Any] = {
    "actions": [
        {"id": "ask_details", "features": {"kind": "info"}},
        {"id": "send_article", "features": {"kind": "self_serve"}},
        {"id": "offer_refund", "features": {"kind": "money"}},
        {"id": "transfer_billing", "features": {"kind": "human"}},
        {"id": "escalate_human", "features": {"kind": "human"}},
    ],
    "fallback_action": "escalate_human",
    "exploration": {"epsilon": 0.1, "max_epsilon": 0.3},
    "safety": [
        {
            "name": "refund_limits",
            "actions": ["offer_refund"],
            "deny_when": "context.order_value > 200.0 || !context.returning_customer",
            "reason": "refunds only for returning customers, at most 200",
        }
    ],
    "reward": {"wait": "10m", "default": 0.0, "aggregation": "earliest", "clip": [-1, 1]},
    "vw_args": "--cb_explore_adf -q ::",
    "mode": "online",
}
TEXTS = {
    "plan": ("free", "pro", "team", "enterprise"),
    "channel": ("chat", "email", "voice", "web"),
    "language": ("en", "de", "fr", "es", "ja"),
    "region": ("emea", "amer", "apac"),
    "product": ("billing", "api", "dashboard", "mobile"),
    "sentiment": ("calm", "annoyed", "angry"),
    "segment": ("smb", "mid", "large"),
    "topic": ("invoice", "charge", "password", "outage", "upgrade"),
}


def agent_requests(n: int, seed: int = 5) -> list[pb.DecideRequest]:
    """The realistic request: 8 texts, one number, one flag."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        context = {k: pb.Value(text=rng.choice(v)) for k, v in TEXTS.items()}
        context["order_value"] = pb.Value(number=round(rng.uniform(5.0, 400.0), 2))
        context["returning_customer"] = pb.Value(flag=rng.random() < 0.7)
        out.append(
            pb.DecideRequest(policy=AGENT, intent=INTENTS[i % len(INTENTS)], context=context)
        )
    return out


def write_config(root: Path) -> Path:
    data = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    policies = {POLICY: data["policies"][POLICY], AGENT: AGENT_POLICY}
    path = root / "wire.yaml"
    path.write_text(yaml.safe_dump({"policies": policies}, sort_keys=False), encoding="utf-8")
    return path


# -- measurements -----------------------------------------------------------------------------


async def _fixed(call: Call, n_items: int, calls: int, concurrency: int) -> int:
    """Exactly `calls` calls, `concurrency` in flight; decisions made."""
    counter = itertools.count()
    made = 0

    async def worker() -> None:
        nonlocal made
        while (i := next(counter)) < calls:
            got = await call(i % n_items)  # not `made += await …`: that reads made first
            made += got

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return made


@dataclass
class CpuFigure:
    server: str
    what: str
    calls: int
    decisions: int
    cpu_us_per_call: float
    cpu_us_per_decision: float
    calls_per_s: float
    coalesced: float = math.nan  # share of the calls decided in a batch that waited
    per_batch: float = math.nan  # calls per such batch


async def cpu_per_call(
    server: ServerProcess,
    what: str,
    make_call: Callable[[Any], Call],
    n_items: int,
    calls: int,
    concurrency: int = 16,
) -> CpuFigure:
    """The server's CPU (all threads, user + system) over a fixed number of calls."""
    async with connect(server) as stub:
        call = make_call(stub)
        await _fixed(call, n_items, max(calls // 5, concurrency), concurrency)  # warm-up
        was = server.stats().get("coalescer")
        before, t0 = server.cpu_seconds(), time.perf_counter()
        made = await _fixed(call, n_items, calls, concurrency)
        after, wall = server.cpu_seconds(), time.perf_counter() - t0
        now = server.stats().get("coalescer")
    used = (after - before) if after is not None and before is not None else math.nan
    fig = CpuFigure(
        server.name, what, calls, made, used / calls * 1e6, used / made * 1e6, calls / wall
    )
    if was and now and now["calls"] > was["calls"]:
        coalesced, batches = now["coalesced"] - was["coalesced"], now["batches"] - was["batches"]
        fig.coalesced = coalesced / (now["calls"] - was["calls"])
        fig.per_batch = coalesced / batches if batches else math.nan
    return fig


@dataclass
class Window:
    checkpoint: bool
    calls: int
    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    checkpoint_ms: float | None


async def latency_window(
    server: ServerProcess,
    requests: Sequence[pb.DecideRequest],
    rewards: Sequence[pb.RewardRequest],
    timing: Timing,
    checkpoint: bool,
) -> Window:
    """Decide at c=16 for a window; first a few rewards (so that the model has something
    to save); with `checkpoint`, one forced on the server's loop half-way through."""
    async with connect(server) as stub:
        for r in rewards:
            await stub.Reward(r, timeout=CALL_TIMEOUT)

        async def poke() -> None:
            await asyncio.sleep(timing.warmup + timing.seconds / 2)
            server.start_checkpoint()

        poker = asyncio.create_task(poke()) if checkpoint else None
        d = await drive(decide_call(stub, requests), len(requests), 16, timing, server)
        if poker is not None:
            await poker
    took = server.checkpoint_seconds() if checkpoint else None
    lat = sorted(d.latencies)
    return Window(
        checkpoint,
        len(lat),
        percentile(lat, 0.5) * 1e3,
        percentile(lat, 0.99) * 1e3,
        percentile(lat, 0.999) * 1e3,
        lat[-1] * 1e3 if lat else math.nan,
        None if took is None else took * 1e3,
    )


async def predecide(
    server: ServerProcess, requests: Sequence[pb.DecideRequest], n: int
) -> list[str]:
    ids: list[str] = []
    async with connect(server) as stub:
        for batch in make_batches(requests, 100, math.ceil(n / 100)):
            resp: pb.DecideBatchResponse = await stub.DecideBatch(batch, timeout=CALL_TIMEOUT)
            ids += [r.decision.event_id for r in resp.results if r.WhichOneof("result")]
    return ids[:n]


def in_process(root: Path, n: int) -> dict[str, float]:
    """µs per decision in this process, no gRPC: `Engine.decide`, and the servicer's whole
    path (parse the request bytes, convert, decide, convert back, serialize), on a durable
    store in its own directory, logging at info into /dev/null. Median of 3 chunks."""
    import os

    from nextbest.api import convert
    from nextbest.observability.logging import configure
    from nextbest.observability.metrics import Metrics, Telemetry
    from nextbest.policy.config import load_config
    from nextbest.policy.engine import Engine
    from nextbest.policy.ports import run_now
    from nextbest.store.durable import Durability, open_store

    out: dict[str, float] = {}
    with open(os.devnull, "wb") as devnull:
        configure("info", devnull)
        config = load_config(write_config(root))
        store, models, _ = open_store(root / "in-process", config, Durability(), 50_000)
        engine = Engine(config, store, Telemetry(Metrics()), time.time, models=models)
        try:
            for kind, reqs in (("agent", agent_requests(48)), ("light", make_requests(48))):
                inputs = [convert.decide_input(r) for r in reqs]
                wire = [r.SerializeToString() for r in reqs]

                def decide(i: int, inputs: list[Any] = inputs) -> None:
                    run_now(engine.decide(inputs[i % 48]))

                def whole(i: int, wire: list[bytes] = wire) -> None:
                    req = pb.DecideRequest.FromString(wire[i % 48])
                    event = run_now(engine.decide(convert.decide_input(req)))
                    convert.decide_response(event).SerializeToString()

                for name, fn in (("Engine.decide", decide), ("servicer path", whole)):
                    out[f"{name}, {kind}"] = timed(fn, n)
        finally:
            engine.shutdown()
            store.shutdown()
    return out


# -- the run ----------------------------------------------------------------------------------


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    agent, light = agent_requests(48), make_requests(48)
    batches = {"agent": make_batches(agent, 64, 16), "light": make_batches(light, 64, 16)}
    requests = {"agent": agent, "light": light}
    timing = Timing(args.warmup, args.seconds)
    phases: list[Phase] = []
    cpu: list[CpuFigure] = []
    windows: list[Window] = []
    with ServerPool() as pool:
        inproc = in_process(pool.root, args.in_process) if args.in_process else {}
        if args.in_process_only:
            return {"in_process": inproc}
        config = write_config(pool.root)
        nb_opts = ServeOptions(
            "nextbest",
            config=str(config),
            log_level="info",
            log_to_devnull=True,
            checkpoint_interval=1e6,  # only the windows' forced checkpoints
            checkpoint_every=10**9,
            loop="uvloop",  # as `nextbest serve` runs by default
        )
        nb = pool.start("nextbest", nb_opts)
        servers = [nb]
        if args.asyncio_nextbest:
            servers.append(pool.start("nextbest-asyncio", replace(nb_opts, loop="asyncio")))
        async with connect(nb) as stub:  # the floors answer with a real response's bytes
            sample: pb.DecideResponse = await stub.Decide(agent[0], timeout=CALL_TIMEOUT)
        body = sample.SerializeToString()
        floors = {
            "floor-aio": pool.start("floor-aio", ServeOptions("floor-bytes", floor_response=body)),
            "floor-uvloop": pool.start(
                "floor-uvloop", ServeOptions("floor-bytes", floor_response=body, loop="uvloop")
            ),
            "floor-sync": pool.start(
                "floor-sync",
                ServeOptions("floor-sync", floor_response=body, workers=args.sync_workers),
            ),
        }
        rounds = args.repeat
        per_reward_phase = int(args.reward_rate * (args.warmup + args.seconds))
        progress(f"deciding {per_reward_phase * rounds + 100 * rounds:,} events to reward …")
        reward_ids = await predecide(nb, agent, per_reward_phase * rounds + 100 * rounds)
        reward_reqs = [pb.RewardRequest(event_id=e, value=0.5) for e in reward_ids]
        window_rewards = reward_reqs[per_reward_phase * rounds :]
        reward_reqs = reward_reqs[: per_reward_phase * rounds]

        def decide(kind: str) -> Callable[[Any], Call]:
            return lambda stub: decide_call(stub, requests[kind])

        def batch(kind: str) -> Callable[[Any], Call]:
            return lambda stub: batch_call(stub, batches[kind])

        for r in range(rounds):
            progress(f"round {r + 1}/{rounds}")
            for name, server in [*floors.items(), *((s.name, s) for s in servers)]:
                kinds = ("agent", "light") if server is nb else ("agent",)
                for kind in kinds:
                    progress(f"  {name} {kind}: CPU per call, c=16, c=1 …")
                    cpu.append(await cpu_per_call(server, kind, decide(kind), 48, args.cpu_calls))
                    for conc in (16, 1):
                        p = await run_phase(
                            server, f"Decide-{kind}", conc, timing, decide(kind), 48, round_no=r
                        )
                        phases.append(p)
            for kind in ("agent", "light"):
                progress(f"  nextbest DecideBatch {kind} …")
                phases.append(
                    await run_phase(
                        nb, f"DecideBatch-{kind}", 2, timing, batch(kind), 16, batch=64, round_no=r
                    )
                )
                cpu.append(
                    await cpu_per_call(
                        nb, f"batch-{kind}", batch(kind), 16, args.cpu_calls // 64, 2
                    )
                )
            progress("  nextbest Reward earliest …")
            share = reward_reqs[r * per_reward_phase : (r + 1) * per_reward_phase]
            phases.append(
                await run_phase(
                    nb,
                    "Reward-earliest",
                    16,
                    Timing(args.warmup, args.seconds, len(share) // 16),
                    functools.partial(reward_call, rewards=share),
                    len(share),
                    round_no=r,
                )
            )
            mine = window_rewards[r * 100 : (r + 1) * 100]
            for with_checkpoint in (False, True):
                progress(f"  nextbest latency window, checkpoint={with_checkpoint} …")
                half = mine[:50] if with_checkpoint else mine[50:]
                windows.append(
                    await latency_window(
                        nb, agent, half, Timing(args.warmup, args.window_seconds), with_checkpoint
                    )
                )
    return {
        "in_process": inproc,
        "summary": summarize(phases),
        "cpu": cpu,
        "windows": windows,
        "phases": [asdict(p) for p in phases],
    }


# -- tables -----------------------------------------------------------------------------------


def _median(xs: Sequence[float]) -> float:
    xs = [x for x in xs if x is not None and not math.isnan(x)]
    return statistics.median(xs) if xs else math.nan


def figures(results: dict[str, Any]) -> tuple[list[TableData], list[dict[str, Any]]]:
    summary: dict[str, dict[str, Any]] = results["summary"]
    cpu: list[CpuFigure] = results["cpu"]
    windows: list[Window] = results["windows"]

    def rate(server: str, rpc: str, conc: int, metric: str = "calls_per_s") -> float:
        row = summary.get(f"{server}/{rpc}/c{conc}")
        return float(row[metric]) if row else math.nan

    def cpu_us(server: str, what: str, per: str = "cpu_us_per_call") -> float:
        return _median([getattr(c, per) for c in cpu if c.server == server and c.what == what])

    floor_table = TableData(
        "Floors: bare DecisionService answering fixed bytes (same grpcio, same run)",
        ["floor", "Decide c=16 calls/s", "p50 c=1 ms", "p99 c=1 ms", "server CPU µs/call"],
    )
    floor = {}
    for name, label in FLOORS.items():
        f = {
            "tput": rate(name, "Decide-agent", 16),
            "p50": rate(name, "Decide-agent", 1, "p50_ms"),
            "cpu": cpu_us(name, "agent"),
        }
        floor[name] = f
        floor_table.rows.append(
            [
                f"{name} ({label})",
                f"{f['tput']:,.0f}",
                f"{f['p50']:.3f}",
                f"{rate(name, 'Decide-agent', 1, 'p99_ms'):.3f}",
                f"{f['cpu']:.0f}",
            ]
        )
    best_tput = max(floor, key=lambda n: floor[n]["tput"])
    best_p50 = min(floor, key=lambda n: floor[n]["p50"])
    best_cpu = min(floor, key=lambda n: floor[n]["cpu"])
    goals: list[dict[str, Any]] = []
    table = TableData(
        "nextbest against the best floor of each figure",
        ["figure", "value", "floor", "ratio / diff", "target", "result"],
    )

    def add(name: str, value: str, fl: str, ratio: str, target: str, ok: bool | None) -> None:
        verdict = "" if ok is None else ("PASS" if ok else "MISS")
        table.rows.append([name, value, fl, ratio, target, verdict])
        goals.append({"name": name, "value": value, "floor": fl, "ratio": ratio, "pass": ok})

    fc = floor[best_cpu]["cpu"]
    for server in ("nextbest", "nextbest-asyncio"):
        for kind in ("agent", "light"):
            v = cpu_us(server, kind)
            if math.isnan(v):
                continue
            share = cpu_us(server, kind, "coalesced")
            joined = (
                ""
                if math.isnan(share)
                else f" [{share:.0%} of calls coalesced, "
                f"{cpu_us(server, kind, 'per_batch'):.1f} per batch]"
            )
            add(
                f"{server} server CPU per Decide, {kind}{joined}",
                f"{v:.0f} µs",
                f"{fc:.0f} µs ({best_cpu})",
                f"{v / fc:.2f}×",
                f"≤ {TARGET_CPU_RATIO}×",
                v / fc <= TARGET_CPU_RATIO if server == "nextbest" else None,
            )
    ft = floor[best_tput]["tput"]
    for server in ("nextbest", "nextbest-asyncio"):
        for kind in ("agent", "light"):
            v = rate(server, f"Decide-{kind}", 16)
            if math.isnan(v):
                continue
            add(
                f"{server} Decide throughput c=16, {kind}",
                f"{v:,.0f}/s",
                f"{ft:,.0f}/s ({best_tput})",
                f"{v / ft:.2f}×",
                f"≥ {TARGET_THROUGHPUT_RATIO}×",
                v / ft >= TARGET_THROUGHPUT_RATIO if server == "nextbest" else None,
            )
    fp = floor[best_p50]["p50"]
    for kind in ("agent", "light"):
        v = rate("nextbest", f"Decide-{kind}", 1, "p50_ms")
        add(
            f"nextbest Decide p50 c=1, {kind}",
            f"{v:.3f} ms",
            f"{fp:.3f} ms ({best_p50})",
            f"+{v - fp:.3f} ms",
            f"≤ floor + {TARGET_P50_OVERHEAD_MS} ms",
            v - fp <= TARGET_P50_OVERHEAD_MS,
        )
    for kind in ("agent", "light"):
        row = summary.get(f"nextbest/DecideBatch-{kind}/b64xc2")
        v = float(row["decisions_per_s"]) if row else math.nan
        per = cpu_us("nextbest", f"batch-{kind}", "cpu_us_per_decision")
        add(
            f"nextbest DecideBatch (64 per call, c=2), {kind} [server CPU {per:.0f} µs/decision]",
            f"{v:,.0f}/s",
            "",
            "",
            f"≥ {TARGET_BATCH:,.0f}/s",
            v >= TARGET_BATCH,
        )
    rw = rate("nextbest", "Reward-earliest", 16)
    dv = rate("nextbest", "Decide-agent", 16)
    add(
        "nextbest Reward c=16, earliest (closes + learns) / Decide c=16, agent",
        f"{rw:,.0f}/s",
        f"{dv:,.0f}/s (Decide)",
        f"{rw / dv:.2f}×",
        f"≥ {TARGET_REWARD_RATIO}×",
        rw / dv >= TARGET_REWARD_RATIO,
    )
    with_ck = [w for w in windows if w.checkpoint]
    without = [w for w in windows if not w.checkpoint]
    a = _median([w.p999_ms for w in with_ck])
    b = _median([w.p999_ms for w in without])
    took = _median([w.checkpoint_ms for w in with_ck if w.checkpoint_ms is not None])
    add(
        f"nextbest Decide p99.9 c=16, window with a checkpoint [it took {took:.1f} ms on the "
        f"loop; max {_median([w.max_ms for w in with_ck]):.1f} ms vs "
        f"{_median([w.max_ms for w in without]):.1f} ms]",
        f"{a:.2f} ms",
        f"{b:.2f} ms (no checkpoint)",
        f"{a / b:.2f}×",
        f"≤ {TARGET_CHECKPOINT_RATIO}×",
        a / b <= TARGET_CHECKPOINT_RATIO,
    )
    phase_rows = TableData(
        "Phases (medians over rounds; CPU as a share of one core)",
        ["phase", "calls/s", "decisions/s", "p50 ms", "p99 ms", "server CPU", "client CPU"],
    )
    for key, row in summary.items():
        phase_rows.rows.append(
            [
                key,
                f"{row['calls_per_s']:,.0f}",
                f"{row['decisions_per_s']:,.0f}",
                f"{row['p50_ms']:.3f}",
                f"{row['p99_ms']:.3f}",
                "n/a" if row["server_cpu"] is None else f"{row['server_cpu'] * 100:.0f}%",
                f"{row['client_cpu'] * 100:.0f}%",
            ]
        )
    return [floor_table, table, phase_rows], goals


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--quick", action="store_true", help="1 round of 1 s phases")
    p.add_argument("--seconds", type=float, default=None, help="measured seconds per phase")
    p.add_argument("--warmup", type=float, default=None, help="unmeasured seconds before each")
    p.add_argument("--repeat", type=int, default=None, help="interleaved rounds (medians)")
    p.add_argument("--cpu-calls", type=int, default=None, help="calls per CPU figure")
    p.add_argument("--window-seconds", type=float, default=3.0, help="each latency window")
    p.add_argument("--sync-workers", type=int, default=16, help="the sync floor's threads")
    p.add_argument("--reward-rate", type=float, default=5000.0, help="rewards/s to plan for")
    p.add_argument(
        "--asyncio-nextbest",
        action="store_true",
        help="also nextbest on the default asyncio loop (informative)",
    )
    p.add_argument("--in-process", type=int, default=5000, help="decisions per chunk (0: skip)")
    p.add_argument("--in-process-only", action="store_true", help="only the in-process figures")
    p.add_argument("--json", type=Path, default=None, metavar="FILE", help="write results here")
    p.add_argument("--plain", action="store_true", help="plain text, not rich")
    p.add_argument("--markdown", action="store_true", help="also print markdown tables")
    args = p.parse_args(argv)
    quick = args.quick
    args.seconds = args.seconds or (1.0 if quick else 2.0)
    args.warmup = args.warmup if args.warmup is not None else (0.3 if quick else 0.5)
    args.repeat = args.repeat or (1 if quick else 2)
    args.cpu_calls = args.cpu_calls or (2000 if quick else 4000)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = load_average()
    started = time.perf_counter()
    results = asyncio.run(run(args))
    host = host_info()
    load_after = load_average()
    inproc = TableData("In process, no gRPC (µs per decision)", ["path", "µs"])
    inproc.rows = [[k, f"{v:.1f}"] for k, v in results["in_process"].items()]
    tables, goals = figures(results) if "summary" in results else ([], [])
    tables.insert(0, inproc)
    print(
        f"nextbest wire bench, {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}: "
        f"nproc={host['nproc']} ({host['cpu']}), Python {host['python']}, grpcio "
        f"{host['grpcio']}; {args.repeat} round(s) of {args.seconds:g} s phases, "
        f"{args.cpu_calls} calls per CPU figure; {time.perf_counter() - started:.0f} s; "
        f"git {host['git'] or 'n/a'}; load average before {load_before}, after {load_after}"
    )
    render(tables, args.plain)
    if args.markdown:
        render_markdown(tables, sys.stdout)
    if args.json is not None:
        out = {
            "host": host,
            "load_average": {"before": load_before, "after": load_after},
            "in_process": results["in_process"],
            "targets": goals,
            "summary": results.get("summary"),
            "cpu": [asdict(c) for c in results.get("cpu", [])],
            "windows": [asdict(w) for w in results.get("windows", [])],
            "phases": results.get("phases", []),
        }
        args.json.write_text(json.dumps(out, indent=2, allow_nan=True) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
