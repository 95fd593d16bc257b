"""The contract's one home (nextbest-proto): the Value codec, the status names and the
eligible action, defined once and used as they are by the server and by the SDK."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from typing import get_args

import pytest

from nextbest.api import convert
from nextbest.policy.errors import InvalidArgument
from nextbest.policy.events import ActivationStatus, JoinStatus, RewardStatus
from nextbest_client import InvalidContextValue
from nextbest_client import types as client_types
from nextbest_client._values import to_features as client_to_features
from nextbest_proto import records, values
from nextbest_proto.v1 import admin_pb2, decision_pb2, decision_pb2_grpc
from nextbest_proto.v1 import decision_pb2 as pb
from tests.conftest import ROOT


@pytest.mark.parametrize(
    ("value", "kind", "decoded"),
    [
        (True, "flag", True),
        (3, "number", 3.0),
        (0.5, "number", 0.5),
        ("gold", "text", "gold"),
        (["b", "a"], "texts", ["b", "a"]),
        (("b", "a"), "texts", ["b", "a"]),
        ({"b", "a"}, "texts", ["a", "b"]),
        ([], "texts", []),
    ],
)
def test_every_kind_round_trips(value: object, kind: str, decoded: object) -> None:
    encoded = values.to_value("context['x']", value)
    assert encoded.WhichOneof("kind") == kind
    assert values.from_value(encoded, "context['x']") == decoded
    assert values.from_features({"x": encoded}, "context") == {"x": decoded}


@pytest.mark.parametrize(
    ("features", "field", "detail"),
    [
        ({"plan": {"tier": "gold"}}, "context['plan']", "got dict"),
        ({"amount": None}, "context['amount']", "got NoneType"),
        ({"tags": ["vip", 3]}, "context['tags'][1]", "lists hold texts only, got int 3"),
        ({3: "x"}, "context", "feature names are texts, got int 3"),
        (["x"], "context", "expected a mapping of name to value, got list"),
    ],
)
def test_encoding_refuses_what_the_contract_cannot_carry(
    features: object, field: str, detail: str
) -> None:
    with pytest.raises(values.InvalidValue) as caught:
        values.to_features(features, "context")  # type: ignore[arg-type]
    assert caught.value.field == field
    assert detail in caught.value.detail
    assert str(caught.value) == f"{field}: {caught.value.detail}"
    # The SDK raises it as its own error, same message and field.
    with pytest.raises(InvalidContextValue) as sdk:
        client_to_features(features, "context")  # type: ignore[arg-type]
    assert sdk.value.field == field
    assert sdk.value.message == str(caught.value)


def test_a_value_without_a_kind_is_refused_naming_it() -> None:
    with pytest.raises(values.InvalidValue) as caught:
        values.from_features({"a": pb.Value(text="x"), "b": pb.Value()}, "context")
    assert (caught.value.field, caught.value.detail) == ("context['b']", values.NO_VALUE)
    # The server answers it as INVALID_ARGUMENT on the same field.
    request = pb.DecideRequest(
        policy="p",
        intent="i",
        actions=[pb.Action(id="a", features={"k": pb.Value()})],
    )
    with pytest.raises(InvalidArgument) as server:
        convert.decide_input(request)
    assert server.value.field == "actions[0].features['k']"
    assert server.value.detail == values.NO_VALUE


@pytest.mark.parametrize(
    ("domain", "names", "wire", "enum"),
    [
        (RewardStatus, records.RewardStatus, records.REWARD_STATUSES, pb.RewardStatus),
        (
            ActivationStatus,
            records.ActivationStatus,
            records.ACTIVATION_STATUSES,
            pb.ActivationStatus,
        ),
        (JoinStatus, records.JoinStatus, records.JOIN_STATUSES, pb.JoinStatus),
    ],
)
def test_each_status_is_named_once_for_both_sides(
    domain: type, names: object, wire: dict[str, int], enum: object
) -> None:
    # The contract's names: exactly the server's enum values, and every wire value but 0.
    assert set(get_args(names)) == set(wire) == {s.value for s in domain}  # type: ignore[attr-defined]
    assert set(wire.values()) == set(enum.values()) - {0}  # type: ignore[attr-defined]


def test_the_server_and_the_sdk_use_the_contracts_tables() -> None:
    for status in RewardStatus:
        wire = convert.REWARD_STATUS[status]
        assert records.REWARD_STATUS_NAMES[wire] == status.value
        result = client_types.reward_result(pb.RewardResponse(status=wire, value=1.0))
        assert result.status == status.value
    for activation in ActivationStatus:
        answer = pb.ActivateResponse(status=convert.ACTIVATION_STATUS[activation])
        assert client_types.activation_status(answer) == activation.value
    assert client_types.RewardStatus is records.RewardStatus
    assert client_types.ActivationStatus is records.ActivationStatus


def test_the_eligible_action_is_one_shape_both_ways() -> None:
    action = records.EligibleAction("refund", {"kind": "money", "tags": ["a"]}, 0.25, -1.5, False)
    message = records.eligible_message(action)
    assert message.action_id == "refund"
    assert records.eligible_action(message) == action
    explained = client_types.explanation(pb.ExplainResponse(eligible=[message]))
    assert explained.eligible == (action,)
    assert client_types.EligibleAction is records.EligibleAction


def test_the_sdk_re_exports_the_stubs() -> None:
    """`from nextbest_client.v1 import decision_pb2` keeps working, with the same classes."""
    from nextbest_client.v1 import admin_pb2 as sdk_admin
    from nextbest_client.v1 import decision_pb2 as sdk_pb
    from nextbest_client.v1 import decision_pb2_grpc as sdk_rpc

    assert sdk_pb.DecideRequest is decision_pb2.DecideRequest
    assert sdk_pb.REWARD_STATUS_LATE == decision_pb2.REWARD_STATUS_LATE
    assert sdk_pb.DESCRIPTOR is decision_pb2.DESCRIPTOR
    assert sdk_rpc.DecisionServiceStub is decision_pb2_grpc.DecisionServiceStub
    assert sdk_admin.DESCRIPTOR is admin_pb2.DESCRIPTOR
    module = importlib.import_module("nextbest_client.v1.decision_pb2_grpc")
    assert module.add_DecisionServiceServicer_to_server is not None


def _imports(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
            modules.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            modules.update(a.name for a in node.names)
    return modules


def test_the_wire_has_one_owner() -> None:
    """The server takes the stubs and the codec from nextbest-proto, not from the SDK; the
    simulator's runner (a client of the service) does not reach into the server's RPC layer
    (only `embedded.py` imports the server, to start one)."""
    service = ROOT / "service" / "nextbest"
    for path in service.rglob("*.py"):
        for module in _imports(path):
            assert not module.startswith(("nextbest_client.v1", "nextbest_client._")), (
                f"{path.relative_to(ROOT)} imports {module}"
            )
    for path in (service / "simulate").rglob("*.py"):
        assert not any(m.startswith("nextbest.api.convert") for m in _imports(path)), path
    runner = _imports(service / "simulate" / "runner.py")
    assert not any(m.startswith("nextbest.api") for m in runner)
