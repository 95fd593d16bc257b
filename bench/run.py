"""The nextbest benchmark suite: every figure the issues ask for, each against a floor
measured in the same run on the same machine.

    .venv/bin/python bench/run.py                 # ≈ 2.5-3 minutes
    .venv/bin/python bench/run.py --quick         # ≈ 35 s, shorter phases and fewer events
    .venv/bin/python bench/run.py --json FILE     # also write every number to FILE

It reports and never gates: PASS/MISS per target, exit status 0 (a section that fails is
reported as an error and the others still run). This is the command: the sections are
modules, each with one entry point, `section()`, run on one timeline (lib/suite.py):

1. floors.py: raw VW in this process (pyvw, and the service's own Model), and the bare
   grpc.aio floor server's figures;
2. decide.py: Decide c=1 p50/p99, c=16 and c=64, DecideBatch (100 per call);
   rewards.py: Reward ingest at c=16 (`sum`: the joins stay pending; `earliest`: each
   reward closes and learns its event); learning.py: in process (`Engine.settle_due` over N
   due events) and through the server (N decisions, 200 ms window, no rewards);
3. durability.py: the disk's fsync latency, and `fsync: always` against `fsync: interval`;
4. memory.py: a fresh server's RSS idle and with N pending events;
5. quality.py: seeded synthetic streams through raw VW, nextbest's model in process and
   the service; the progressive reward of each.

The RPC phases run `--repeat` interleaved rounds (floor, nextbest, nextbest-always for each
shape), and the tables show medians. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import decide
import durability
import floors
import learning
import memory
import quality
import rewards
from lib.host import host_info, load_average
from lib.suite import Section, Suite, run_suite
from lib.tables import TableData, figure_tables, phase_table, render, render_markdown

# (flag, default, quick default, help): sizes that --quick shrinks
SIZES: tuple[tuple[str, type[int] | type[float], float, float, str], ...] = (
    ("seconds", float, 2.0, 1.0, "measured seconds per RPC phase (2; quick 1)"),
    ("warmup", float, 0.5, 0.3, "unmeasured seconds before each (0.5; quick 0.3)"),
    ("repeat", int, 3, 1, "rounds of RPC phases, medians shown (3; quick 1)"),
    ("vw-events", int, 15_000, 3_000, "events per raw VW floor (15,000; quick 3,000)"),
    ("learn-events", int, 20_000, 5_000, "events per learning figure (20,000; 5,000)"),
    ("memory-events", int, 100_000, 30_000, "pending events measured (100,000; 30,000)"),
    ("quality-rounds", int, 5_000, 2_000, "rounds per seed (5,000; quick 2,000)"),
    ("quality-seeds", int, 3, 1, "seeds of the stream, pooled (3; quick 1)"),
)
POSITIVE = (
    "seconds",
    "repeat",
    "batch_size",
    "batch_concurrency",
    "reward_concurrency",
    "vw_events",
    "learn_events",
    "memory_events",
    "quality_rounds",
    "quality_seeds",
)


# Every section, in timeline order: it decides the order of work within each stage, and of
# the rows in each table.
SECTIONS: dict[str, Callable[[], Section]] = {
    "floors": floors.section,
    "decide": decide.section,
    "rewards": rewards.section,
    "durability": durability.section,
    "learning": learning.section,
    "quality": quality.section,
    "memory": memory.section,
}


def sections(only: Sequence[str] = ()) -> list[Section]:
    """The sections named (all by default), in timeline order."""
    return [make() for name, make in SECTIONS.items() if not only or name in only]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--quick", action="store_true", help="≈ 40 s: shorter phases, fewer events")
    for flag, kind, _, _, text in SIZES[:3]:
        p.add_argument(f"--{flag}", type=kind, help=text)
    p.add_argument("--batch-size", type=int, default=100, help="requests per DecideBatch")
    p.add_argument("--batch-concurrency", type=int, default=2, help="DecideBatch calls in flight")
    p.add_argument("--reward-concurrency", type=int, default=16, help="Reward calls in flight")
    for flag, kind, _, _, text in SIZES[3:]:
        p.add_argument(f"--{flag}", type=kind, help=text)
    p.add_argument("--quality-seed", type=int, default=1, help="the first seed")
    p.add_argument("--quality-delay", type=int, default=50, help="rewards sent K rounds late")
    p.add_argument("--data-root", type=Path, default=None, help="where temporary data dirs go")
    p.add_argument("--json", type=Path, default=None, metavar="FILE", help="write results here")
    p.add_argument("--plain", action="store_true", help="plain text, not rich")
    p.add_argument("--markdown", action="store_true", help="also print markdown tables")
    return p


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = parser()
    args = p.parse_args(argv)
    for flag, _, full, quick, _ in SIZES:
        name = flag.replace("-", "_")
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    for name in POSITIVE:
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be positive")
    if args.warmup < 0 or args.quality_delay < 0:
        p.error("--warmup and --quality-delay must not be negative")
    return args


def main(argv: Sequence[str] | None = None, only: Sequence[str] = ()) -> int:
    """The suite, or only the sections named (a section module run as a script)."""
    args = parse_args(argv)
    load_before = load_average()
    started = time.perf_counter()
    date = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    chosen = sections(only)
    try:
        suite = asyncio.run(run_suite(args, chosen))
    except Exception as exc:  # it reports; it does not gate
        traceback.print_exc()
        print(f"the suite could not run: {type(exc).__name__}: {exc}")
        return 0
    results = {
        "date": date,
        "host": host_info(),
        "load_average": {"before": load_before, "after": load_average()},
        "wall_seconds": round(time.perf_counter() - started, 1),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "figures": [f.row() for f in suite.figures],
        "errors": suite.errors,
        **suite.data,
        "phases": [asdict(p) for p in suite.phases],
    }
    report(suite, chosen, results)
    return 0


def report(suite: Suite, chosen: Sequence[Section], results: dict[str, Any]) -> None:
    """The header, the tables, the sections' notes, the errors; the JSON if asked for."""
    args, host, la = suite.args, results["host"], results["load_average"]
    print(
        f"nextbest benchmark suite, {results['date']}: nproc={host['nproc']} ({host['cpu']}), "
        f"Python {host['python']}, grpcio {host['grpcio']}; git {host['git'] or 'n/a'}; "
        f"RPC phases: {args.repeat} round(s) of {args.seconds:g} s after {args.warmup:g} s "
        f"warm-up, medians shown; load average before {la['before']}, after {la['after']}; "
        f"{results['wall_seconds']:g} s in all"
    )
    tables = tables_of(suite)
    render(tables, args.plain)
    for s in chosen:
        note = s.note(suite) if s.note is not None else ""
        if note:
            print(note)
    if args.markdown:
        render_markdown(tables, sys.stdout)
    for error in suite.errors:
        print(f"ERROR {error}")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2, allow_nan=True) + "\n")
        print(f"wrote {args.json}")


def tables_of(suite: Suite) -> list[TableData]:
    """One table per section, in section order, then every RPC phase's medians."""
    tables = figure_tables(sorted(suite.figures, key=lambda f: f.section))
    if suite.data.get("summary"):
        title = "RPC phases (per call; CPU as a share of one core)"
        tables.append(phase_table(suite.data["summary"], title))
    return tables


if __name__ == "__main__":
    sys.exit(main())
