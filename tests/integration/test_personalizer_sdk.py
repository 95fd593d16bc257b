"""Microsoft's own Personalizer SDK (azure-ai-personalizer) against a nextbest it started:
an application changes only the endpoint and the key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.ai.personalizer import PersonalizerAdministrationClient, PersonalizerClient
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
)

from nextbest_proto.v1 import decision_pb2 as pb
from tests.conftest import make_config, support_policy
from tests.integration.secure import SecureServer, write_auth_file

SHOP = "shop"
ACTIONS = [
    {"id": "beer", "features": [{"kind": "drink", "alcohol": True}]},
    {"id": "juice", "features": [{"kind": "drink", "alcohol": False}]},
    {"id": "chips", "features": [{"kind": "snack", "tags": ["salty", "crunchy"]}]},
]


def shop_policy() -> dict[str, Any]:
    """Personalizer's shape of a loop: no catalog (every rank brings its actions), ε 0.2, and
    a safety rule over the flattened context."""
    return {
        "actions": [],
        "exploration": {"epsilon": 0.2, "max_epsilon": 0.3},
        "safety": [
            {
                "name": "no_alcohol_for_minors",
                "deny_when": "action.id == 'beer' && context['user.age'] < 18.0",
                "reason": "no alcohol for minors",
            }
        ],
        "reward": {"wait": "10m", "aggregation": "earliest"},
    }


def start(tmp: Path, **settings: Any) -> SecureServer:
    config = make_config(shop=shop_policy(), support__next_step=support_policy())
    return SecureServer(config, tmp / "data", http_address="127.0.0.1:0", **settings)


def endpoint(server: SecureServer, policy: str = SHOP) -> str:
    return f"http://127.0.0.1:{server.server.http_port}/policies/{policy}"


def sdk(url: str, key: str = "any", **kwargs: Any) -> Any:
    """The SDK's client (typed Any: its methods come from a patch module mypy does not see)."""
    return PersonalizerClient(url, AzureKeyCredential(key), **kwargs)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureServer]:
    running = start(tmp_path_factory.mktemp("personalizer-sdk"))
    yield running
    running.stop()


@pytest.fixture
def client(server: SecureServer) -> Iterator[Any]:
    with sdk(endpoint(server), retry_total=0) as c:
        yield c


def explain(server: SecureServer, event_id: str) -> pb.ExplainResponse:
    """The event as the gRPC API sees it: one engine under both."""
    response: pb.ExplainResponse = server.stub.Explain(pb.ExplainRequest(event_id=event_id))
    return response


def rank(client: Any, age: float, **extra: Any) -> dict[str, Any]:
    request = {
        "contextFeatures": [{"user": {"age": age, "country": "NL"}}, {"device": "mobile"}],
        "actions": ACTIONS,
        **extra,
    }
    answer: dict[str, Any] = client.rank(request)
    return answer


def test_rank_and_reward(client: Any, server: SecureServer) -> None:
    answer = rank(client, 30)
    assert set(answer) == {"ranking", "eventId", "rewardActionId"}
    ranked = {r["id"]: r["probability"] for r in answer["ranking"]}
    assert set(ranked) == {"beer", "juice", "chips"}
    assert sum(ranked.values()) == pytest.approx(1.0)
    assert answer["rewardActionId"] in ranked
    assert ranked[answer["rewardActionId"]] > 0
    client.reward(answer["eventId"], {"value": 1.0})
    event = explain(server, answer["eventId"])
    assert event.policy == SHOP
    assert event.action_id == answer["rewardActionId"]
    assert event.context["user.age"].number == 30
    assert event.context["user.country"].text == "NL"
    assert event.context["device"].text == "mobile"
    assert [r.value for r in event.rewards] == [1.0]
    assert event.join_status == pb.JOIN_STATUS_LEARNED  # earliest: settled at once
    features = {a.action_id: a.features for a in event.eligible}
    assert list(features["chips"]["tags"].texts.values) == ["salty", "crunchy"]
    assert features["beer"]["alcohol"].flag is True


def test_event_id_given_is_kept_and_a_retry_gets_the_same_answer(
    client: Any,
) -> None:
    first = rank(client, 30, eventId="sdk-given-id-1")
    assert first["eventId"] == "sdk-given-id-1"
    assert rank(client, 30, eventId="sdk-given-id-1") == first
    with pytest.raises(HttpResponseError) as info:
        rank(client, 31, eventId="sdk-given-id-1")  # another request, a used id
    assert info.value.status_code == 409


def test_deferred_activation_then_activate(client: Any, server: SecureServer) -> None:
    answer = rank(client, 30, deferActivation=True)
    client.reward(answer["eventId"], {"value": 0.5})
    event = explain(server, answer["eventId"])
    assert event.defer_activation
    assert not event.activated
    assert event.join_status == pb.JOIN_STATUS_PENDING  # held until activated
    client.activate(answer["eventId"])
    event = explain(server, answer["eventId"])
    assert event.activated
    assert event.join_status == pb.JOIN_STATUS_LEARNED
    client.activate(answer["eventId"])  # again: accepted, nothing changes


def test_excluded_actions_are_never_chosen(client: Any) -> None:
    for _ in range(20):
        answer = rank(client, 30, excludedActions=["juice", "chips"])
        assert answer["rewardActionId"] == "beer"
        ranked = {r["id"]: r["probability"] for r in answer["ranking"]}
        assert ranked == {"beer": 1.0, "juice": 0.0, "chips": 0.0}


def test_a_rank_never_returns_what_a_safety_rule_denies(client: Any) -> None:
    chosen = set()
    for _ in range(60):
        answer = rank(client, 12)
        chosen.add(answer["rewardActionId"])
        assert answer["rewardActionId"] != "beer"
        assert {r["id"]: r["probability"] for r in answer["ranking"]}["beer"] == 0.0
    assert chosen == {"juice", "chips"}  # exploration goes on among the others
    adults = {rank(client, 40)["rewardActionId"] for _ in range(60)}
    assert "beer" in adults


def test_unknown_event_and_policy(client: Any, server: SecureServer) -> None:
    with pytest.raises(ResourceNotFoundError) as info:
        client.reward("never-ranked", {"value": 1.0})
    assert info.value.status_code == 404
    with pytest.raises(ResourceNotFoundError):
        client.activate("never-ranked")
    with (
        PersonalizerClient(
            endpoint(server, "no.such.policy"), AzureKeyCredential("any"), retry_total=0
        ) as other,
        pytest.raises(ResourceNotFoundError),
    ):
        rank(other, 30)


def test_bad_request_names_the_field(client: Any) -> None:
    with pytest.raises(HttpResponseError) as info:
        client.rank({"contextFeatures": [{"user": {"age": None}}], "actions": ACTIONS})
    assert info.value.status_code == 400
    assert info.value.error is not None
    assert info.value.error.code == "BadRequest"
    assert "contextFeatures[0].user.age" in str(info.value.error.message)


def test_service_configuration_and_policy(server: SecureServer) -> None:
    admin_client: Any = PersonalizerAdministrationClient(
        endpoint(server, "support.next_step"), AzureKeyCredential("any"), retry_total=0
    )
    with admin_client as admin:
        config: dict[str, Any] = admin.get_service_configuration()
        assert config["rewardWaitTime"] == "PT10M"
        assert config["rewardAggregation"] == "earliest"
        assert config["explorationPercentage"] == pytest.approx(0.1)
        assert config["learningMode"] == "Online"
        config.update(explorationPercentage=0.05, learningMode="Apprentice")
        updated: dict[str, Any] = admin.update_service_configuration(config)
        assert updated["explorationPercentage"] == pytest.approx(0.05)
        assert updated["learningMode"] == "Apprentice"
        assert admin.get_service_configuration()["learningMode"] == "Apprentice"
        with pytest.raises(HttpResponseError) as info:
            admin.update_service_configuration({**config, "rewardWaitTime": "PT5M"})
        assert info.value.status_code == 400
        assert info.value.error is not None
        assert "reward.wait" in str(info.value.error.message)
        with pytest.raises(HttpResponseError) as info:
            admin.update_service_configuration({**config, "explorationPercentage": 0.9})
        assert info.value.status_code == 400  # above the file's max_epsilon 0.3
        policy: dict[str, Any] = admin.get_policy()
        assert policy == {
            "name": "support.next_step",
            "arguments": support_policy().get(
                "vw_args", "--cb_explore_adf -q ia -q ca --cubic ica --power_t 0 -l 0.1"
            ),
        }
        admin.update_service_configuration({"learningMode": "Online"})


def test_keys(tmp_path: Path) -> None:
    auth = write_auth_file(
        tmp_path / "auth.yaml",
        {"app": ("app-key", ["decide", "reward"]), "ranker": ("rank-only", ["decide"])},
    )
    server = start(tmp_path, auth_file=auth)
    try:
        with (
            PersonalizerClient(
                endpoint(server), AzureKeyCredential("wrong-key"), retry_total=0
            ) as bad,
            pytest.raises(ClientAuthenticationError) as info,
        ):
            rank(bad, 30)
        assert info.value.status_code == 401
        with sdk(endpoint(server), "app-key") as good:
            answer = rank(good, 30)
            good.reward(answer["eventId"], {"value": 1.0})
        with sdk(endpoint(server), "rank-only", retry_total=0) as ranker:
            answer = rank(ranker, 30)
            with pytest.raises(HttpResponseError) as denied:
                ranker.reward(answer["eventId"], {"value": 1.0})
            assert denied.value.status_code == 403
    finally:
        server.stop()
