"""AdminService as ops use it at 3 am: live exploration and mode, audited, durable, rolled back."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from nextbest_proto.v1 import admin_pb2 as apb
from nextbest_proto.v1 import admin_pb2_grpc as arpc
from nextbest_proto.v1 import decision_pb2 as pb
from tests.conftest import make_config, support_policy
from tests.integration.conftest import (
    Process,
    RunningServer,
    ctx,
    field_violations,
    serve_args,
    wait_for,
)

POLICY = "support.next_step"
OLD = ctx(account_age_days=400, amount=50)


def admin(server: RunningServer) -> arpc.AdminServiceStub:
    return arpc.AdminServiceStub(server.channel)


def decide(server: RunningServer, intent: str = "login_problem") -> pb.DecideResponse:
    return server.stub.Decide(pb.DecideRequest(policy=POLICY, intent=intent, context=OLD))


def audit_records(server: RunningServer) -> list[dict[str, object]]:
    path = Path(server.server.settings.data_dir) / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def metric(server: RunningServer, name: str, **labels: str) -> float:
    import urllib.request

    with urllib.request.urlopen(server.metrics_url, timeout=5) as reply:
        text = reply.read().decode()
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name}{{{want}}}")


def test_get_policy_shows_the_file_and_what_is_in_force(server: RunningServer) -> None:
    status = admin(server).GetPolicy(apb.GetPolicyRequest(policy=POLICY))
    assert (status.exploration.epsilon, status.file_exploration.epsilon) == (0.1, 0.1)
    assert status.exploration.per_intent["billing_dispute"] == 0.2
    assert (status.mode, status.file_mode, list(status.overrides)) == ("online", "online", [])
    assert status.config_version == decide(server).config_version
    listed = admin(server).ListPolicies(apb.ListPoliciesRequest())
    assert [p.policy for p in listed.policies] == [POLICY]


def test_set_exploration_applies_at_once_and_is_audited(server: RunningServer) -> None:
    before = decide(server)
    status = admin(server).SetExploration(
        apb.SetExplorationRequest(
            policy=POLICY, epsilon=0.02, per_intent={"billing_dispute": 0.05}, reason="incident 42"
        )
    )
    assert status.exploration.epsilon == 0.02
    assert status.file_exploration.epsilon == 0.1
    assert status.config_version != before.config_version
    overrides = {o.setting: o for o in status.overrides}
    eps = overrides["exploration.epsilon"]
    assert (eps.value, eps.file_value, eps.set_by, eps.reason) == (
        "0.02",
        "0.1",
        "anonymous",
        "incident 42",
    )
    assert overrides["exploration.per_intent.billing_dispute"].value == "0.05"
    after = decide(server)
    assert (after.epsilon, after.config_version) == (0.02, status.config_version)
    assert decide(server, "billing_dispute").epsilon == 0.05
    record = audit_records(server)[-1]
    assert (record["policy"], record["kind"], record["caller"], record["reason"]) == (
        POLICY,
        "exploration",
        "anonymous",
        "incident 42",
    )
    assert record["old"] == {}
    assert record["new"] == {
        "exploration.epsilon": 0.02,
        "exploration.per_intent.billing_dispute": 0.05,
    }
    kind = {"policy": POLICY, "kind": "exploration"}
    assert metric(server, "nextbest_config_changes_total", **kind) == 1


@pytest.mark.parametrize(
    ("request_", "code", "field"),
    [
        (
            apb.SetExplorationRequest(policy=POLICY, epsilon=0.5, reason="r"),
            "INVALID_ARGUMENT",
            "epsilon",
        ),
        (
            apb.SetExplorationRequest(policy=POLICY, epsilon=-0.1, reason="r"),
            "INVALID_ARGUMENT",
            "epsilon",
        ),
        (
            apb.SetExplorationRequest(policy=POLICY, per_intent={"": 0.1}, reason="r"),
            "INVALID_ARGUMENT",
            "per_intent['']",
        ),
        (
            apb.SetExplorationRequest(policy=POLICY, per_intent={"x": 0.9}, reason="r"),
            "INVALID_ARGUMENT",
            "per_intent['x']",
        ),
        (apb.SetExplorationRequest(policy=POLICY, epsilon=0.1), "INVALID_ARGUMENT", "reason"),
        (apb.SetExplorationRequest(policy="nope", epsilon=0.1, reason="r"), "NOT_FOUND", "policy"),
        (apb.SetModeRequest(policy=POLICY, mode="turbo", reason="r"), "INVALID_ARGUMENT", "mode"),
        (apb.RollbackModelRequest(policy=POLICY, version="77", reason="r"), "NOT_FOUND", "version"),
    ],
)
def test_bad_changes_are_refused_naming_the_field(
    server: RunningServer, request_: object, code: str, field: str
) -> None:
    stub = admin(server)
    calls: dict[type, Callable[[Any], Any]] = {
        apb.SetExplorationRequest: stub.SetExploration,
        apb.SetModeRequest: stub.SetMode,
        apb.RollbackModelRequest: stub.RollbackModel,
    }
    call = calls[type(request_)]
    before = stub.GetPolicy(apb.GetPolicyRequest(policy=POLICY))
    with pytest.raises(grpc.RpcError) as err:
        call(request_)
    assert err.value.code().name == code
    assert field_violations(err.value) == [field]
    assert stub.GetPolicy(apb.GetPolicyRequest(policy=POLICY)) == before


def test_set_mode_and_clear(server: RunningServer) -> None:
    stub = admin(server)
    frozen = stub.SetMode(apb.SetModeRequest(policy=POLICY, mode="frozen", reason="freeze"))
    assert (frozen.mode, frozen.file_mode) == ("frozen", "online")
    for _ in range(20):
        d = decide(server)
        assert (d.probability, d.explored) == (1.0, False)
    cleared = stub.ClearOverrides(apb.ClearOverridesRequest(policy=POLICY, reason="all clear"))
    assert (cleared.mode, list(cleared.overrides)) == ("online", [])
    assert decide(server).epsilon == 0.1
    assert [r["kind"] for r in audit_records(server)] == ["mode", "clear"]


def test_no_decide_after_the_change_explores_with_the_old_epsilon(server: RunningServer) -> None:
    """Under load: every Decide that starts after SetExploration returned uses the new ε,
    and the explored share of the next 5,000 decisions matches it."""
    seen: list[tuple[float, float]] = []  # (started, epsilon)
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            started = time.monotonic()
            seen.append((started, decide(server).epsilon))

    workers = [threading.Thread(target=load) for _ in range(3)]
    for w in workers:
        w.start()
    wait_for(lambda: len(seen) > 50)
    admin(server).SetExploration(
        apb.SetExplorationRequest(policy=POLICY, epsilon=0.05, reason="calm down")
    )
    changed = time.monotonic()
    wait_for(lambda: sum(1 for s, _ in seen if s > changed) > 50)
    stop.set()
    for w in workers:
        w.join()
    assert {eps for started, eps in seen if started > changed} == {0.05}
    batch = pb.DecideBatchRequest(
        requests=[pb.DecideRequest(policy=POLICY, intent="login_problem", context=OLD)] * 1000
    )
    explored = 0
    for _ in range(5):
        results = server.stub.DecideBatch(batch).results
        explored += sum(r.decision.explored for r in results)
        assert {r.decision.epsilon for r in results} == {0.05}
    assert 0.035 < explored / 5000 < 0.065  # 0.05 ± 4.7 standard deviations


def test_overrides_survive_a_restart_and_a_reload(tmp_path: Path) -> None:
    config = make_config(support__next_step=support_policy())
    first = RunningServer(config, tmp_path / "data")
    try:
        admin(first).SetExploration(
            apb.SetExplorationRequest(policy=POLICY, epsilon=0.03, reason="keep it low")
        )
    finally:
        first.stop()
    again = RunningServer(config, tmp_path / "data")
    try:
        status = admin(again).GetPolicy(apb.GetPolicyRequest(policy=POLICY))
        assert status.exploration.epsilon == 0.03
        assert status.overrides[0].reason == "keep it low"
        assert decide(again).epsilon == 0.03
        # A new file changes the base; the override stays on top, and both show.
        path = tmp_path / "policies.yaml"
        changed = support_policy(mode="online")
        changed["exploration"] = {"epsilon": 0.2, "max_epsilon": 0.3}
        path.write_text(json.dumps({"policies": {POLICY: changed}}))
        assert again.server.reload(path)
        status = admin(again).GetPolicy(apb.GetPolicyRequest(policy=POLICY))
        assert (status.exploration.epsilon, status.file_exploration.epsilon) == (0.03, 0.2)
        assert dict(status.exploration.per_intent) == {}
    finally:
        again.stop()


def test_reload_config_answers_with_the_verdict(server: RunningServer, tmp_path: Path) -> None:
    settings = server.server.settings
    bad = tmp_path / "bad.yaml"
    bad.write_text("policies: {}\n")
    server.server.settings = settings.model_copy(update={"config": bad})
    verdict = admin(server).ReloadConfig(apb.ReloadConfigRequest(reason="try the new file"))
    assert not verdict.applied
    assert "at least one policy" in verdict.error
    assert set(verdict.config_versions) == {POLICY}  # what stays in force
    record = audit_records(server)[-1]
    assert (record["kind"], record["reason"]) == ("reload", "try the new file")
    assert "rejected" in record["new"]  # type: ignore[operator]


def test_rollback_serves_the_checkpoint_and_scores_like_it(server: RunningServer) -> None:
    stub = admin(server)
    probe = pb.DecideRequest(policy=POLICY, intent="billing_dispute", context=OLD)

    def learn(n: int, best: str) -> None:
        for _ in range(n):
            d = server.stub.Decide(probe)
            value = 1.0 if d.action_id == best else 0.0
            server.stub.Reward(pb.RewardRequest(event_id=d.event_id, value=value))

    def checkpoint() -> None:
        async def save() -> None:
            server.server.checkpoint()

        server._run(save())

    learn(200, "ask_details")
    checkpoint()
    saved = server.stub.Decide(probe)
    learn(200, "transfer_billing")
    checkpoint()
    models = stub.ListModels(apb.ListModelsRequest(policy=POLICY)).models
    assert [m.learned for m in models] == [400, 200]
    assert models[0].serving
    assert not models[1].serving
    status = stub.RollbackModel(
        apb.RollbackModelRequest(policy=POLICY, version=saved.model_version, reason="bad deploy")
    )
    assert status.model_version == saved.model_version == "200"
    after = server.stub.Decide(probe)
    assert after.model_version == "200"
    scores = {r.action_id: r.score for r in saved.ranking}
    assert {r.action_id: r.score for r in after.ranking} == pytest.approx(scores)
    record = audit_records(server)[-1]
    assert (record["kind"], record["old"], record["new"]) == (
        "rollback",
        {"model_version": "400"},
        {"model_version": "200"},
    )
    models = stub.ListModels(apb.ListModelsRequest(policy=POLICY)).models
    assert models[0].learned == 200
    assert models[0].serving


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b'["a list"]',
        b'{"support.next_step": {"mode": {"value": "turbo", "set_by": "x", "set_at": 1, '
        b'"reason": "r"}}}',
        b'{"support.next_step": {"exploration.epsilon": {"value": {"a": 1}, "set_by": "x", '
        b'"set_at": 1, "reason": "r"}}}',
        b'{"support.next_step": {"somewhere.else": {"value": 1, "set_by": "x", "set_at": 1, '
        b'"reason": "r"}}}',
    ],
)
def test_a_damaged_overrides_file_stops_the_start_with_the_reason(
    tmp_path: Path, content: bytes
) -> None:
    """Serving without the overrides would silently undo what ops set: refuse, name the file."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "overrides.json").write_bytes(content)
    process = Process(*serve_args(data))
    record = process.wait_event("cannot_start")
    assert "overrides.json" in record["reason"]
    assert process.proc.wait(timeout=30) == 2
