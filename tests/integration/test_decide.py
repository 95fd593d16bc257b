"""Decide over real gRPC: masks, bounded exploration, idempotency, batches, Explain."""

from __future__ import annotations

from collections import Counter

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from nextbest_proto.v1 import decision_pb2 as pb
from tests.integration.conftest import RunningServer, ctx, field_violations

POLICY = "support.next_step"
NEW_ACCOUNT = ctx(account_age_days=3, amount=50, plan="gold")
OLD_ACCOUNT = ctx(account_age_days=400, amount=50, plan="gold")


def test_decide_answers_with_a_full_decision(server: RunningServer) -> None:
    d = server.stub.Decide(
        pb.DecideRequest(policy=POLICY, intent="billing_dispute", context=OLD_ACCOUNT)
    )
    assert d.event_id
    assert d.action_id in {r.action_id for r in d.ranking}
    assert sum(r.probability for r in d.ranking) == pytest.approx(1.0)
    assert d.probability == next(r.probability for r in d.ranking if r.action_id == d.action_id)
    assert d.ranking[0].probability >= 1 - 0.2
    assert d.epsilon == 0.2
    assert d.model_version == "0"
    assert len(d.config_version) == 12


def test_masked_action_is_never_returned_and_the_reason_is_given(server: RunningServer) -> None:
    seen: Counter[str] = Counter()
    for i in range(300):
        d = server.stub.Decide(
            pb.DecideRequest(
                policy=POLICY, intent="billing_dispute", context=NEW_ACCOUNT, event_id=f"m{i}"
            )
        )
        seen[d.action_id] += 1
        assert [(m.action_id, m.rule) for m in d.masked] == [("offer_refund", "refund_limits")]
        assert "30 days" in d.masked[0].reason
    assert "offer_refund" not in seen
    assert len(seen) == 3  # exploration reached the other eligible actions


def test_fallback_when_everything_is_masked(server: RunningServer) -> None:
    d = server.stub.Decide(
        pb.DecideRequest(
            policy=POLICY,
            intent="billing_dispute",
            context=NEW_ACCOUNT,
            candidate_action_ids=["offer_refund"],
        )
    )
    assert (d.action_id, d.fallback, d.probability) == ("escalate_human", True, 1.0)


def test_fallback_excluded_is_failed_precondition(server: RunningServer) -> None:
    with pytest.raises(grpc.RpcError) as err:
        server.stub.Decide(
            pb.DecideRequest(
                policy=POLICY,
                intent="billing_dispute",
                context=NEW_ACCOUNT,
                candidate_action_ids=["offer_refund"],
                excluded_action_ids=["escalate_human"],
            )
        )
    assert err.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "refund_limits" in (err.value.details() or "")


def test_retry_with_the_same_event_id_returns_the_same_decision(server: RunningServer) -> None:
    req = pb.DecideRequest(
        policy=POLICY, intent="billing_dispute", context=OLD_ACCOUNT, event_id="retry-1"
    )
    first = server.stub.Decide(req)
    assert server.stub.Decide(req) == first
    explained = server.stub.Explain(pb.ExplainRequest(event_id="retry-1"))
    assert explained.action_id == first.action_id


def test_a_reused_event_id_never_bypasses_the_safety_rules(server: RunningServer) -> None:
    """The conversation id as event id: a refund allowed for an old account must not be
    replayed for a 3-day-old one."""
    old = ctx(account_age_days=400, amount=50)
    refund = pb.DecideRequest(
        policy=POLICY,
        intent="billing_dispute",
        context=old,
        candidate_action_ids=["offer_refund"],
        event_id="conv-1",
    )
    assert server.stub.Decide(refund).action_id == "offer_refund"
    young = pb.DecideRequest()
    young.CopyFrom(refund)
    young.context["account_age_days"].number = 3
    with pytest.raises(grpc.RpcError) as err:
        server.stub.Decide(young)
    assert err.value.code() is grpc.StatusCode.ALREADY_EXISTS
    assert field_violations(err.value) == ["event_id"]
    assert server.stub.Decide(refund).action_id == "offer_refund"  # an exact retry


def test_a_feature_bomb_is_refused_at_once(server: RunningServer) -> None:
    """0.8 MB within every per-field limit, ~10^10 crossed features: refused, not scored."""
    texts = pb.TextList(values=[f"t{j}-" + "x" * 20 for j in range(64)])
    context = {f"k{i}": pb.Value(texts=texts) for i in range(256)}
    actions = [
        pb.Action(id=f"tool{i}", features={f"f{j}": pb.Value(texts=texts) for j in range(8)})
        for i in range(28)
    ]
    bomb = pb.DecideRequest(policy=POLICY, intent="x", context=context, actions=actions)
    assert bomb.ByteSize() > 500_000
    with pytest.raises(grpc.RpcError) as err:
        server.stub.Decide(bomb, timeout=10)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err.value)


def test_decide_batch_decides_each_item_on_its_own(server: RunningServer) -> None:
    good = pb.DecideRequest(policy=POLICY, intent="login_problem", context=OLD_ACCOUNT)
    bad = pb.DecideRequest(policy=POLICY, intent="", context=OLD_ACCOUNT)
    resp = server.stub.DecideBatch(pb.DecideBatchRequest(requests=[good, bad, good]))
    kinds = [r.WhichOneof("result") for r in resp.results]
    assert kinds == ["decision", "error", "decision"]
    error = resp.results[1].error
    assert (error.code, error.field) == (
        grpc.StatusCode.INVALID_ARGUMENT.value[0],
        "requests[1].intent",
    )
    assert resp.results[0].decision.event_id != resp.results[2].decision.event_id


def test_an_event_id_twice_in_a_batch_is_one_decision(server: RunningServer) -> None:
    """As if the items came one after the other: the same request again is a retry (the
    same decision), another request with the id is refused, naming the item."""
    one = pb.DecideRequest(policy=POLICY, intent="login_problem", context=OLD_ACCOUNT)
    one.event_id = "twice"
    other = pb.DecideRequest(policy=POLICY, intent="billing_dispute", event_id="twice")
    first, retry, refused = server.stub.DecideBatch(
        pb.DecideBatchRequest(requests=[one, one, other])
    ).results
    assert first.decision.event_id == "twice"
    assert retry.decision == first.decision
    assert (refused.error.code, refused.error.field) == (
        grpc.StatusCode.ALREADY_EXISTS.value[0],
        "requests[2].event_id",
    )
    assert server.stub.Decide(one) == first.decision


def test_concurrent_decides_decided_together_each_get_their_own_answer(
    server: RunningServer,
) -> None:
    """Unary Decides that come concurrently are decided in one step (`api.coalesce`); each
    call still gets its own decision or its own error."""
    decisions = server.server.decisions
    assert decisions is not None
    decisions.coalescer.waiting = True  # as after a probe found concurrent calls
    decisions.coalescer.wait = 0.05
    calls = [
        pb.DecideRequest(
            policy=POLICY, intent="login_problem", context=OLD_ACCOUNT, event_id=f"c{i}"
        )
        for i in range(12)
    ]
    calls[5] = pb.DecideRequest(policy=POLICY, intent="", context=OLD_ACCOUNT)
    futures = [server.stub.Decide.future(c) for c in calls]
    for i, future in enumerate(futures):
        if i == 5:
            with pytest.raises(grpc.RpcError) as err:
                future.result(timeout=30)
            assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert field_violations(err.value) == ["intent"]
            continue
        answer = future.result(timeout=30)
        assert answer.event_id == f"c{i}"
        assert server.stub.Decide(calls[i]) == answer  # a retry: what was kept
    assert decisions.coalescer.waited >= 1


def test_oversized_batch_is_refused(server: RunningServer) -> None:
    one = pb.DecideRequest(policy=POLICY, intent="x")
    with pytest.raises(grpc.RpcError) as err:
        server.stub.DecideBatch(pb.DecideBatchRequest(requests=[one] * 1001))
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err.value) == ["requests"]


def test_explain_shows_what_the_model_saw(server: RunningServer) -> None:
    d = server.stub.Decide(
        pb.DecideRequest(
            policy=POLICY, intent="billing_dispute", context=NEW_ACCOUNT, event_id="x1"
        )
    )
    e = server.stub.Explain(pb.ExplainRequest(event_id="x1"))
    assert (e.policy, e.intent, e.action_id) == (POLICY, "billing_dispute", d.action_id)
    assert e.context["plan"].text == "gold"
    assert [a.action_id for a in e.eligible] == [
        "ask_details",
        "transfer_billing",
        "escalate_human",
    ]
    assert [m.action_id for m in e.masked] == ["offer_refund"]
    assert e.vw_example[0] == (
        "shared |i billing_dispute |c account_age_days:3 amount:50 plan=gold"
    )
    assert e.vw_example[1] == "|a id=ask_details kind=info"
    assert e.join_status == pb.JOIN_STATUS_PENDING
    assert e.epsilon == 0.2
    assert e.mode == "online"


def test_inline_actions_from_the_request(start_server: object) -> None:
    from tests.conftest import make_config, support_policy

    server = start_server(
        make_config(
            tools=support_policy(  # type: ignore[operator]
                actions=[], fallback_action=None, safety=[]
            )
        )
    )
    picked = set()
    for i in range(200):
        d = server.stub.Decide(
            pb.DecideRequest(
                policy="tools",
                intent="lookup",
                event_id=f"t{i}",
                actions=[
                    pb.Action(id="web_search", features=ctx(latency=2.0)),
                    pb.Action(id="sql", features=ctx(latency=0.1, kind="db")),
                ],
            )
        )
        picked.add(d.action_id)
    assert picked == {"web_search", "sql"}


def test_health_and_reflection(server: RunningServer) -> None:
    health = health_pb2_grpc.HealthStub(server.channel)
    for service in ("", "nextbest.v1.DecisionService"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    reflect = reflection_pb2_grpc.ServerReflectionStub(server.channel)
    replies = reflect.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    names = {s.name for r in replies for s in r.list_services_response.service}
    assert "nextbest.v1.DecisionService" in names
