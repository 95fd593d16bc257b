"""Nothing acknowledged is lost: kill -9 under load, a full disk, a torn journal."""

from __future__ import annotations

import errno
import os
import resource
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import orjson
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from nextbest_proto.v1 import decision_pb2 as pb
from nextbest_proto.v1 import decision_pb2_grpc as rpc
from tests.conftest import support_policy
from tests.integration.conftest import Process, RunningServer, wait_for

POLICY = "support"


def write_config(tmp_path: Path, wait: str = "1s") -> Path:
    reward = {**support_policy()["reward"], "wait": wait, "aggregation": "sum"}
    path = tmp_path / "policies.yaml"
    path.write_text(yaml.safe_dump({"policies": {POLICY: support_policy(reward=reward)}}))
    return path


def serve(config: Path, data: Path, *extra: str, **kw: Any) -> tuple[Process, dict[str, Any]]:
    process = Process(
        "serve",
        "--config",
        str(config),
        "--data-dir",
        str(data),
        "--address",
        "127.0.0.1:0",
        "--metrics-address",
        "127.0.0.1:0",
        *extra,
        **kw,
    )
    return process, process.wait_event("serving")


def pending(metrics_address: str) -> float:
    with urllib.request.urlopen(f"http://{metrics_address}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    for family in text_string_to_metric_families(text):
        if family.name == "nextbest_pending_events":
            return sum(s.value for s in family.samples)
    return 0.0


def logged_events(data: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in sorted((data / "policies" / POLICY / "decisions").glob("*.dsjson")):
        out.extend(orjson.loads(line) for line in path.read_bytes().splitlines())
    return out


class Load:
    """Threads sending decisions and rewards; records what the server acknowledged."""

    def __init__(self, address: str, threads: int = 4) -> None:
        self.decided: list[str] = []
        self.rewarded: list[tuple[str, str]] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._run, args=(address, t), daemon=True)
            for t in range(threads)
        ]
        for thread in self.threads:
            thread.start()

    def _run(self, address: str, t: int) -> None:
        with grpc.insecure_channel(address) as channel:
            stub = rpc.DecisionServiceStub(channel)
            for i in range(100_000):
                if self.stop.is_set():
                    return
                event_id, reward_id = f"t{t}-{i}", f"r{t}-{i}"
                try:
                    stub.Decide(
                        pb.DecideRequest(
                            policy=POLICY, intent="billing_dispute", event_id=event_id
                        ),
                        timeout=5,
                    )
                    with self.lock:
                        self.decided.append(event_id)
                    stub.Reward(
                        pb.RewardRequest(event_id=event_id, value=0.5, reward_id=reward_id),
                        timeout=5,
                    )
                    with self.lock:
                        self.rewarded.append((event_id, reward_id))
                except grpc.RpcError:
                    return

    def join(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)


@pytest.mark.parametrize("fsync", ["always", "interval"])
def test_kill_9_under_load_loses_nothing_acknowledged(tmp_path: Path, fsync: str) -> None:
    config, data = write_config(tmp_path), tmp_path / "data"
    process, started = serve(config, data, "--fsync", fsync)
    load = Load(started["grpc_address"])
    wait_for(lambda: len(load.rewarded) >= 400, timeout=60)
    process.proc.kill()  # SIGKILL: no flush, no checkpoint, in the middle of the load
    process.proc.wait(timeout=30)
    load.join()
    assert len(load.decided) >= 400

    process, started = serve(config, data)
    with grpc.insecure_channel(started["grpc_address"]) as channel:
        stub = rpc.DecisionServiceStub(channel)
        for event_id in load.decided:  # every acknowledged decision is there
            stub.Explain(pb.ExplainRequest(event_id=event_id), timeout=5)
        for event_id, reward_id in load.rewarded:  # every acknowledged reward, exactly once
            rewards = stub.Explain(pb.ExplainRequest(event_id=event_id), timeout=5).rewards
            assert [r.reward_id for r in rewards] == [reward_id]
        wait_for(lambda: pending(started["metrics_address"]) == 0, timeout=30)
        model_version = stub.Decide(pb.DecideRequest(policy=POLICY, intent="x")).model_version
    assert process.stop() == 0  # graceful: drains, checkpoints, exits 0
    logged = logged_events(data)
    ids = [record["EventId"] for record in logged]
    assert len(ids) == len(set(ids))  # every event joined once
    assert set(load.decided) <= set(ids)
    learned = [r for r in logged if r["_nextbest"]["join_status"] == "learned"]
    assert int(model_version) == len(learned)  # and learned once

    process, _ = serve(config, data)  # after a graceful stop the checkpoint holds everything
    recovered = process.wait_event("recovered")
    assert recovered["replayed"] == {POLICY: 0}
    assert recovered["checkpoints"][POLICY].endswith(".vw")
    process.stop()


def test_the_restart_reports_what_it_recovered(tmp_path: Path) -> None:
    config, data = write_config(tmp_path, wait="10m"), tmp_path / "data"
    process, started = serve(config, data)
    with grpc.insecure_channel(started["grpc_address"]) as channel:
        stub = rpc.DecisionServiceStub(channel)
        for i in range(5):
            stub.Decide(pb.DecideRequest(policy=POLICY, intent="x", event_id=f"e{i}"))
    assert process.stop() == 0
    journal = sorted((data / "journal").glob("*.jsonl"))[-1]
    with journal.open("ab") as f:
        f.write(b'{"k":"r","id":"e1","r":{"rew')  # a write torn by a crash
    process, _ = serve(config, data)
    recovered = process.wait_event("recovered")
    assert recovered["pending"] == 5
    damage = process.wait_event("damage")
    assert damage["action"] == "torn last line cut off"
    process.stop()


def test_a_full_disk_refuses_with_unavailable_and_keeps_what_was_acknowledged(
    tmp_path: Path,
) -> None:
    config, data = write_config(tmp_path, wait="10m"), tmp_path / "data"
    limit = 200 * 1024

    def small_disk() -> None:  # files of this process may not grow past `limit`
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    process, started = serve(config, data, preexec_fn=small_disk)
    acknowledged: list[str] = []
    failure: grpc.RpcError | None = None
    with grpc.insecure_channel(started["grpc_address"]) as channel:
        stub = rpc.DecisionServiceStub(channel)
        for i in range(2000):
            try:
                stub.Decide(pb.DecideRequest(policy=POLICY, intent="x", event_id=f"d{i}"))
                stub.Reward(pb.RewardRequest(event_id=f"d{i}", value=1.0, reward_id=f"r{i}"))
                acknowledged.append(f"d{i}")
            except grpc.RpcError as exc:
                failure = exc
                break
        assert failure is not None
        assert failure.code() is grpc.StatusCode.UNAVAILABLE
        assert "cannot write the journal" in (failure.details() or "")
        assert stub.Explain(pb.ExplainRequest(event_id=acknowledged[-1])).rewards  # still reads
    process.stop()

    process, started = serve(config, data)
    with grpc.insecure_channel(started["grpc_address"]) as channel:
        stub = rpc.DecisionServiceStub(channel)
        for event_id in acknowledged:
            rewards = stub.Explain(pb.ExplainRequest(event_id=event_id)).rewards
            assert [r.value for r in rewards] == [1.0]
    process.stop()


def test_model_export_and_import(tmp_path: Path) -> None:
    config, data = write_config(tmp_path, wait="100ms"), tmp_path / "data"
    process, started = serve(config, data)
    probe = pb.DecideRequest(policy=POLICY, intent="billing_dispute")
    with grpc.insecure_channel(started["grpc_address"]) as channel:
        stub = rpc.DecisionServiceStub(channel)
        for _ in range(50):
            d = stub.Decide(pb.DecideRequest(policy=POLICY, intent="billing_dispute"))
            stub.Reward(
                pb.RewardRequest(
                    event_id=d.event_id, value=1.0 if d.action_id == "transfer_billing" else 0
                )
            )
        wait_for(lambda: pending(started["metrics_address"]) == 0)
        trained = {r.action_id: r.score for r in stub.Decide(probe).ranking}
    process.stop()

    exported = tmp_path / "model.vw"
    cli = [sys.executable, "-m", "nextbest", "model"]
    ok = subprocess.run(
        [*cli, "export", POLICY, str(exported), "--config", str(config), "--data-dir", str(data)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert "50 learned events" in ok.stdout

    fresh = tmp_path / "fresh"
    ok = subprocess.run(
        [*cli, "import", POLICY, str(exported), "--config", str(config), "--data-dir", str(fresh)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    process, started = serve(config, fresh)
    with grpc.insecure_channel(started["grpc_address"]) as channel:
        served = {
            r.action_id: r.score for r in rpc.DecisionServiceStub(channel).Decide(probe).ranking
        }
    process.stop()
    assert served == pytest.approx(trained)

    other = tmp_path / "other.yaml"
    spec = yaml.safe_load(config.read_text())
    spec["policies"][POLICY]["vw_args"] = "--cb_explore_adf -q ::"
    other.write_text(yaml.safe_dump(spec))
    refused = subprocess.run(
        [
            *cli,
            "import",
            POLICY,
            str(exported),
            "--config",
            str(other),
            "--data-dir",
            str(tmp_path / "other"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode == 1
    assert "other VW arguments" in refused.stderr


def test_a_failed_fsync_turns_health_off_and_asks_the_process_to_stop(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fsync=interval: the background sync fails (EIO); nothing more is acknowledged, health
    says NOT_SERVING, and `nextbest serve` stops (exit 1) for its supervisor to restart it."""

    def failing_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    server.stub.Decide(pb.DecideRequest(policy="support.next_step", intent="x"))
    monkeypatch.setattr(os, "fsync", failing_fsync)
    wait_for(lambda: server.server.failed.is_set())
    monkeypatch.undo()
    health = health_pb2_grpc.HealthStub(server.channel)
    reply = health.Check(health_pb2.HealthCheckRequest(service=""))
    assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
    with pytest.raises(grpc.RpcError) as err:
        server.stub.Decide(pb.DecideRequest(policy="support.next_step", intent="x"))
    assert err.value.code() is grpc.StatusCode.UNAVAILABLE
