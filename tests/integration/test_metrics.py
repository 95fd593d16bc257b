"""/metrics exports the documented names with the documented labels."""

from __future__ import annotations

import urllib.request
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from nextbest_proto.v1 import decision_pb2 as pb
from tests.conftest import make_config, support_policy
from tests.integration.conftest import ctx, wait_for


def scrape(url: str) -> dict[str, list[Any]]:
    with urllib.request.urlopen(url, timeout=5) as reply:
        text = reply.read().decode()
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def test_metrics_follow_decisions_rewards_and_joins(start_server: Any) -> None:
    reward = {
        **support_policy()["reward"],
        "wait": "1s",
    }  # rewards land inside it, even on a busy machine
    server = start_server(make_config(support=support_policy(reward=reward)))
    new_account = ctx(account_age_days=3, amount=50)
    ids = []
    for i in range(5):
        d = server.stub.Decide(
            pb.DecideRequest(
                policy="support", intent="billing_dispute", context=new_account, event_id=f"e{i}"
            )
        )
        ids.append(d.event_id)
    server.stub.Reward(pb.RewardRequest(event_id=ids[0], value=1.0))
    pending = scrape(server.metrics_url)["nextbest_pending_events"]
    assert [(s.labels, s.value) for s in pending] == [({"policy": "support"}, 4)]

    def all_learned() -> dict[str, list[Any]] | None:
        m = scrape(server.metrics_url)
        learned = [s.value for s in m["nextbest_learned_events"] if s.name.endswith("_total")]
        return m if learned == [5] else None

    m = wait_for(all_learned)
    decisions = sum(s.value for s in m["nextbest_decisions"] if s.name.endswith("_total"))
    assert decisions == 5
    assert {tuple(sorted(s.labels)) for s in m["nextbest_decisions"]} >= {
        ("action", "explored", "fallback", "policy")
    }
    masked = [s for s in m["nextbest_masked"] if s.name.endswith("_total")]
    assert [(s.labels, s.value) for s in masked] == [
        ({"policy": "support", "action": "offer_refund", "rule": "refund_limits"}, 5)
    ]
    rewards = [s for s in m["nextbest_rewards"] if s.name.endswith("_total")]
    assert [(s.labels, s.value) for s in rewards] == [
        ({"policy": "support", "status": "accepted"}, 1)
    ]
    count = [s.value for s in m["nextbest_decide_latency_seconds"] if s.name.endswith("_count")]
    assert count == [5]
    values = m["nextbest_reward_value"]
    assert [s.value for s in values if s.labels.get("le") == "1.0"] == [1.0]
    epsilons = {s.labels["intent"]: s.value for s in m["nextbest_exploration_epsilon"]}
    assert epsilons == {"*": 0.1, "billing_dispute": 0.2}
    versions = [(s.labels, s.value) for s in m["nextbest_model_version"]]
    assert versions == [({"policy": "support"}, 5)]
