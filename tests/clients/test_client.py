"""The sync client against a real server: typed decisions, rewards, errors, the closed loop."""

from __future__ import annotations

import datetime
import logging
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from nextbest.policy.config import Config
from nextbest_client import (
    AlreadyExists,
    ContextValue,
    Decision,
    DecisionRequest,
    FailedPrecondition,
    InvalidArgument,
    InvalidContextValue,
    MaskedAction,
    NextBest,
    NextBestError,
    NotFound,
    Unavailable,
)
from tests.clients.proxy import FaultyProxy
from tests.clients.support import NEW_ACCOUNT, OLD_ACCOUNT, POLICY, decisions_total
from tests.conftest import make_config, support_policy
from tests.integration.conftest import RunningServer


def test_decide_returns_a_typed_decision_with_masks_and_reasons(client: NextBest) -> None:
    d = client.decide(POLICY, "billing_dispute", NEW_ACCOUNT)
    assert isinstance(d, Decision)
    assert len(d.event_id) == 32  # made by the client, before the first attempt
    assert d.action != "offer_refund"
    assert d.action in {r.action for r in d.ranking}
    assert d.probability == next(r.probability for r in d.ranking if r.action == d.action)
    assert sum(r.probability for r in d.ranking) == pytest.approx(1.0)
    assert d.masked == (
        MaskedAction("offer_refund", d.masked_reasons["offer_refund"], "refund_limits"),
    )
    assert "30 days" in d.masked_reasons["offer_refund"]
    assert (d.policy, d.epsilon, d.model_version, d.fallback) == (POLICY, 0.2, "0", False)


def test_a_reward_is_joined_and_learned(client: NextBest) -> None:
    d = client.decide(POLICY, "billing_dispute", OLD_ACCOUNT)
    result = d.reward(resolved=1, csat=5)
    assert (result.status, result.value) == ("accepted", 1.0)  # 1 + 0.5 × 1, clipped to 1
    e = d.explain()
    assert (e.join_status, e.joined_reward, e.action) == ("learned", 1.0, d.action)
    assert e.rewards[0].signals == {"resolved": 1.0, "csat": 5.0}
    assert client.decide(POLICY, "billing_dispute", OLD_ACCOUNT).model_version == "1"


def test_context_values_of_every_accepted_type_reach_the_server(client: NextBest) -> None:
    context: dict[str, ContextValue] = {
        "text": "gold",
        "count": 3,
        "amount": 2.5,
        "vip": True,
        "tags": ["a", "b"],
    }
    d = client.decide(POLICY, "billing_dispute", context)
    assert d.explain().context == {**context, "count": 3.0}


@pytest.mark.parametrize(
    ("context", "field", "got"),
    [
        ({"plan": {"tier": "gold"}}, "context['plan']", "got dict"),
        ({"since": datetime.date(2024, 1, 1)}, "context['since']", "got date"),
        ({"amount": None}, "context['amount']", "got NoneType"),
        ({"tags": ["vip", 3]}, "context['tags'][1]", "got int"),
    ],
)
def test_a_bad_context_value_raises_before_any_call(
    server: RunningServer,
    make_proxy: Callable[[str], FaultyProxy],
    context: dict[str, Any],
    field: str,
    got: str,
) -> None:
    proxy = make_proxy(server.target)
    with NextBest(proxy.target) as nb, pytest.raises(InvalidContextValue) as caught:
        nb.decide(POLICY, "billing_dispute", context)
    assert caught.value.field == field
    assert str(caught.value.message).startswith(f"{field}: ")
    assert got in caught.value.message
    assert isinstance(caught.value, TypeError)
    assert isinstance(caught.value, InvalidArgument)
    assert proxy.calls == []


def test_inline_actions_are_decided_like_catalog_actions(
    start_server: Callable[[Config], RunningServer],
) -> None:
    tools = support_policy(actions=[], fallback_action=None, safety=[])
    server = start_server(make_config(agent__tools=tools))
    with NextBest(server.target) as nb:
        d = nb.decide(
            "agent.tools",
            "lookup_order",
            {"channel": "chat"},
            actions={"search_web": {"kind": "web"}, "query_db": {"kind": "db", "cost": 2}},
        )
        assert d.action in {"search_web", "query_db"}
        features = {a.action: a.features for a in d.explain().eligible}
        assert features == {"search_web": {"kind": "web"}, "query_db": {"kind": "db", "cost": 2}}


def test_caller_event_id_makes_decide_idempotent(server: RunningServer, client: NextBest) -> None:
    first = client.decide(POLICY, "billing_dispute", OLD_ACCOUNT, event_id="order-42")
    again = client.decide(POLICY, "billing_dispute", OLD_ACCOUNT, event_id="order-42")
    assert (again.event_id, again.action, again.probability) == (
        "order-42",
        first.action,
        first.probability,
    )
    assert decisions_total(server) == 1


def test_deferred_event_is_learned_only_once_activated(client: NextBest) -> None:
    d = client.decide(POLICY, "billing_dispute", OLD_ACCOUNT, defer=True)
    d.reward(1.0)
    assert d.explain().join_status == "pending"  # held until activation
    assert d.activate() == "activated"
    assert d.activate() == "already_active"
    e = d.explain()
    assert (e.defer_activation, e.activated, e.join_status, e.joined_reward) == (
        True,
        True,
        "learned",
        1.0,
    )


def test_decide_batch_returns_decisions_and_typed_errors_in_order(client: NextBest) -> None:
    results = client.decide_batch(
        [
            DecisionRequest(policy=POLICY, intent="billing_dispute", context=OLD_ACCOUNT),
            {"policy": "no.such.policy", "intent": "billing_dispute"},
            {"policy": POLICY, "intent": "login_problem", "event_id": "batch-3"},
        ]
    )
    first, second, third = results
    assert isinstance(first, Decision)
    assert isinstance(third, Decision)
    assert third.event_id == "batch-3"
    assert isinstance(second, NotFound)
    assert second.field == "requests[1].policy"
    first.reward(0.5)
    assert first.explain().joined_reward == 0.5


def test_decide_batch_checks_every_context_before_the_call(client: NextBest) -> None:
    with pytest.raises(InvalidContextValue) as caught:
        client.decide_batch(
            [
                {"policy": POLICY, "intent": "a"},
                {"policy": POLICY, "intent": "b", "context": {"x": object()}},
            ]
        )
    assert caught.value.field == "requests[1].context['x']"


# -- errors ------------------------------------------------------------------------------


def test_server_errors_are_typed_and_name_the_field(client: NextBest) -> None:
    with pytest.raises(NotFound) as unknown_policy:
        client.decide("no.such.policy", "billing_dispute")
    assert (unknown_policy.value.code, unknown_policy.value.field) == (
        grpc.StatusCode.NOT_FOUND,
        "policy",
    )

    with pytest.raises(InvalidArgument) as bad_number:
        client.decide(POLICY, "billing_dispute", {"amount": float("inf")})
    assert bad_number.value.field == "context['amount']"
    assert bad_number.value.message.startswith("context['amount']: ")
    assert "finite" in bad_number.value.description

    d = client.decide(POLICY, "billing_dispute", OLD_ACCOUNT)
    with pytest.raises(InvalidArgument) as unknown_signal:
        d.reward(happiness=1)
    assert unknown_signal.value.field == "signals['happiness']"

    with pytest.raises(NotFound) as unknown_event:
        client.reward("never-decided", 1.0)
    assert unknown_event.value.field == "event_id"


def test_reused_event_id_and_no_fallback_are_typed(
    start_server: Callable[[Config], RunningServer],
) -> None:
    server = start_server(
        make_config(
            support__next_step=support_policy(),
            strict=support_policy(fallback_action=None),
        )
    )
    with NextBest(server.target) as nb:
        nb.decide(POLICY, "billing_dispute", OLD_ACCOUNT, event_id="shared-id")
        with pytest.raises(AlreadyExists) as reused:
            nb.decide("strict", "billing_dispute", OLD_ACCOUNT, event_id="shared-id")
        assert reused.value.field == "event_id"
        with pytest.raises(FailedPrecondition) as masked:
            nb.decide("strict", "billing_dispute", NEW_ACCOUNT, candidates=["offer_refund"])
        assert "refund_limits" in masked.value.message


def test_reward_arguments_are_checked_before_the_call(client: NextBest) -> None:
    with pytest.raises(InvalidArgument, match="not both"):
        client.reward("e", 1.0, resolved=1)
    with pytest.raises(InvalidArgument, match="at least one signal"):
        client.reward("e")
    with pytest.raises(InvalidArgument, match="finite"):
        client.reward("e", float("nan"))


# -- the context manager closes the loop -------------------------------------------------


class ToolCrashed(Exception):
    pass


def act_and_crash(d: Decision, reward_first: float | None = None) -> None:
    """An agent step that acts on the decision inside ``with`` and fails."""
    with d:
        if reward_first is not None:
            d.reward(reward_first)
        raise ToolCrashed(d.action)


def test_a_raising_block_sends_the_error_reward(server: RunningServer) -> None:
    with NextBest(server.target, error_reward=-1.0) as nb:
        d = nb.decide(POLICY, "billing_dispute", OLD_ACCOUNT)
        with pytest.raises(ToolCrashed):
            act_and_crash(d)
        e = nb.explain(d.event_id)
    assert (e.join_status, e.joined_reward) == ("learned", -1.0)


def test_error_reward_may_be_signals(server: RunningServer) -> None:
    with NextBest(server.target, error_reward={"escalated": 1}) as nb:
        d = nb.decide(POLICY, "billing_dispute", OLD_ACCOUNT)
        with pytest.raises(ToolCrashed):
            act_and_crash(d)
        assert nb.explain(d.event_id).joined_reward == -0.5


def test_a_reward_sent_inside_the_block_is_the_only_one(client: NextBest) -> None:
    d = client.decide(POLICY, "billing_dispute", OLD_ACCOUNT)
    with pytest.raises(ToolCrashed):
        act_and_crash(d, reward_first=0.75)
    e = d.explain()
    assert [r.value for r in e.rewards] == [0.75]
    assert e.joined_reward == 0.75


@pytest.mark.parametrize(("default_reward", "joined"), [(None, None), (0.25, 0.25)])
def test_a_block_ending_without_reward_sends_the_default_reward_if_any(
    server: RunningServer, default_reward: float | None, joined: float | None
) -> None:
    with NextBest(server.target, default_reward=default_reward) as nb:
        with nb.decide(POLICY, "billing_dispute", OLD_ACCOUNT) as d:
            pass
        e = nb.explain(d.event_id)
    assert e.joined_reward == joined
    assert e.join_status == ("pending" if joined is None else "learned")


def test_a_failing_error_reward_never_hides_the_callers_exception(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        NextBest(server.target, error_reward={"no_such_signal": 1}) as nb,
        caplog.at_level(logging.WARNING, "nextbest_client"),
        pytest.raises(ToolCrashed),
    ):
        act_and_crash(nb.decide(POLICY, "billing_dispute", OLD_ACCOUNT))
    assert "no_such_signal" in caplog.text


# -- transport: metadata, TLS, unreachable ------------------------------------------------


def test_token_is_sent_as_bearer_authorization(
    server: RunningServer, make_proxy: Callable[[str], FaultyProxy]
) -> None:
    proxy = make_proxy(server.target)
    with NextBest(proxy.target, token="s3cret") as nb:
        nb.decide(POLICY, "billing_dispute", OLD_ACCOUNT)
    assert proxy.seen("Decide")[0].metadata["authorization"] == "Bearer s3cret"


def _self_signed(tmp_path: Path) -> tuple[bytes, bytes]:
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem")),
        ],
        check=True,
        capture_output=True,
    )
    return (tmp_path / "key.pem").read_bytes(), (tmp_path / "cert.pem").read_bytes()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl for a test cert")
def test_tls_credentials_make_a_secure_channel(server: RunningServer, tmp_path: Path) -> None:
    key, cert = _self_signed(tmp_path)
    proxy = FaultyProxy(server.target, grpc.ssl_server_credentials([(key, cert)]))
    try:
        with NextBest(proxy.target, tls=grpc.ssl_channel_credentials(root_certificates=cert)) as nb:
            assert nb.decide(POLICY, "billing_dispute", OLD_ACCOUNT).action
        with NextBest(proxy.target, tls=True, timeout=2) as nb, pytest.raises(Unavailable):
            nb.decide(POLICY, "billing_dispute", OLD_ACCOUNT)  # not signed by a system root
        with NextBest(proxy.target, timeout=2) as nb, pytest.raises(NextBestError):
            nb.decide(POLICY, "billing_dispute", OLD_ACCOUNT)  # plaintext to a TLS port
    finally:
        proxy.stop()
