"""Bad input gets the right status code and names the field, as text and as BadRequest."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from nextbest_proto.v1 import decision_pb2 as pb
from tests.integration.conftest import RunningServer, ctx, field_violations

POLICY = "support.next_step"


def call(server: RunningServer, method: str, request: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        getattr(server.stub, method)(request)
    return err.value


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.DecideRequest(policy="", intent="x"), "policy"),
        (pb.DecideRequest(policy=POLICY, intent=""), "intent"),
        (pb.DecideRequest(policy=POLICY, intent="x" * 300), "intent"),
        (pb.DecideRequest(policy=POLICY, intent="x", context={"a": pb.Value()}), "context['a']"),
        (pb.DecideRequest(policy=POLICY, intent="x", context=ctx(a=float("nan"))), "context['a']"),
        (pb.DecideRequest(policy=POLICY, intent="x", context=ctx(a=float("-inf"))), "context['a']"),
        (
            pb.DecideRequest(
                policy=POLICY, intent="x", context=ctx(**{f"f{i}": 1.0 for i in range(257)})
            ),
            "context",
        ),
        (
            pb.DecideRequest(policy=POLICY, intent="x", candidate_action_ids=["ghost"]),
            "candidate_action_ids[0]",
        ),
        (
            pb.DecideRequest(policy=POLICY, intent="x", excluded_action_ids=[""]),
            "excluded_action_ids[0]",
        ),
        (
            pb.DecideRequest(policy=POLICY, intent="x", actions=[pb.Action(id="ask_details")]),
            "actions[0].id",
        ),
        (
            pb.DecideRequest(
                policy=POLICY, intent="x", actions=[pb.Action(id="n", features={"k": pb.Value()})]
            ),
            "actions[0].features['k']",
        ),
        (pb.DecideRequest(policy=POLICY, intent="x", event_id="a\nb"), "event_id"),
    ],
)
def test_decide_invalid_argument_names_the_field(
    server: RunningServer, request_: pb.DecideRequest, field: str
) -> None:
    error = call(server, "Decide", request_)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(error) == [field]
    assert (error.details() or "").startswith(f"{field}: ")


def test_unknown_policy_is_not_found(server: RunningServer) -> None:
    error = call(server, "Decide", pb.DecideRequest(policy="nope", intent="x"))
    assert error.code() is grpc.StatusCode.NOT_FOUND
    assert field_violations(error) == ["policy"]


def test_event_id_of_another_policy_is_already_exists(start_server: Any) -> None:
    from tests.conftest import make_config, support_policy

    server = start_server(make_config(a=support_policy(), b=support_policy()))
    server.stub.Decide(pb.DecideRequest(policy="a", intent="x", event_id="shared-id"))
    error = call(server, "Decide", pb.DecideRequest(policy="b", intent="x", event_id="shared-id"))
    assert error.code() is grpc.StatusCode.ALREADY_EXISTS


@pytest.mark.parametrize(
    ("request_", "code", "field"),
    [
        (pb.RewardRequest(event_id="", value=1.0), grpc.StatusCode.INVALID_ARGUMENT, "event_id"),
        (pb.RewardRequest(event_id="nope", value=1.0), grpc.StatusCode.NOT_FOUND, "event_id"),
        (pb.RewardRequest(event_id="E"), grpc.StatusCode.INVALID_ARGUMENT, "value"),
        (
            pb.RewardRequest(event_id="E", value=float("nan")),
            grpc.StatusCode.INVALID_ARGUMENT,
            "value",
        ),
        (
            pb.RewardRequest(event_id="E", signals={"happy": 1.0}),
            grpc.StatusCode.INVALID_ARGUMENT,
            "signals['happy']",
        ),
        (
            pb.RewardRequest(event_id="E", signals={"csat": 9.0}),
            grpc.StatusCode.INVALID_ARGUMENT,
            "signals['csat']",
        ),
        (
            pb.RewardRequest(event_id="E", value=1.0, signals={"csat": 3.0}),
            grpc.StatusCode.INVALID_ARGUMENT,
            "signals",
        ),
    ],
)
def test_reward_errors(
    server: RunningServer, request_: pb.RewardRequest, code: grpc.StatusCode, field: str
) -> None:
    server.stub.Decide(pb.DecideRequest(policy=POLICY, intent="x", event_id="E"))
    error = call(server, "Reward", request_)
    assert error.code() is code
    assert field_violations(error) == [field]


def test_activate_and_explain_of_unknown_events(server: RunningServer) -> None:
    assert call(server, "Activate", pb.ActivateRequest(event_id="nope")).code() is (
        grpc.StatusCode.NOT_FOUND
    )
    assert call(server, "Explain", pb.ExplainRequest(event_id="")).code() is (
        grpc.StatusCode.INVALID_ARGUMENT
    )
