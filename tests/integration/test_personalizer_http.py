"""The Personalizer-compatible API as raw HTTP, against Personalizer's documented JSON shapes:
the v1.0 routes and the api-version ones, status codes, the error shape, limits and keys."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nextbest_proto.v1 import decision_pb2 as pb
from tests.certs import Authority
from tests.conftest import make_config
from tests.integration.secure import SecureServer, write_auth_file
from tests.integration.test_personalizer_sdk import ACTIONS, SHOP, endpoint, start

API = "?api-version=2022-09-01-preview"


class Answer:
    def __init__(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.status = status
        self.body = body
        self.headers = headers

    def json(self) -> Any:
        return json.loads(self.body)

    def error(self) -> dict[str, str]:
        """Personalizer's error shape, checked."""
        body = self.json()
        assert set(body) == {"error"}
        assert set(body["error"]) == {"code", "message"}
        error: dict[str, str] = body["error"]
        return error


def call(
    url: str, method: str = "POST", body: Any = None, headers: dict[str, str] | None = None
) -> Answer:
    data = (
        None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    )
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return Answer(response.status, response.read(), dict(response.headers))
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, exc.read(), dict(exc.headers))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureServer]:
    running = start(tmp_path_factory.mktemp("personalizer-http"))
    yield running
    running.stop()


@pytest.fixture(params=["v1.0", "api-version"])
def routes(request: pytest.FixtureRequest, server: SecureServer) -> Routes:
    return Routes(endpoint(server), request.param == "v1.0")


class Routes:
    """The URL of each operation, in the v1.0 form or the api-version form."""

    def __init__(self, base: str, v1: bool, policy: str = SHOP) -> None:
        self.root = base.rsplit("/policies/", 1)[0]
        self.base = f"{self.root}/policies/{policy}/personalizer" + ("/v1.0" if v1 else "")
        self.query = "" if v1 else API
        self.v1 = v1

    def url(self, path: str) -> str:
        return f"{self.base}{path}{self.query}"

    def rank(self, **body: Any) -> Answer:
        request = {"contextFeatures": [{"user": {"age": 30}}], "actions": ACTIONS, **body}
        return call(self.url("/rank"), body=request)


def test_rank_reward_activate(routes: Routes, server: SecureServer) -> None:
    answer = routes.rank(deferActivation=True)
    assert answer.status == 201
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert set(body) == {"ranking", "eventId", "rewardActionId"}
    assert all(set(r) == {"id", "probability"} for r in body["ranking"])
    assert [r["probability"] for r in body["ranking"]] == sorted(
        (r["probability"] for r in body["ranking"]), reverse=True
    )
    assert len(body["eventId"]) == 32  # generated when absent
    event_id = body["eventId"]
    reward = call(routes.url(f"/events/{event_id}/reward"), body={"value": 0.75})
    assert (reward.status, reward.body) == (204, b"")
    activate = call(routes.url(f"/events/{event_id}/activate"))
    assert (activate.status, activate.body) == (204, b"")
    event = server.stub.Explain(pb.ExplainRequest(event_id=event_id))
    assert event.activated
    assert event.intent == "personalizer"
    assert [r.value for r in event.rewards] == [0.75]
    assert event.join_status == pb.JOIN_STATUS_LEARNED


def test_exclusions_and_baseline(routes: Routes, server: SecureServer) -> None:
    body = routes.rank(excludedActions=["beer"]).json()
    assert body["rewardActionId"] != "beer"
    assert {r["id"]: r["probability"] for r in body["ranking"]}["beer"] == 0.0
    event = server.stub.Explain(pb.ExplainRequest(event_id=body["eventId"]))
    # Personalizer's baseline: the first action not excluded
    assert event.baseline_action_id == "juice"
    assert [(m.action_id, m.reason) for m in event.masked] == [("beer", "excluded by the caller")]


def test_errors_have_personalizer_shape(routes: Routes) -> None:
    cases: list[tuple[Answer, int, str, str]] = [
        (call(routes.url("/rank"), body=b"{not json"), 400, "BadRequest", "body"),
        (call(routes.url("/rank"), body=[1, 2]), 400, "BadRequest", "body"),
        (routes.rank(actions=[]), 400, "BadRequest", "actions"),
        (
            routes.rank(actions=[{"id": f"a{i}", "features": []} for i in range(51)]),
            400,
            "BadRequest",
            "actions",
        ),
        (routes.rank(actions=[{"id": "x" * 257}]), 400, "BadRequest", "actions[0].id"),
        (routes.rank(actions=[{"features": []}]), 400, "BadRequest", "actions[0].id"),
        (
            routes.rank(contextFeatures=[{"user": {"tags": [1, 2]}}]),
            400,
            "BadRequest",
            "contextFeatures[0].user.tags",
        ),
        (
            routes.rank(contextFeatures=[{"a": 1}, {"a": 2}]),
            400,
            "BadRequest",
            "contextFeatures[1].a",
        ),
        (
            routes.rank(actions=[{"id": "x", "features": [{"f": {"g": None}}]}]),
            400,
            "BadRequest",
            "actions[0].features[0].f.g",
        ),
        (routes.rank(excludedActions=["nope"]), 400, "BadRequest", "excludedActions[0]"),
        (routes.rank(deferActivation="yes"), 400, "BadRequest", "deferActivation"),
        (routes.rank(eventId="has space"), 400, "BadRequest", "eventId"),
        (
            call(routes.url("/events/nope/reward"), body={"value": "1"}),
            400,
            "BadRequest",
            "value",
        ),
        (
            call(routes.url("/events/never-ranked/reward"), body={"value": 1}),
            404,
            "ResourceNotFound",
            "eventId",
        ),
        (
            call(routes.url("/events/never-ranked/activate")),
            404,
            "ResourceNotFound",
            "eventId",
        ),
        (call(routes.url("/rank"), method="GET"), 405, "MethodNotAllowed", "GET"),
    ]
    for answer, status, code, named in cases:
        assert answer.status == status, answer.body
        error = answer.error()
        assert error["code"] == code
        assert named in error["message"], error["message"]


def test_unknown_policy_route_and_api_version(server: SecureServer) -> None:
    base = endpoint(server).rsplit("/policies/", 1)[0]
    unknown = Routes(endpoint(server), True, policy="no.such").rank()
    assert unknown.status == 404
    assert "no.such" in unknown.error()["message"]
    missing = call(f"{base}/policies/{SHOP}/personalizer/rank", body={"actions": ACTIONS})
    assert missing.status == 400
    assert missing.error()["message"].startswith("api-version")
    multislot = call(f"{base}/policies/{SHOP}/personalizer/v1.0/multislot/rank", body={})
    assert multislot.status == 404
    assert multislot.error()["code"] == "ResourceNotFound"


def test_retry_and_reuse_of_an_event_id(routes: Routes) -> None:
    event_id = f"order-{routes.v1}"
    first = routes.rank(eventId=event_id)
    assert first.status == 201
    assert first.json()["eventId"] == event_id
    again = routes.rank(eventId=event_id)
    assert again.json() == first.json()
    other = routes.rank(eventId=event_id, excludedActions=["chips"])
    assert other.status == 409
    assert other.error()["code"] == "Conflict"


def test_catalog_actions_and_fallback(server: SecureServer) -> None:
    """On a policy with a catalog, a listed catalog action is scored with its catalog
    features, and the answer is always among the request's actions."""
    routes = Routes(endpoint(server), True, policy="support.next_step")
    young = [{"account_age_days": 3, "amount": 50}]
    for _ in range(10):
        body = routes.rank(
            contextFeatures=young,
            actions=[{"id": "offer_refund", "features": []}, {"id": "callback", "features": []}],
        ).json()
        assert body["rewardActionId"] == "callback"  # refund_limits denies offer_refund
        assert {r["id"] for r in body["ranking"]} == {"offer_refund", "callback"}
    only_refund = routes.rank(contextFeatures=young, actions=[{"id": "offer_refund"}])
    assert only_refund.status == 409
    message = only_refund.error()["message"]
    assert "refund_limits" in message
    assert "not among the actions" in message
    with_fallback = routes.rank(
        contextFeatures=young,
        actions=[{"id": "offer_refund"}, {"id": "escalate_human"}],
    ).json()
    assert with_fallback["rewardActionId"] == "escalate_human"


def test_service_configuration_put_is_live_and_audited(tmp_path: Path) -> None:
    server = start(tmp_path)
    try:
        url = f"{endpoint(server)}/personalizer/configurations/service{API}"
        config = call(url, method="GET").json()
        assert config["learningMode"] == "Online"
        put = call(url, method="PUT", body={"explorationPercentage": 0.0})
        assert put.status == 200
        assert put.json()["explorationPercentage"] == 0.0
        routes = Routes(endpoint(server), False)
        body = routes.rank().json()
        assert sorted(r["probability"] for r in body["ranking"]) == [0.0, 0.0, 1.0]  # ε 0
        for field, value in [
            ("defaultReward", 0.5),
            ("rewardAggregation", "average"),
            ("rewardAggregation", "median"),
            ("rewardWaitTime", "soon"),
            ("learningMode", "Sometimes"),
            ("explorationPercentage", 0.31),
        ]:
            refused = call(url, method="PUT", body={field: value})
            assert refused.status == 400, (field, refused.body)
            assert refused.error()["message"].startswith(field)
        same = call(url, method="PUT", body={**config, "explorationPercentage": 0.0})
        assert same.status == 200  # a GET's answer can be PUT back
        audit = (tmp_path / "data" / "audit.jsonl").read_text().splitlines()
        assert len(audit) == 1
        record = json.loads(audit[0])
        assert record["reason"] == "Personalizer API: PUT configurations/service"
        assert record["new"] == {"exploration.epsilon": 0.0}
    finally:
        server.stop()


def test_keys_and_scopes(tmp_path: Path) -> None:
    auth = write_auth_file(
        tmp_path / "auth.yaml",
        {"app": ("app-key", ["decide", "reward", "read"]), "ops": ("ops-key", ["admin"])},
    )
    server = start(tmp_path, auth_file=auth)
    try:
        routes = Routes(endpoint(server), True)
        url = routes.url("/rank")
        request = {"actions": ACTIONS}
        none = call(url, body=request)
        assert none.status == 401
        assert none.error()["code"] == "Unauthorized"
        assert none.headers["www-authenticate"] == "Bearer"
        assert call(url, body=request, headers={"Ocp-Apim-Subscription-Key": "x"}).status == 401
        by_key = call(url, body=request, headers={"Ocp-Apim-Subscription-Key": "app-key"})
        assert by_key.status == 201
        by_bearer = call(url, body=request, headers={"Authorization": "Bearer app-key"})
        assert by_bearer.status == 201
        service = routes.url("/configurations/service")
        put = call(service, "PUT", {"learningMode": "Online"}, {"Authorization": "Bearer app-key"})
        assert put.status == 403
        assert "admin" in put.error()["message"]
        ok = call(service, "PUT", {"learningMode": "Online"}, {"Authorization": "Bearer ops-key"})
        assert ok.status == 200
        assert call(f"{routes.root}/openapi.json", method="GET").status == 200  # public
    finally:
        server.stop()


def test_refuses_an_open_address_without_auth(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--http-address"):
        SecureServer(
            make_config(shop={"actions": []}),
            tmp_path / "data",
            http_address="0.0.0.0:0",
        )


def test_https_and_client_certificates(tmp_path: Path) -> None:
    """With --tls-cert/--tls-key the API is HTTPS; with --tls-client-ca it needs a client
    certificate, as gRPC does."""
    pki = Authority(tmp_path / "pki")
    pair = pki.server()
    server = start(tmp_path, tls_cert=pair.cert, tls_key=pair.key, tls_client_ca=pki.ca)
    try:
        url = f"https://127.0.0.1:{server.server.http_port}/policies/{SHOP}/personalizer/v1.0/rank"
        body = json.dumps({"actions": ACTIONS}).encode()
        headers = {"Content-Type": "application/json"}
        trusted = ssl.create_default_context(cafile=str(pki.ca))
        with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
            urllib.request.urlopen(
                urllib.request.Request(url, data=body, headers=headers), context=trusted
            ).read()  # no client certificate
        client = pki.client("web-app")
        trusted.load_cert_chain(str(client.cert), str(client.key))
        with urllib.request.urlopen(
            urllib.request.Request(url, data=body, headers=headers), context=trusted
        ) as answer:
            assert answer.status == 201
            assert json.loads(answer.read())["rewardActionId"] in {"beer", "juice", "chips"}
    finally:
        server.stop()
