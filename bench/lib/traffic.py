"""The requests every server gets: 48 seeded support.next_step requests, and batches of them.

Every server in a run gets the same messages, so the floor and nextbest parse and answer
alike-sized calls.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

from nextbest_client.v1 import decision_pb2 as pb

ROOT = Path(__file__).resolve().parents[2]  # the repository
DEFAULT_CONFIG = ROOT / "examples" / "support.yaml"
POLICY = "support.next_step"
INTENTS = ("billing_dispute", "refund_request", "login_problem")
PLANS = ("free", "pro", "team", "enterprise")
CHANNELS = ("chat", "email", "voice", "web")


def make_requests(n: int, seed: int = 7, policy: str = POLICY) -> list[pb.DecideRequest]:
    """Varied requests: some get offer_refund masked (young account or large amount)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        out.append(
            pb.DecideRequest(
                policy=policy,
                intent=INTENTS[i % len(INTENTS)],
                context={
                    "account_age_days": pb.Value(number=float(rng.randint(1, 1500))),
                    "amount": pb.Value(number=round(rng.uniform(5.0, 400.0), 2)),
                    "plan": pb.Value(text=rng.choice(PLANS)),
                    "channel": pb.Value(text=rng.choice(CHANNELS)),
                },
            )
        )
    return out


def make_batches(
    requests: Sequence[pb.DecideRequest], size: int, n: int
) -> list[pb.DecideBatchRequest]:
    """n batches of `size` requests, each starting at a different place in the pool."""
    return [
        pb.DecideBatchRequest(requests=[requests[(b * 7 + i) % len(requests)] for i in range(size)])
        for b in range(n)
    ]
