"""Section 2's Reward ingest figures: Reward calls at c=16 on events decided beforehand, one
reward per event, against the floor server's Reward (a prebuilt ACCEPTED).

Two variants of support.next_step: `sum` keeps the join open for 10 minutes (a reward is
the journal write and the stored event's update), `earliest` settles it at once (each
accepted reward also closes its event, logs it to DSJSON and learns it, within the call).
The `sum` phase also runs on nextbest-always, which section 3 (durability) reads.
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
import uuid
from typing import Any

from lib.load import CALL_TIMEOUT, reward_call
from lib.processes import ServerProcess, connect
from lib.suite import Calls, Section, Step, Suite, progress, reward_variant
from lib.tables import NEXTBEST, Figure
from lib.traffic import make_batches, make_requests

from nextbest_client.v1 import decision_pb2 as pb

SUM_POLICY = "bench.reward_sum"  # support.next_step with aggregation sum, 10 min window
EARLIEST_POLICY = "bench.reward_earliest"  # … aggregation earliest: a reward closes the join
REWARD_RATE_GUESS = 6_000.0  # rewards/s used to size the events decided before a phase

# (server, method, the events it rewards): the order they run in, each round
_PLAN = (
    ("floor", "Reward", "floor"),
    ("nextbest", "Reward-sum", "nextbest/sum"),
    ("nextbest-always", "Reward-sum", "nextbest-always/sum"),
    ("nextbest", "Reward-earliest", "nextbest/earliest"),
)


def section() -> Section:
    """Its policies; its events decided and phases planned once the servers are up."""
    return Section(policies=_policies, steps=_steps, figures=_figures)


def _policies(args: argparse.Namespace, base: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        SUM_POLICY: reward_variant(base, wait="10m", aggregation="sum"),
        EARLIEST_POLICY: reward_variant(base, wait="10m", aggregation="earliest"),
    }


async def predecide(server: ServerProcess, policy: str, n: int, batch_size: int = 100) -> list[str]:
    """Decide n events of `policy` with DecideBatch; their event ids."""
    requests = make_requests(48, seed=11, policy=policy)
    batches = make_batches(requests, batch_size, math.ceil(n / batch_size))
    ids: list[str] = []
    async with connect(server) as stub:
        for batch in batches:
            resp: pb.DecideBatchResponse = await stub.DecideBatch(batch, timeout=CALL_TIMEOUT)
            for item in resp.results:
                if item.WhichOneof("result") != "decision":
                    raise RuntimeError(f"predecide on {server.name}: {item.error.message}")
                ids.append(item.decision.event_id)
    return ids[:n]


async def _steps(suite: Suite) -> list[Step]:
    """Enough events for every round's phase (each rewarded once), decided now; a phase
    that uses up its share before its time is over is marked "ran out"."""
    args, pool = suite.args, suite.pool
    c, rounds = args.reward_concurrency, args.repeat
    n = max(c, int(REWARD_RATE_GUESS * (args.warmup + args.seconds)) // c * c)
    rewards: dict[str, list[pb.RewardRequest]] = {}
    with suite.section("deciding the events to reward"):
        progress(f"  {n * rounds:,} events per reward phase ({rounds} round(s)) …")
        for kind, server, policy in (
            ("nextbest/sum", "nextbest", SUM_POLICY),
            ("nextbest-always/sum", "nextbest-always", SUM_POLICY),
            ("nextbest/earliest", "nextbest", EARLIEST_POLICY),
        ):
            ids = await predecide(pool[server], policy, n * rounds)
            rewards[kind] = [pb.RewardRequest(event_id=e, value=0.5) for e in ids]
        rewards["floor"] = [  # free to make: plenty, so that the floor never runs out
            pb.RewardRequest(event_id=uuid.uuid4().hex, value=0.5) for _ in range(4 * n * rounds)
        ]
    return [
        Step(server, method, c, functools.partial(_share, rewards[kind], rounds, c))
        for server, method, kind in _PLAN
        if kind in rewards
    ]


def _share(rewards: list[pb.RewardRequest], rounds: int, concurrency: int, round_no: int) -> Calls:
    """This round's share of the decided events, one reward per event: capped, so that no
    event is rewarded twice."""
    per_round = len(rewards) // rounds
    share = rewards[round_no * per_round : (round_no + 1) * per_round]
    return Calls(
        functools.partial(reward_call, rewards=share), len(share), len(share) // concurrency
    )


def _figures(suite: Suite) -> list[Figure]:
    if "summary" not in suite.data:
        return []
    c = suite.args.reward_concurrency
    floor = suite.median(f"floor/Reward/c{c}", "calls_per_s")
    return [
        Figure(
            NEXTBEST,
            f"Reward ingest, c={c}, sum (joins stay pending)",
            suite.median(f"nextbest/Reward-sum/c{c}", "calls_per_s"),
            "calls/s",
            floor,
            note=suite.ran_out(f"nextbest/Reward-sum/c{c}"),
        ),
        Figure(
            NEXTBEST,
            f"Reward ingest, c={c}, earliest (each closes + learns)",
            suite.median(f"nextbest/Reward-earliest/c{c}", "calls_per_s"),
            "calls/s",
            floor,
            note=suite.ran_out(f"nextbest/Reward-earliest/c{c}"),
        ),
    ]


if __name__ == "__main__":  # this section alone, with run.py's flags
    import run

    sys.exit(run.main(only=("rewards",)))
