"""Decide, act, reward with the Python SDK. Start the server first: bash scripts/serve.sh"""

import os

from nextbest_client import InvalidArgument, NextBest

TARGET = os.environ.get("NEXTBEST_TARGET", "127.0.0.1:50051")


def handle(action: str) -> bool:
    """Your agent's step. True when the customer's problem got resolved."""
    print("agent does:", action)
    return action != "escalate_human"


# error_reward: sent for you when the `with` block raises before a reward was sent.
with NextBest(TARGET, error_reward={"escalated": 1}) as nb:
    context = {"account_age_days": 12, "amount": 80.0, "plan": "gold", "tags": ["vip"]}
    with nb.decide("support.next_step", "billing_dispute", context) as d:
        print(d.action, f"p={d.probability:.2f}", "explored" if d.explored else "greedy")
        print("masked:", d.masked_reasons)  # offer_refund: the account is 12 days old
        resolved = handle(d.action)
        print(d.reward(resolved=int(resolved), csat=5))  # signals, weighed by the policy

    e = nb.explain(d.event_id)
    print("join:", e.join_status, "reward:", e.joined_reward)

    try:
        nb.decide("support.next_step", "billing_dispute", {"amount": float("inf")})
    except InvalidArgument as err:
        print("refused:", err.field, "-", err.description)
