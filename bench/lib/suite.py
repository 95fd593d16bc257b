"""The suite's timeline, and what its sections share.

Each concern (floors, decide, rewards, durability, learning, quality, memory) is a module
whose one entry point, `section()`, says what it does at each stage of one fixed timeline:

1. `policies`: the policies it needs in the suite's config file (written once, up front);
2. `in_process`: work in this process, before any server starts (nothing else running);
3. the three servers start (`floor`, `nextbest`, `nextbest-always`); then, if they did:
   `steps`: its RPC phases (and any set-up they need), which all run in `--repeat`
   interleaved rounds, every section's steps in each round, so drift hits them alike;
   `after`: work on the servers once the rounds are done;
4. `figures`: its rows, from the phases' medians and what the stages kept in `Suite.data`;
5. the servers stop; `alone`: work that needs the machine to itself (the memory server);
6. `note`: a line printed under the tables.

A stage wraps its work in `Suite.section(name)`, so a failure is reported and the others run.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import math
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lib.floor import floor_response
from lib.load import Call, Phase, Timing, run_phase, summarize
from lib.processes import ServerPool
from lib.serve import ServeOptions
from lib.tables import Figure
from lib.traffic import DEFAULT_CONFIG, POLICY

# Typed under the repo-wide `mypy`; `mypy` on one bench file sees the editable install,
# which has no py.typed marker: hence the tolerant ignores.
from nextbest.policy.config import load_config  # type: ignore[import-untyped, unused-ignore]


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Suite:
    """One run: its settings, its servers and config, and everything it measured."""

    args: argparse.Namespace
    pool: ServerPool
    config: Path  # the suite's policy file (see write_config)
    figures: list[Figure] = field(default_factory=list)
    phases: list[Phase] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)  # every number, for --json
    errors: list[str] = field(default_factory=list)

    @contextlib.contextmanager
    def section(self, name: str) -> Iterator[None]:
        """Run a section; a failure is reported and the suite goes on."""
        progress(f"{name} …")
        started = time.perf_counter()
        try:
            yield
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            self.errors.append(f"{name}: {type(exc).__name__}: {exc}")
        self.data.setdefault("section_seconds", {})[name] = round(time.perf_counter() - started, 1)

    def add(self, *figures: Figure) -> None:
        self.figures.extend(figures)

    def median(self, key: str, metric: str) -> float:
        """A phase's metric, the median over rounds; NaN if that phase was not measured."""
        row = self.data.get("summary", {}).get(key)
        return float(row[metric]) if row is not None else math.nan

    def per_round(self, key: str, metric: str) -> list[float]:
        """A phase's metric in each round, in order."""
        return [float(getattr(p, metric)) for p in self.phases if p.key == key]

    def ran_out(self, key: str) -> str:
        """A note for a phase whose workers all hit their call cap before its end."""
        row = self.data.get("summary", {}).get(key)
        return "ran out of events" if row is not None and row.get("exhausted") else ""


@dataclass(frozen=True)
class Calls:
    """What a phase calls: `make(stub)` gives the call; `items` to cycle through; a cap."""

    make: Callable[[Any], Call]
    items: int
    max_calls: int = 1_000_000  # per worker


@dataclass(frozen=True)
class Step:
    """One phase shape on one server, measured once per round."""

    server: str  # its name in the pool
    method: str
    concurrency: int
    calls: Callable[[int], Calls]  # the round number → that round's calls
    batch: int = 1


def every_round(calls: Calls) -> Callable[[int], Calls]:
    """The same calls in every round (Decide: the requests can be sent again)."""
    return lambda _round: calls


Policies = Callable[[argparse.Namespace, dict[str, Any]], dict[str, dict[str, Any]]]


@dataclass(frozen=True)
class Section:
    """One concern's part in the timeline (see the module's docstring); all optional."""

    policies: Policies | None = None  # (args, support.next_step's policy) → policies
    in_process: Callable[[Suite], None] | None = None
    steps: Callable[[Suite], Awaitable[list[Step]]] | None = None
    after: Callable[[Suite], Awaitable[None]] | None = None
    figures: Callable[[Suite], list[Figure]] | None = None
    alone: Callable[[Suite], Awaitable[None]] | None = None
    note: Callable[[Suite], str] | None = None


def reward_variant(base: dict[str, Any], **reward: Any) -> dict[str, Any]:
    """A copy of a policy whose `reward` block differs only in the fields given."""
    policy = copy.deepcopy(base)
    policy["reward"] = {**base["reward"], **reward}
    return policy


def write_config(root: Path, args: argparse.Namespace, sections: Sequence[Section]) -> Path:
    """examples/support.yaml's policy and every section's own; checked by the service's
    own loader here, so a bad one fails with its reason rather than in a server process."""
    data = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    base: dict[str, Any] = data["policies"][POLICY]
    policies = {POLICY: base}
    for s in sections:
        if s.policies is not None:
            policies.update(s.policies(args, base))
    path = root / "bench.yaml"
    path.write_text(yaml.safe_dump({"policies": policies}, sort_keys=False), encoding="utf-8")
    load_config(path)
    return path


async def run_suite(args: argparse.Namespace, sections: Sequence[Section]) -> Suite:
    """Every section's stages, in the timeline's order; the servers are gone at the end."""
    with ServerPool(args.data_root) as pool:
        suite = Suite(args, pool, write_config(pool.root, args, sections))
        suite.data["config"] = yaml.safe_load(suite.config.read_text(encoding="utf-8"))
        for s in sections:
            if s.in_process is not None:
                s.in_process(suite)
        if start_servers(suite):
            await _on_the_servers(suite, sections)
        for s in sections:
            if s.figures is not None:
                suite.add(*s.figures(suite))
        for name in list(pool.servers):
            pool.stop(name)
        for s in sections:
            if s.alone is not None:
                await s.alone(suite)
    return suite


def start_servers(suite: Suite) -> bool:
    """The floor, nextbest (`fsync: interval`) and nextbest-always; True if all started."""
    pool, config = suite.pool, str(suite.config)
    floor = floor_response().SerializeToString()
    with suite.section("starting servers"):
        pool.start("floor", ServeOptions("floor", floor_response=floor))
        pool.start("nextbest", ServeOptions("nextbest", config=config))
        pool.start("nextbest-always", ServeOptions("nextbest", config=config, fsync="always"))
        suite.data["idle_rss"] = {name: pool[name].rss_bytes() for name in pool.servers}
    return "nextbest-always" in pool


async def _on_the_servers(suite: Suite, sections: Sequence[Section]) -> None:
    steps: list[Step] = []
    for s in sections:
        if s.steps is not None:
            steps += await s.steps(suite)
    if steps:
        await run_rounds(suite, steps)
    for s in sections:
        if s.after is not None:
            await s.after(suite)
    suite.data["summary"] = summarize(suite.phases)


async def run_rounds(suite: Suite, steps: Sequence[Step]) -> None:
    """`--repeat` rounds, each running every step once, in order."""
    args = suite.args
    with suite.section("Decide, DecideBatch and Reward phases"):
        for round_no in range(args.repeat):
            for step in steps:
                server = suite.pool[step.server]
                progress(
                    f"  round {round_no + 1}/{args.repeat}: {server.name} {step.method} "
                    f"c={step.concurrency} …"
                )
                calls = step.calls(round_no)
                timing = Timing(args.warmup, args.seconds, calls.max_calls)
                p = await run_phase(
                    server,
                    step.method,
                    step.concurrency,
                    timing,
                    calls.make,
                    calls.items,
                    batch=step.batch,
                    round_no=round_no,
                )
                suite.phases.append(p)
                if p.errors:
                    suite.errors.append(f"{p.key}: {p.errors} errors, e.g. {p.error_sample}")
