"""It learns: a simulated support stream sent through the real gRPC API converges."""

from __future__ import annotations

import random
from typing import Any

from nextbest_proto.v1 import decision_pb2 as pb
from tests.conftest import make_config, support_policy
from tests.integration.conftest import ctx

# Hidden truth: which action resolves which situation, and how often.
BEST = {
    ("billing_dispute", "small"): "offer_refund",
    ("billing_dispute", "large"): "transfer_billing",
    ("login_problem", "small"): "ask_details",
    ("login_problem", "large"): "ask_details",
    ("angry_customer", "small"): "escalate_human",
    ("angry_customer", "large"): "escalate_human",
}


def resolve_probability(intent: str, size: str, action: str) -> float:
    return 0.9 if BEST[(intent, size)] == action else 0.2


def test_greedy_converges_to_the_best_action(start_server: Any) -> None:
    policy = support_policy(safety=[], exploration={"epsilon": 0.2, "max_epsilon": 0.3})
    server = start_server(make_config(support=policy))
    rng = random.Random(7)
    situations = list(BEST)
    for i in range(2400):
        intent, size = situations[i % len(situations)]
        amount = rng.uniform(10, 90) if size == "small" else rng.uniform(300, 900)
        d = server.stub.Decide(
            pb.DecideRequest(
                policy="support",
                intent=intent,
                event_id=f"sim-{i}",
                context=ctx(amount=amount, size=size, account_age_days=rng.uniform(30, 900)),
            )
        )
        resolved = rng.random() < resolve_probability(intent, size, d.action_id)
        server.stub.Reward(
            pb.RewardRequest(event_id=d.event_id, signals={"resolved": 1.0 if resolved else 0.0})
        )
    for (intent, size), best in BEST.items():
        amount = 50.0 if size == "small" else 500.0
        d = server.stub.Decide(
            pb.DecideRequest(
                policy="support",
                intent=intent,
                context=ctx(amount=amount, size=size, account_age_days=400),
            )
        )
        assert d.ranking[0].action_id == best, (intent, size, list(d.ranking))
