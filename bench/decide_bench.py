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
import datetime as dt
import io
import json
import math
import pstats
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lib.floor import floor_response
from lib.host import host_info, load_average
from lib.load import Phase, Timing, batch_call, decide_call, run_phase, sample_sizes, summarize
from lib.processes import ServerPool, ServerProcess
from lib.serve import ServeOptions
from lib.tables import TableData, phase_table, render, render_markdown
from lib.targets import BATCH_DECISIONS, P50_OVERHEAD_MS, THROUGHPUT_RATIO
from lib.traffic import DEFAULT_CONFIG, POLICY, make_batches, make_requests

from nextbest_client.v1 import decision_pb2 as pb


async def measure(
    server: ServerProcess,
    method: str,
    concurrency: int,
    args: argparse.Namespace,
    requests: Sequence[pb.DecideRequest],
    batches: Sequence[pb.DecideBatchRequest],
    round_no: int,
) -> Phase:
    timing = Timing(args.warmup, args.seconds, args.max_calls)
    if method == "Decide":
        return await run_phase(
            server,
            method,
            concurrency,
            timing,
            lambda stub: decide_call(stub, requests),
            len(requests),
            round_no=round_no,
        )
    return await run_phase(
        server,
        method,
        concurrency,
        timing,
        lambda stub: batch_call(stub, batches),
        len(batches),
        batch=args.batch_size,
        round_no=round_no,
    )


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
            "goal": f"≥ {THROUGHPUT_RATIO}",
            "pass": ratio >= THROUGHPUT_RATIO,
            "shown": f"{ratio:.2f}",
        },
        {
            "name": "Decide p50 c=1 − floor p50 c=1",
            "value": overhead,
            "goal": f"≤ {P50_OVERHEAD_MS} ms",
            "pass": overhead <= P50_OVERHEAD_MS,
            "shown": f"{overhead:.3f} ms",
        },
        {
            "name": "DecideBatch decisions/s",
            "value": batch,
            "goal": f"≥ {BATCH_DECISIONS:,.0f}",
            "pass": batch >= BATCH_DECISIONS,
            "shown": f"{batch:,.0f}",
        },
    ]
    return out


def build_tables(
    summary: dict[str, dict[str, Any]], goals: list[dict[str, Any]]
) -> list[TableData]:
    results = phase_table(summary, "Results (latency per call; CPU as a share of one core)")
    target_table = TableData("Targets", ["target", "measured", "goal", "result"])
    for g in goals:
        verdict = "PASS" if g["pass"] else "MISS"
        target_table.rows.append([g["name"], g["shown"], g["goal"], verdict])
    return [results, target_table]


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


def start_servers(servers: ServerPool, args: argparse.Namespace, floor: bytes) -> None:
    """The floor, nextbest (profiled with --profile) and, unless told not to, nextbest
    logging every decision at info level into /dev/null."""
    servers.start("floor", ServeOptions("floor", floor_response=floor))
    servers.start(
        "nextbest",
        ServeOptions(
            "nextbest",
            config=str(args.config),
            profile=str(args.profile) if args.profile else "",
        ),
    )
    if not args.no_info_logging:
        servers.start(
            "nextbest-info",
            ServeOptions(
                "nextbest", config=str(args.config), log_level="info", log_to_devnull=True
            ),
        )


def plan(args: argparse.Namespace, servers: ServerPool) -> list[tuple[str, str, int]]:
    """(server, method, concurrency) in the order each round runs them: the servers
    alternate for each shape, so slow drift affects them all alike."""
    out: list[tuple[str, str, int]] = []
    for conc in (1, args.concurrency):
        out += [("floor", "Decide", conc), ("nextbest", "Decide", conc)]
        if "nextbest-info" in servers:
            out.append(("nextbest-info", "Decide", conc))
    out += [
        ("floor", "DecideBatch", args.batch_concurrency),
        ("nextbest", "DecideBatch", args.batch_concurrency),
    ]
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    requests = make_requests(48)
    batches = make_batches(requests, args.batch_size, 16)
    floor = floor_response()
    phases: list[Phase] = []
    high = args.concurrency
    batch_key = f"nextbest/DecideBatch/b{args.batch_size}xc{args.batch_concurrency}"
    with ServerPool() as servers:
        start_servers(servers, args, floor.SerializeToString())
        sizes = await sample_sizes(servers["nextbest"], requests)
        sizes["floor_response_bytes"] = floor.ByteSize()
        steps = plan(args, servers)
        for round_no in range(args.repeat):
            for name, method, conc in steps:
                print(
                    f"  round {round_no + 1}/{args.repeat}: {name} {method} c={conc} …",
                    file=sys.stderr,
                    flush=True,
                )
                phases.append(
                    await measure(servers[name], method, conc, args, requests, batches, round_no)
                )
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
