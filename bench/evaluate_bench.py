"""`nextbest evaluate` throughput on a realistic decision log, against floors from the same run.

Run on demand (it is not a test, and it never fails the build):

    .venv/bin/python bench/evaluate_bench.py [--events 50000] [--repeat 3] [--json out.json]

The log: N events of the support scenario written by nextbest's own DSJSON writer
(``nextbest.store.dsjson.line``, ``_nextbest`` record included, ≈ 2.3 KB a line), decided
ε-greedy (ε = 0.2) around the scenario's rule, with the scenario's raw reward signals. Each
phase reads the same file from the page cache. Phases are interleaved (``--repeat`` rounds
of all of them) and medians shown, with each phase's median ratio to the JSON floor of the
same round: steadier than the rates on a shared machine.

- floor, JSON: ``orjson.loads`` of every line, nothing else: what any reader pays;
- floor, VW: pylibvw parse + predict + learn of the same events (lines prebuilt), with the
  candidate's arguments: what the ``vw:`` candidate costs in VW alone;
- IPS/SNIPS pass: ``reader.read`` (parse, validate, arrays, action ids) and IPS + SNIPS +
  effective sample size of ``logged``, ``uniform`` and ``constant:escalate_human``;
  target ≥ 50,000 events/s;
- full evaluation, DR: ``evaluation.evaluate`` of the same three policies: the read, the
  cross-fitted reward model (two VW passes) and all three estimators;
- full evaluation with a ``vw:`` candidate (the scenario's own VW arguments, trained
  progressively) on top: target ≥ 10,000 events/s.

Targets are printed as PASS/MISS; the exit status is always 0.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pylibvw
import vowpalwabbit
from rich.console import Console
from rich.table import Table

from nextbest.evaluate.estimators import effective_sample_size, ips, snips
from nextbest.evaluate.evaluation import Options, evaluate
from nextbest.evaluate.reader import read, replay, vw_line
from nextbest.evaluate.specs import parse
from nextbest.evaluate.targets import distribution
from nextbest.policy.events import EligibleAction, Event, JoinStatus, ReceivedReward, RewardStatus
from nextbest.policy.features import action_line, shared_line
from nextbest.simulate.scenario import Luck
from nextbest.simulate.support import ACTION_KIND, VW_ARGS, SupportScenario
from nextbest.store import dsjson

IPS_TARGET = 50_000.0
VW_TARGET = 10_000.0
STATIC = ("logged", "uniform", "constant:escalate_human")
CANDIDATE = f"vw:{VW_ARGS}"
EPSILON = 0.2


def write_log(path: Path, events: int, seed: int) -> None:
    """Support-scenario events, ε-greedy around the rule, as nextbest logs them."""
    scenario = SupportScenario()
    rng = random.Random(seed)
    with path.open("wb") as out:
        for i in range(events):
            situation = scenario.situation(rng)
            allowed = scenario.allowed_actions(situation)
            rule = allowed.index(scenario.rule(situation))
            pmf = [EPSILON / (len(allowed) - 1)] * len(allowed)
            pmf[rule] = 1.0 - EPSILON
            chosen = rng.choices(range(len(allowed)), weights=pmf)[0]
            outcome = scenario.outcome(situation, allowed[chosen], Luck.draw(rng, 4))
            at = 1_790_000_000.0 + i
            eligible = [
                EligibleAction(
                    id=a,
                    features={"kind": ACTION_KIND[a]},
                    explore=True,
                    line=action_line(a, {"kind": ACTION_KIND[a]}),
                )
                for a in allowed
            ]
            event = Event(
                event_id=f"bench-{i}",
                policy=scenario.policy,
                intent=situation.intent,
                context=dict(situation.context),
                shared=shared_line(situation.intent, situation.context),
                eligible=eligible,
                pmf=pmf,
                scores=[0.0] * len(allowed),
                chosen=chosen,
                greedy=rule,
                explored=chosen != rule,
                fallback=False,
                masked=[],
                epsilon=EPSILON,
                mode="online",
                model_version=str(i),
                config_version="bench",
                decided_at=at,
                deadline=at + 600,
                rewards=[
                    ReceivedReward(
                        f"r{i}", outcome.reward, dict(outcome.signals), RewardStatus.ACCEPTED, at
                    )
                ],
                join_status=JoinStatus.LEARNED,
                joined_reward=outcome.reward,
            )
            out.write(dsjson.line(event) + b"\n")


def json_floor(path: Path) -> int:
    count = 0
    loads = orjson.loads
    with path.open("rb") as handle:
        for line in handle:
            loads(line)
            count += 1
    return count


def ips_snips_pass(path: Path) -> int:
    log = read([path], ids=True)
    rewards = log.reward
    for text in STATIC:
        dist = distribution(parse(text), log)
        weights = dist.pi[log.chosen_slots] / log.probability
        ips(weights, rewards)
        snips(weights, rewards)
        effective_sample_size(weights)
    return log.n


def vw_floor(lines: list[str]) -> int:
    ws = vowpalwabbit.Workspace(VW_ARGS + " --dsjson --quiet")
    for line in lines:
        examples = ws._parse(line)
        pylibvw.vw.predict_multi(ws, examples)
        examples[0].get_action_scores()
        pylibvw.vw.learn_multi(ws, examples)
        pylibvw.vw._finish_example_multi_ex(ws, examples)
    ws.finish()
    return len(lines)


def full(path: Path, specs: tuple[str, ...]) -> int:
    return evaluate([path], Options([parse(s) for s in specs])).log.n


def interleaved(
    phases: list[tuple[str, Callable[[], int], float | None]], repeat: int
) -> dict[str, Any]:
    """Every phase once per round, `repeat` rounds: a neighbour's burst of load hits one
    round of every phase rather than every round of one. Also each phase's rate over the
    JSON floor's in the same round."""
    results: dict[str, Any] = {name: {"rounds": [], "ratios": []} for name, _, _ in phases}
    for _ in range(repeat):
        floor = 0.0
        for name, run, _ in phases:
            start = time.perf_counter()
            count = run()
            rate = count / (time.perf_counter() - start)
            floor = floor or rate  # the first phase is the floor
            results[name]["rounds"].append(rate)
            results[name]["ratios"].append(rate / floor)
    for entry in results.values():
        entry["events_per_s"] = statistics.median(entry["rounds"])
        entry["ratio"] = statistics.median(entry["ratios"])
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000, help="events in the log [50000]")
    parser.add_argument("--repeat", type=int, default=3, help="runs per phase, median [3]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write every number here")
    parser.add_argument("--markdown", action="store_true", help="also print a markdown table")
    args = parser.parse_args(argv)
    console = Console()
    with tempfile.TemporaryDirectory(prefix="nextbest-evaluate-bench-") as tmp:
        path = Path(tmp) / "decisions.dsjson"
        start = time.perf_counter()
        write_log(path, args.events, args.seed)
        size = path.stat().st_size
        console.print(
            f"log: {args.events:,} events, {size / 1e6:.1f} MB ({size / args.events:,.0f} B "
            f"a line), written in {time.perf_counter() - start:.1f} s; load average "
            f"{os.getloadavg()[0]:.2f}; {os.cpu_count()} CPUs; Python {platform.python_version()}"
        )
        log = read([path])
        chosen, costs = log.chosen.tolist(), (-log.reward).tolist()
        lines = [vw_line(r, chosen[i], costs[i]) for i, r in enumerate(replay(log))]
        phases: list[tuple[str, Callable[[], int], float | None]] = [
            ("floor: orjson.loads per line", lambda: json_floor(path), None),
            ("floor: VW parse+predict+learn (candidate args)", lambda: vw_floor(lines), None),
            ("IPS/SNIPS pass (read + 3 policies)", lambda: ips_snips_pass(path), IPS_TARGET),
            ("full evaluation, 3 policies, IPS+SNIPS+DR", lambda: full(path, STATIC), None),
            (
                f"full evaluation + {CANDIDATE}",
                lambda: full(path, (*STATIC, CANDIDATE)),
                VW_TARGET,
            ),
        ]
        results = interleaved(phases, args.repeat)
    table = Table(title=f"nextbest evaluate: {args.events:,} events, median of {args.repeat}")
    for column in ("phase", "events/s", "÷ JSON floor", "target", "result"):
        table.add_column(column, justify="left" if column == "phase" else "right")
    rows = []
    for name, _, target in phases:
        rate = results[name]["events_per_s"]
        verdict = "" if target is None else "PASS" if rate >= target else "MISS"
        row = [
            name,
            f"{rate:,.0f}",
            f"{results[name]['ratio']:.2f}",
            "" if target is None else f"≥ {target:,.0f}",
            verdict,
        ]
        rows.append(row)
        table.add_row(*row)
    console.print(table)
    if args.markdown:
        print("| phase | events/s | ÷ JSON floor | target | result |")
        print("|---|---:|---:|---:|---:|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
    if args.json is not None:
        args.json.write_text(json.dumps({"events": args.events, "phases": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
