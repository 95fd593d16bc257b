"""Every promise holds against callers who send garbage, huge ids, fresh ids, or idle sockets,
and against our own bugs: an unexpected exception answers INTERNAL, is logged and counted."""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from nextbest.api.server import Server
from nextbest.policy.config import Config
from nextbest.policy.requests import DecideInput
from nextbest.settings import ServerSettings
from nextbest_proto.v1 import decision_pb2 as pb
from tests.conftest import make_config, support_policy
from tests.integration.conftest import RunningServer, ctx, wait_for

POLICY = "support.next_step"
SERVICE = "/nextbest.v1.DecisionService"


def samples(server: RunningServer, family: str) -> dict[tuple[tuple[str, str], ...], float]:
    with urllib.request.urlopen(server.metrics_url, timeout=5) as reply:
        text = reply.read().decode()
    return {
        tuple(sorted(s.labels.items())): s.value
        for f in text_string_to_metric_families(text)
        if f.name == family
        for s in f.samples
        if s.name.endswith("_total") or f.type == "gauge"
    }


def errors(server: RunningServer) -> dict[tuple[str, str], float]:
    return {
        (dict(k)["method"], dict(k)["code"]): v
        for k, v in samples(server, "nextbest_errors").items()
    }


def raw_method(server: RunningServer, method: str) -> grpc.UnaryUnaryMultiCallable[bytes, bytes]:
    """A method of DecisionService called with bytes, answering bytes (no (de)serializer)."""
    call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = server.channel.unary_unary(
        f"{SERVICE}/{method}"
    )
    return call


def break_decide(server: RunningServer, when: Callable[[DecideInput], bool]) -> None:
    """Make the engine's decision of one request (for Decide and each DecideBatch item
    alike) raise a bug-like exception for requests matching `when`."""
    engine = server.server.engine
    decision = engine._decision

    def broken(req: DecideInput, digest: str) -> Any:
        if when(req):
            raise RuntimeError("secret internals /etc/passwd")
        return decision(req, digest)

    setattr(engine, "_decision", broken)  # noqa: B010  # an instance attribute shadows the method


# -- an unexpected exception ------------------------------------------------------------------


def test_an_unexpected_exception_answers_internal_logged_and_counted(
    server: RunningServer,
) -> None:
    break_decide(server, lambda req: True)
    with capture_logs() as logs, pytest.raises(grpc.RpcError) as err:
        server.stub.Decide(pb.DecideRequest(policy=POLICY, intent="x", event_id="ev-1"))
    assert err.value.code() is grpc.StatusCode.INTERNAL
    details = err.value.details() or ""
    assert "secret" not in details
    assert "Traceback" not in details
    assert len(details) < 100
    failed = [line for line in logs if line["event"] == "rpc_failed"]
    assert len(failed) == 1
    assert (failed[0]["method"], failed[0]["event_id"]) == ("Decide", "ev-1")
    assert (failed[0]["exc_info"], failed[0]["log_level"]) == (True, "error")
    assert errors(server) == {("Decide", "INTERNAL"): 1}


def test_every_error_status_is_counted_by_method_and_code(server: RunningServer) -> None:
    for _ in range(2):
        with pytest.raises(grpc.RpcError):
            server.stub.Decide(pb.DecideRequest(policy=POLICY, intent=""))
    with pytest.raises(grpc.RpcError):
        server.stub.Explain(pb.ExplainRequest(event_id="nope"))
    with pytest.raises(grpc.RpcError):
        server.stub.Reward(pb.RewardRequest(event_id="nope", value=1.0))
    with pytest.raises(grpc.RpcError) as err:  # not a method of ours: not a label either
        raw_method(server, "Bogus")(b"")
    assert err.value.code() is grpc.StatusCode.UNIMPLEMENTED
    assert errors(server) == {
        ("Decide", "INVALID_ARGUMENT"): 2,
        ("Explain", "NOT_FOUND"): 1,
        ("Reward", "NOT_FOUND"): 1,
    }


def test_a_batch_item_that_hits_a_bug_fails_alone(server: RunningServer) -> None:
    break_decide(server, lambda req: req.intent == "boom")
    items = [
        pb.DecideRequest(policy=POLICY, intent=intent, event_id=f"b{i}")
        for i, intent in enumerate(["x", "boom", "y"])
    ]
    with capture_logs() as logs:
        reply = server.stub.DecideBatch(pb.DecideBatchRequest(requests=items))
    first, broken, last = reply.results
    assert (first.decision.event_id, last.decision.event_id) == ("b0", "b2")
    assert broken.WhichOneof("result") == "error"
    assert broken.error.code == grpc.StatusCode.INTERNAL.value[0]
    assert broken.error.field == "requests[1]"
    assert "secret" not in broken.error.message
    failed = [line for line in logs if line["event"] == "rpc_failed"]
    assert [(f["method"], f["event_id"], f["item"]) for f in failed] == [("DecideBatch", "b1", 1)]
    assert errors(server) == {("DecideBatch", "INTERNAL"): 1}


# -- garbage and huge input -------------------------------------------------------------------


@pytest.mark.parametrize("method", ["Decide", "DecideBatch", "Reward", "Activate", "Explain"])
def test_undecodable_bytes_are_invalid_argument(server: RunningServer, method: str) -> None:
    raw = raw_method(server, method)
    with pytest.raises(grpc.RpcError) as err:
        raw(b"\xff\xff\xff\xff")
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert errors(server) == {(method, "INVALID_ARGUMENT"): 1}
    valid = pb.DecideRequest(policy=POLICY, intent="x").SerializeToString()
    assert pb.DecideResponse.FromString(raw_method(server, "Decide")(valid)).event_id


def test_reflection_still_lists_the_service(server: RunningServer) -> None:
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    stub = reflection_pb2_grpc.ServerReflectionStub(server.channel)
    request = reflection_pb2.ServerReflectionRequest(file_containing_symbol="nextbest.v1.Value")
    (reply,) = stub.ServerReflectionInfo(iter([request]))
    assert reply.file_descriptor_response.file_descriptor_proto


@pytest.mark.parametrize("char", ["x", "€"])
@pytest.mark.parametrize("method", ["Explain", "Activate", "Reward"])
def test_huge_ids_never_blow_the_clients_metadata_limit(
    server: RunningServer, method: str, char: str
) -> None:
    huge = char * 10_000
    request = {
        "Explain": pb.ExplainRequest(event_id=huge),
        "Activate": pb.ActivateRequest(event_id=huge),
        "Reward": pb.RewardRequest(event_id=huge, value=1.0),
    }[method]
    with pytest.raises(grpc.RpcError) as err:
        getattr(server.stub, method)(request)
    assert err.value.code() in {grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT}
    assert len((err.value.details() or "").encode()) <= 1024


class SmallMessages(RunningServer):
    @staticmethod
    async def _make(settings: ServerSettings, config: Config) -> Server:
        return Server(settings.model_copy(update={"max_receive_message_bytes": 64 * 1024}), config)


def test_the_receive_limit_is_a_setting(tmp_path: Path) -> None:
    server = SmallMessages(make_config(support__next_step=support_policy()), tmp_path)
    try:
        big = pb.DecideRequest(policy=POLICY, intent="x", context=ctx(note="n" * 100_000))
        with pytest.raises(grpc.RpcError) as err:
            server.stub.Decide(big)
        assert err.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert server.stub.Decide(pb.DecideRequest(policy=POLICY, intent="x")).action_id
    finally:
        server.stop()


# -- bounded metrics ------------------------------------------------------------------------------


def test_inline_action_ids_do_not_become_labels(start_server: Any) -> None:
    server = start_server(make_config(support=support_policy(fallback_action=None)))
    for i in range(60):
        server.stub.Decide(
            pb.DecideRequest(
                policy="support",
                intent="x",
                candidate_action_ids=[f"tool-{i}", f"gone-{i}"],
                actions=[pb.Action(id=f"tool-{i}"), pb.Action(id=f"gone-{i}")],
                excluded_action_ids=[f"gone-{i}"],
            )
        )
    decisions = samples(server, "nextbest_decisions")
    assert {dict(k)["action"] for k in decisions} == {"(inline)"}
    assert sum(decisions.values()) == 60
    masked = samples(server, "nextbest_masked")
    assert {(dict(k)["action"], dict(k)["rule"]) for k in masked} == {
        ("(inline)", "caller:excluded"),
        ("ask_details", "caller:not_candidate"),
        ("offer_refund", "caller:not_candidate"),
        ("transfer_billing", "caller:not_candidate"),
        ("escalate_human", "caller:not_candidate"),
    }


def test_model_version_is_one_series_per_policy(start_server: Any) -> None:
    reward = {**support_policy()["reward"], "aggregation": "earliest"}
    server = start_server(make_config(support=support_policy(reward=reward)))
    for i in range(3):
        d = server.stub.Decide(pb.DecideRequest(policy="support", intent="x", event_id=f"m{i}"))
        server.stub.Reward(pb.RewardRequest(event_id=d.event_id, value=1.0))
    assert samples(server, "nextbest_model_version") == {(("policy", "support"),): 3.0}
    assert samples(server, "nextbest_model_version_info") == {}


# -- the metrics endpoint -------------------------------------------------------------------------


def test_idle_connections_neither_take_threads_nor_block_a_scrape(server: RunningServer) -> None:
    port = server.server.metrics_port
    threads = threading.active_count()
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(300)]
    try:
        idle[0].sendall(b"GET /metrics HTTP/1.1\r\n")  # and a slow one, half a request
        started = time.monotonic()
        assert samples(server, "nextbest_pending_events") is not None
        assert time.monotonic() - started < 2.0
        assert threading.active_count() <= threads + 2
    finally:
        for s in idle:
            s.close()
    wait_for(lambda: threading.active_count() <= threads + 2)
