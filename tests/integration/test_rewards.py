"""Rewards over real gRPC: joins within the window, late, duplicate, default, deferred."""

from __future__ import annotations

from typing import Any

import pytest

from nextbest_proto.v1 import decision_pb2 as pb
from tests.conftest import make_config, support_policy
from tests.integration.conftest import RunningServer, ctx, wait_for

CONTEXT = ctx(account_age_days=400, amount=50)


def short_window(aggregation: str = "earliest", wait: str = "2s") -> dict[str, Any]:
    reward = {**support_policy()["reward"], "wait": wait, "aggregation": aggregation}
    return support_policy(reward=reward)


def decide(server: RunningServer, **kw: Any) -> pb.DecideResponse:
    return server.stub.Decide(
        pb.DecideRequest(policy="p", intent="billing_dispute", context=CONTEXT, **kw)
    )


def explain(server: RunningServer, event_id: str) -> pb.ExplainResponse:
    return server.stub.Explain(pb.ExplainRequest(event_id=event_id))


def joined(server: RunningServer, event_id: str) -> pb.ExplainResponse | None:
    e = explain(server, event_id)
    return e if e.join_status != pb.JOIN_STATUS_PENDING else None


def test_signals_reward_is_applied_and_raw_signals_are_kept(start_server: Any) -> None:
    server = start_server(make_config(p=short_window()))
    d = decide(server)
    r = server.stub.Reward(
        pb.RewardRequest(event_id=d.event_id, signals={"csat": 4.0, "escalated": 1.0})
    )
    assert r.status == pb.REWARD_STATUS_ACCEPTED
    assert r.value == pytest.approx(0.5 * 0.75 - 0.5)
    e = wait_for(lambda: joined(server, d.event_id))
    assert e.join_status == pb.JOIN_STATUS_LEARNED
    assert e.joined_reward == pytest.approx(r.value)
    assert dict(e.rewards[0].signals) == {"csat": 4.0, "escalated": 1.0}
    assert e.model_version == "0"  # the version it was decided with
    assert decide(server).model_version == "1"


def test_duplicate_and_late_rewards(start_server: Any) -> None:
    server = start_server(make_config(p=short_window("sum")))
    d = decide(server)
    first = server.stub.Reward(pb.RewardRequest(event_id=d.event_id, value=0.5, reward_id="r"))
    again = server.stub.Reward(pb.RewardRequest(event_id=d.event_id, value=0.9, reward_id="r"))
    assert (first.status, again.status) == (pb.REWARD_STATUS_ACCEPTED, pb.REWARD_STATUS_DUPLICATE)
    assert again.value == 0.5
    e = wait_for(lambda: joined(server, d.event_id))
    assert e.joined_reward == 0.5
    late = server.stub.Reward(pb.RewardRequest(event_id=d.event_id, value=1.0))
    assert late.status == pb.REWARD_STATUS_LATE
    statuses = [r.status for r in explain(server, d.event_id).rewards]
    assert statuses == [pb.REWARD_STATUS_ACCEPTED, pb.REWARD_STATUS_LATE]


def test_an_unrewarded_event_is_learned_with_the_default(start_server: Any) -> None:
    server = start_server(make_config(p=short_window(wait="100ms")))
    d = decide(server)
    e = wait_for(lambda: joined(server, d.event_id))
    assert (e.join_status, e.joined_reward) == (pb.JOIN_STATUS_LEARNED, 0.0)


def test_deferred_events_learn_only_once_activated(start_server: Any) -> None:
    server = start_server(make_config(p=short_window(wait="1500ms")))
    kept = decide(server, defer_activation=True)
    dropped = decide(server, defer_activation=True)
    for d in (kept, dropped):
        server.stub.Reward(pb.RewardRequest(event_id=d.event_id, value=1.0))
    status = server.stub.Activate(pb.ActivateRequest(event_id=kept.event_id)).status
    assert status == pb.ACTIVATION_STATUS_ACTIVATED
    assert wait_for(lambda: joined(server, kept.event_id)).join_status == pb.JOIN_STATUS_LEARNED
    e = wait_for(lambda: joined(server, dropped.event_id))
    assert (e.join_status, e.activated) == (pb.JOIN_STATUS_SKIPPED, False)
    late = server.stub.Activate(pb.ActivateRequest(event_id=dropped.event_id)).status
    assert late == pb.ACTIVATION_STATUS_LATE
