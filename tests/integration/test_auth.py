"""Tokens with scopes: every RPC of every service × {no token, unknown token, a token without
the scope, a token with it}; health and reflection open; SIGHUP reloads; `token new`; no
open address without auth."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from nextbest import cli
from nextbest.api import admin, boundary
from nextbest.api.auth import (
    SCOPES,
    AuthFileError,
    Authorizer,
    PermissionDenied,
    Unauthenticated,
    is_loopback,
    load_auth_file,
)
from nextbest.api.boundary import Method
from nextbest_proto.v1 import admin_pb2 as apb
from nextbest_proto.v1 import admin_pb2_grpc as arpc
from nextbest_proto.v1 import decision_pb2 as pb
from tests.conftest import make_config, support_policy
from tests.integration.conftest import Process, ctx, serve_args
from tests.integration.secure import SecureServer, bearer, write_auth_file

# Every method behind the boundary, from its own tables: a method added later joins the matrix.
RPCS: list[tuple[str, str, Method]] = [
    (service, name, method)
    for service, methods in ((boundary.SERVICE, boundary.METHODS), (admin.SERVICE, admin.METHODS))
    for name, method in methods.items()
]
# A token with only the scope, and one with every scope but it.
TOKENS = {
    **{f"only-{s}": (f"token-only-{s}", [s]) for s in SCOPES},
    **{f"all-but-{s}": (f"token-all-but-{s}", [o for o in SCOPES if o != s]) for s in SCOPES},
}
POLICY = "support.next_step"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureServer]:
    directory = tmp_path_factory.mktemp("auth")
    auth_file = write_auth_file(directory / "auth.yaml", TOKENS)
    server = SecureServer(
        make_config(support__next_step=support_policy()),
        directory / "data",
        auth_file=auth_file,
    )
    yield server
    server.stop()


def call(
    server: SecureServer, service: str, name: str, method: Method, token: str | None
) -> tuple[grpc.StatusCode, str]:
    """The method called with an empty request; the status code it ends with."""
    rpc: grpc.UnaryUnaryMultiCallable[Message, Message] = server.channel.unary_unary(
        f"/{service}/{name}",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=method.response.FromString,
    )
    try:
        rpc(method.request(), timeout=10, metadata=bearer(token) if token is not None else None)
    except grpc.RpcError as exc:
        return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""


@pytest.mark.parametrize(("service", "name", "method"), RPCS, ids=[r[1] for r in RPCS])
def test_every_rpc_needs_a_token_with_its_scope(
    secured: SecureServer, service: str, name: str, method: Method
) -> None:
    scope = method.scope
    assert scope in SCOPES

    code, details = call(secured, service, name, method, None)
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert "authorization: Bearer" in details
    assert repr(scope) in details

    code, details = call(secured, service, name, method, "not-a-token-anyone-was-given")
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert "unknown token" in details

    code, details = call(secured, service, name, method, f"token-all-but-{scope}")
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert details == f"token 'all-but-{scope}' lacks the {scope!r} scope"

    code, details = call(secured, service, name, method, f"token-only-{scope}")
    # Past auth: an empty request is refused on its merits, or served.
    assert code not in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)
    assert code in (
        grpc.StatusCode.OK,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
    ), (code, details)


def test_scopes_follow_the_issue(secured: SecureServer) -> None:
    scopes = {name: method.scope for _, name, method in RPCS}
    assert scopes == {
        "Decide": "decide",
        "DecideBatch": "decide",
        "Activate": "decide",
        "Reward": "reward",
        "Explain": "read",
        "ListPolicies": "read",
        "GetPolicy": "read",
        "ListModels": "read",
        "SetExploration": "admin",
        "SetMode": "admin",
        "ClearOverrides": "admin",
        "ReloadConfig": "admin",
        "RollbackModel": "admin",
    }


def test_a_decision_loop_with_scoped_tokens(secured: SecureServer) -> None:
    stub = secured.stub
    decided = stub.Decide(
        pb.DecideRequest(policy=POLICY, intent="billing_dispute", context=ctx(account_age_days=3)),
        metadata=bearer("token-only-decide"),
        timeout=10,
    )
    reward = pb.RewardRequest(event_id=decided.event_id, value=1.0, reward_id="r1")
    assert stub.Reward(reward, metadata=bearer("token-only-reward"), timeout=10).status
    explained = stub.Explain(
        pb.ExplainRequest(event_id=decided.event_id),
        metadata=(("authorization", "bearer token-only-read"),),  # the scheme is case-blind
        timeout=10,
    )
    assert explained.action_id == decided.action_id
    with pytest.raises(grpc.RpcError) as refused:  # another scheme is no token
        stub.Explain(
            pb.ExplainRequest(event_id=decided.event_id),
            metadata=(("authorization", "Basic token-only-read"),),
            timeout=10,
        )
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_the_token_name_is_the_caller_in_audit_records(secured: SecureServer) -> None:
    stub = arpc.AdminServiceStub(secured.channel)
    status = stub.SetExploration(
        apb.SetExplorationRequest(policy=POLICY, per_intent={"login_problem": 0.05}, reason="t"),
        metadata=bearer("token-only-admin"),
        timeout=10,
    )
    setters = {o.setting: o.set_by for o in status.overrides}
    assert setters["exploration.per_intent.login_problem"] == "only-admin"


def test_health_and_reflection_stay_open(secured: SecureServer) -> None:
    health = health_pb2_grpc.HealthStub(secured.channel)
    answer = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING

    reflection = reflection_pb2_grpc.ServerReflectionStub(secured.channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    responses = list(reflection.ServerReflectionInfo(iter([request]), timeout=10))
    names = {s.name for s in responses[0].list_services_response.service}
    assert {boundary.SERVICE, admin.SERVICE} <= names


def test_errors_are_counted_by_code(secured: SecureServer) -> None:
    import urllib.request

    call(secured, boundary.SERVICE, "Explain", boundary.METHODS["Explain"], None)
    with urllib.request.urlopen(secured.metrics_url, timeout=5) as response:
        text = response.read().decode()
    assert 'nextbest_errors_total{code="UNAUTHENTICATED",method="Explain"}' in text


# --- the auth file --------------------------------------------------------------------------


def _yaml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "auth.yaml"
    path.write_text(text, encoding="utf-8")
    return path


GOOD = "a" * 64


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("tokens: [{name: a, sha256: abc, scopes: [decide]}]", "tokens[0] (a).sha256: must be"),
        (
            f"tokens: [{{name: a, sha256: {GOOD}, scopes: [decide, root]}}]",
            "tokens[0] (a).scopes.1: Input should be 'decide', 'reward', 'read' or 'admin'",
        ),
        (f"tokens: [{{name: a, sha256: {GOOD}, scopes: []}}]", "tokens[0] (a).scopes:"),
        (
            f"tokens: [{{name: a, sha256: {GOOD}, scopes: [read]}}, "
            f"{{name: a, sha256: {'b' * 64}, scopes: [read]}}]",
            "two tokens have the same name ('a')",
        ),
        (
            f"tokens: [{{name: a, sha256: {GOOD}, scopes: [read]}}, "
            f"{{name: b, sha256: {GOOD}, scopes: [read]}}]",
            "two tokens have the same sha256 ('b')",
        ),
        (f"tokens: [{{name: a, token: x, sha256: {GOOD}, scopes: [read]}}]", "token: Extra"),
        ("users: []", "tokens: Field required"),
        ("tokens: [", "not valid YAML"),
    ],
)
def test_a_bad_auth_file_is_refused_with_the_reason(tmp_path: Path, text: str, reason: str) -> None:
    path = _yaml(tmp_path, text)
    with pytest.raises(AuthFileError) as refused:
        load_auth_file(path)
    assert str(refused.value).startswith(f"auth file {path}: ")
    assert reason in str(refused.value)


def test_a_bad_auth_file_stops_the_start(tmp_path: Path) -> None:
    bad = _yaml(tmp_path, "tokens: [{name: a, sha256: abc, scopes: [decide]}]")
    process = Process(*serve_args(tmp_path / "data", "--auth-file", str(bad)))
    record = process.wait_event("cannot_start")
    assert "tokens[0] (a).sha256" in record["reason"]
    assert process.proc.wait(timeout=30) == 2
    assert not (tmp_path / "data").exists()  # refused before the data dir was touched


def test_sighup_reloads_the_auth_file_and_a_bad_one_is_rejected(tmp_path: Path) -> None:
    auth = write_auth_file(tmp_path / "auth.yaml", {"first": ("token-1", ["read"])})
    process = Process(*serve_args(tmp_path / "data"), env={"NEXTBEST_AUTH_FILE": str(auth)})
    serving = process.wait_event("serving")
    assert serving["auth_file"] == str(auth)
    with grpc.insecure_channel(serving["grpc_address"]) as channel:
        stub = arpc.AdminServiceStub(channel)

        def code(token: str) -> grpc.StatusCode:
            try:
                stub.ListPolicies(apb.ListPoliciesRequest(), metadata=bearer(token), timeout=10)
            except grpc.RpcError as exc:
                return exc.code()
            return grpc.StatusCode.OK

        assert code("token-1") == grpc.StatusCode.OK
        assert code("token-2") == grpc.StatusCode.UNAUTHENTICATED

        write_auth_file(auth, {"second": ("token-2", ["read"])})
        process.proc.send_signal(signal.SIGHUP)
        assert process.wait_event("auth_reloaded")["tokens"] == 1
        assert code("token-1") == grpc.StatusCode.UNAUTHENTICATED
        assert code("token-2") == grpc.StatusCode.OK

        auth.write_text("tokens: [{name: x, sha256: nope, scopes: [read]}]", encoding="utf-8")
        process.proc.send_signal(signal.SIGHUP)
        rejected = process.wait_event("auth_rejected")
        assert "tokens[0] (x).sha256" in rejected["reason"]
        assert code("token-2") == grpc.StatusCode.OK  # the running tokens stay
    assert process.stop() == 0


# --- token new ------------------------------------------------------------------------------


def test_token_new_prints_a_token_and_the_entry_that_admits_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["token", "new", "--name", "ci-agent", "--scopes", "decide,reward"]) == 0
    out = capsys.readouterr().out.splitlines()
    token = out[1]
    assert len(token) >= 40
    assert not token.startswith("#")
    entry = "\n".join(line for line in out[2:] if not line.startswith("#"))
    assert token not in entry  # only its hash is written down
    auth = _yaml(tmp_path, f"tokens:\n{entry}\n")
    (loaded,) = load_auth_file(auth).tokens
    assert (loaded.name, loaded.scopes) == ("ci-agent", ("decide", "reward"))

    server = SecureServer(
        make_config(support__next_step=support_policy()), tmp_path / "d", auth_file=auth
    )
    try:
        request = pb.DecideRequest(policy=POLICY, intent="billing_dispute")
        assert server.stub.Decide(request, metadata=bearer(token), timeout=10).action_id
        with pytest.raises(grpc.RpcError) as denied:
            server.stub.Explain(pb.ExplainRequest(event_id="x"), metadata=bearer(token), timeout=10)
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "'read'" in (denied.value.details() or "")
    finally:
        server.stop()

    assert cli.main(["token", "new", "--name", "x", "--scopes", "decide,root"]) == 2
    assert "root" in capsys.readouterr().err
    assert cli.main(["token", "new", "--name", "", "--scopes", "read"]) == 2
    assert capsys.readouterr().err.startswith("nextbest token new: name: String should have")
    cli.main(["token", "new", "--name", "x", "--scopes", "read"])
    assert capsys.readouterr().out.splitlines()[1] != token  # fresh every time


# --- open addresses -------------------------------------------------------------------------


def test_a_non_loopback_address_without_auth_is_refused(tmp_path: Path) -> None:
    process = Process(*serve_args(tmp_path / "data", address="0.0.0.0:0"))
    record = process.wait_event("cannot_start")
    assert "--auth-file" in record["reason"]
    assert "--allow-unauthenticated" in record["reason"]
    assert "\n" not in record["reason"]
    assert process.proc.wait(timeout=30) == 2


def test_allow_unauthenticated_serves_with_a_warning(tmp_path: Path) -> None:
    process = Process(
        *serve_args(tmp_path / "data", address="0.0.0.0:0"),
        env={"NEXTBEST_ALLOW_UNAUTHENTICATED": "true"},
    )
    warning = process.wait_event("unauthenticated")
    assert warning["level"] == "warning"
    port = process.wait_event("serving")["grpc_address"].rpartition(":")[2]
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = arpc.AdminServiceStub(channel)
        assert stub.ListPolicies(apb.ListPoliciesRequest(), timeout=10).policies
    assert process.stop() == 0


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.7", False),
        ("nextbest.internal", False),  # a name may resolve to anything
    ],
)
def test_what_counts_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_check_token_serves_other_transports(tmp_path: Path) -> None:
    auth = write_auth_file(tmp_path / "auth.yaml", {"agent": ("agent-token", ["decide"])})
    authorizer = Authorizer(auth)
    assert authorizer.check_token("agent-token", "decide") == "agent"
    with pytest.raises(Unauthenticated, match="send 'X-Key: <token>'"):
        authorizer.check_token(None, "decide", "'X-Key: <token>'")
    with pytest.raises(PermissionDenied, match="lacks the 'reward' scope"):
        authorizer.check_token("agent-token", "reward")
    assert Authorizer(None).check_token(None, "admin") == "anonymous"
