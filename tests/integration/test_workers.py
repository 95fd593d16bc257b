"""`nextbest serve --workers N`: N serving processes on one gRPC port and one /metrics.

Real processes throughout: the parent, its children and a real redis-server. Every child's
log lines carry its `worker` index and `pid`, which is how a test sees which child answered
(the kernel balances connections, not calls, so each attempt opens a fresh connection).
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from nextbest_proto.v1 import decision_pb2 as pb
from nextbest_proto.v1 import decision_pb2_grpc as rpc
from tests.integration.conftest import Process, serve_args, wait_for
from tests.redis_server import RedisServer

POLICY = "support.next_step"
SOME_REDIS = "redis://127.0.0.1:1/0"  # never reached: the settings are refused first


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def scrape(url: str) -> dict[str, list[Any]]:
    with urllib.request.urlopen(url, timeout=5) as reply:
        text = reply.read().decode()
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def total(samples: list[Any]) -> float:
    return float(sum(s.value for s in samples if s.name.endswith("_total")))


def exit_code(process: Process, timeout: float = 60.0) -> int:
    """The process's exit code; on a timeout, a failure showing what it logged last."""
    try:
        return process.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        lines = [str(r) for r in process.records]
        while True:
            try:
                lines.append(process.lines.get_nowait())
            except queue.Empty:
                break
        shown = "\n".join(line.rstrip()[:300] for line in lines[-30:])
        raise AssertionError(f"still running after {timeout}s; it logged last:\n{shown}") from None


def connect(target: str) -> grpc.Channel:
    """A channel on a connection of its own (grpc would otherwise share one between
    channels to the same target)."""
    return grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])


@pytest.mark.parametrize(
    ("extra", "env", "named"),
    [
        (["--workers", "2"], {}, "--redis"),
        ([], {"NEXTBEST_WORKERS": "2"}, "--redis"),
        (["--workers", "2", "--redis", SOME_REDIS], {}, "fixed --address port"),
        (
            ["--workers", "2", "--redis", SOME_REDIS, "--role", "learner"],
            {},
            "--role learner",
        ),
        (
            ["--workers", "2", "--redis", SOME_REDIS, "--http-address", "127.0.0.1:0"],
            {},
            "--http-address",
        ),
        (["--workers", "0"], {}, "--workers 0"),
    ],
)
def test_workers_refuse_what_they_cannot_serve(
    tmp_path: Path, extra: list[str], env: dict[str, str], named: str
) -> None:
    """Embedded mode has one data dir, owned by one process; port 0 would give each worker a
    port of its own; the learner and the REST API are one process each."""
    fixed = "--redis" in extra and named != "fixed --address port"
    address = f"127.0.0.1:{free_port()}" if fixed else "127.0.0.1:0"
    process = Process(*serve_args(tmp_path / "data", *extra, address=address), env=env)
    record = process.wait_event("cannot_start")
    assert named in record["reason"]
    assert "\n" not in record["reason"]
    assert process.proc.wait(timeout=30) == 2
    assert not (tmp_path / "data").exists()  # refused before anything was started


class Workers:
    """`nextbest serve --workers 2 --redis URL` on a fixed port, and what its logs said."""

    def __init__(self, data_dir: Path, redis: str, workers: int = 2) -> None:
        self.address = f"127.0.0.1:{free_port()}"
        self.process = Process(
            *serve_args(data_dir, "--workers", str(workers), "--redis", redis, address=self.address)
        )
        started = self.process.wait_event("workers_started")
        self.pids: list[int] = started["pids"]
        assert len(self.pids) == workers
        assert self.process.proc.pid not in self.pids
        self.metrics_url = f"http://{started['metrics_address']}/metrics"
        serving = [self.process.wait_event("serving") for _ in range(workers)]
        assert sorted(r["pid"] for r in serving) == sorted(self.pids)
        assert {r["grpc_address"] for r in serving} == {self.address}
        assert all(r["metrics_address"] is None for r in serving)  # the parent serves it
        self.answered: dict[str, int] = {}  # event id → the pid whose log line says it decided

    def decided_by(self, event_id: str) -> int:
        while event_id not in self.answered:
            record = self.process.wait_event("decision")
            self.answered[record["event_id"]] = record["pid"]
        return self.answered[event_id]


@pytest.fixture
def workers(tmp_path: Path, redis_server: RedisServer) -> Iterator[Workers]:
    started = Workers(tmp_path / "data", redis_server.url)
    try:
        yield started
    finally:
        started.process.stop()


def decide(target: str) -> pb.DecideResponse:
    channel = connect(target)
    try:
        response: pb.DecideResponse = rpc.DecisionServiceStub(channel).Decide(
            pb.DecideRequest(
                policy=POLICY, intent="billing_dispute", context={"amount": pb.Value(number=10)}
            ),
            timeout=10,
        )
        return response
    finally:
        channel.close()


def test_every_worker_answers_rewards_join_across_them_and_metrics_sum(
    workers: Workers,
) -> None:
    by_pid: dict[int, list[str]] = {}

    def both_answered() -> bool:
        event_id = decide(workers.address).event_id
        by_pid.setdefault(workers.decided_by(event_id), []).append(event_id)
        return set(by_pid) == set(workers.pids)

    wait_for(both_answered, timeout=60)
    decided = sum(len(ids) for ids in by_pid.values())
    # A reward on other connections joins whichever worker decided: the join is in Redis.
    for pid, ids in by_pid.items():
        channel = connect(workers.address)
        try:
            answer = rpc.DecisionServiceStub(channel).Reward(
                pb.RewardRequest(event_id=ids[0], value=1.0), timeout=10
            )
        finally:
            channel.close()
        assert answer.status == pb.REWARD_STATUS_ACCEPTED, pid

    # The parent's /metrics holds both children's counts, summed; the engine-state gauges
    # (set by each child every second) are there too.
    def merged() -> dict[str, list[Any]] | None:
        m = scrape(workers.metrics_url)
        done = (
            total(m.get("nextbest_decisions", [])) == decided
            and total(m.get("nextbest_rewards", [])) == len(by_pid)
            and [s.labels for s in m.get("nextbest_model_version", [])] == [{"policy": POLICY}]
            and [s.labels for s in m.get("nextbest_pending_events", [])] == [{"policy": POLICY}]
        )
        return m if done else None

    m = wait_for(merged, timeout=30)
    assert "pid" not in m["nextbest_model_version"][0].labels  # merged, not per process
    # SIGHUP reaches every worker; SIGTERM stops them all, gracefully, and the parent exits 0.
    workers.process.proc.send_signal(signal.SIGHUP)
    reloaded = {workers.process.wait_event("config_reloaded")["pid"] for _ in workers.pids}
    assert reloaded == set(workers.pids)
    workers.process.proc.send_signal(signal.SIGTERM)
    assert exit_code(workers.process) == 0
    stopped = [workers.process.wait_event("stopped") for _ in range(len(workers.pids) + 1)]
    assert {r.get("pid") for r in stopped} == {*workers.pids, None}  # None: the parent's
    assert stopped[-1]["codes"] == [0] * len(workers.pids)
    for pid in workers.pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_worker_that_dies_stops_the_others_and_the_parent_fails(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """No restarts: a supervisor restarts the whole set."""
    workers = Workers(tmp_path / "data", redis_server.url)
    dead, other = workers.pids
    os.kill(dead, signal.SIGKILL)
    exited = workers.process.wait_event("worker_exited")
    assert (exited["pid"], exited["code"]) == (dead, -signal.SIGKILL)
    assert exit_code(workers.process) == 128 + signal.SIGKILL
    assert workers.process.wait_event("stopped").get("pid") == other  # gracefully
    parent = workers.process.wait_event("stopped")
    assert (parent.get("pid"), parent["exit"]) == (None, 128 + signal.SIGKILL)
