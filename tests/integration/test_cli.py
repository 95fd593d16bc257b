"""`nextbest serve` as a user runs it: a real process, its ports in the log, signals."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from nextbest_proto.v1 import decision_pb2 as pb
from nextbest_proto.v1 import decision_pb2_grpc as rpc
from tests.conftest import EXAMPLE
from tests.integration.conftest import Process, serve_args


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "policies.yaml"
    shutil.copy(EXAMPLE, path)
    return path


@pytest.fixture
def served(config_file: Path, tmp_path: Path) -> Iterator[tuple[Process, dict[str, Any]]]:
    process = Process(
        "serve",
        "--config",
        str(config_file),
        "--data-dir",
        str(tmp_path / "data"),
        env={"NEXTBEST_ADDRESS": "127.0.0.1:0", "NEXTBEST_METRICS_ADDRESS": "127.0.0.1:0"},
    )
    started = process.wait_event("serving")
    yield process, started
    process.stop()


def decide(address: str) -> pb.DecideResponse:
    with grpc.insecure_channel(address) as channel:
        return rpc.DecisionServiceStub(channel).Decide(
            pb.DecideRequest(policy="support.next_step", intent="billing_dispute"), timeout=10
        )


def test_serve_logs_its_ports_serves_and_stops_cleanly(
    served: tuple[Process, dict[str, Any]],
) -> None:
    process, started = served
    assert started["policies"] == ["support.next_step"]
    d = decide(started["grpc_address"])
    assert d.action_id
    assert process.wait_event("decision")["event_id"] == d.event_id
    url = f"http://{started['metrics_address']}/metrics"
    with urllib.request.urlopen(url, timeout=5) as reply:
        assert b"nextbest_decisions_total" in reply.read()
    assert process.stop() == 0
    process.wait_event("stopped")


def test_sighup_reloads_and_a_bad_config_keeps_the_running_one(
    served: tuple[Process, dict[str, Any]], config_file: Path
) -> None:
    process, started = served
    before = decide(started["grpc_address"])
    good = config_file.read_text()
    config_file.write_text(
        good.replace("epsilon: 0.1, max_epsilon: 0.3", "epsilon: 0.9, max_epsilon: 0.3")
    )
    process.proc.send_signal(signal.SIGHUP)
    rejected = process.wait_event("config_rejected")
    assert (
        "support.next_step.exploration: epsilon 0.9 exceeds max_epsilon 0.3" in (rejected["reason"])
    )
    assert decide(started["grpc_address"]).config_version == before.config_version

    config_file.write_text(good.replace("billing_dispute: 0.2", "billing_dispute: 0.25"))
    process.proc.send_signal(signal.SIGHUP)
    process.wait_event("config_reloaded")
    after = decide(started["grpc_address"])
    assert after.config_version != before.config_version
    assert after.epsilon == 0.25


def test_a_bad_config_stops_the_start_with_the_reason(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        EXAMPLE.read_text().replace(
            "fallback_action: escalate_human", "fallback_action: call_the_ceo"
        )
    )
    process = Process(
        "serve",
        "--config",
        str(bad),
        "--address",
        "127.0.0.1:0",
        "--metrics-address",
        "127.0.0.1:0",
    )
    record = process.wait_event("cannot_start")
    assert "support.next_step" in record["reason"]
    assert "fallback_action 'call_the_ceo' is not in actions" in record["reason"]
    assert process.proc.wait(timeout=30) == 2


def test_config_check() -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "nextbest", "config", "check", str(EXAMPLE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0
    assert ok.stdout.startswith("support.next_step: 4 actions, 1 safety rules, mode online")


def test_operator_mistakes_on_sighup_are_config_rejected_lines(
    served: tuple[Process, dict[str, Any]], config_file: Path
) -> None:
    """Not tracebacks: a non-UTF-8 file, YAML nested too deep, a rule too costly to run."""
    process, started = served
    before = decide(started["grpc_address"])
    good = config_file.read_text()
    nested = "context.xs.exists(a, context.xs.exists(b, a == b))"
    mistakes = {
        "UTF-8": (good + "# caf\xe9\n").encode("latin-1"),
        "too deep": ("policies: " + "[" * 20_000 + "]" * 20_000).encode(),
        "nested comprehensions": good.replace("context.account_age_days < 30", nested).encode(),
    }
    for expected, content in mistakes.items():
        config_file.write_bytes(content)
        process.proc.send_signal(signal.SIGHUP)
        rejected = process.wait_event("config_rejected")
        assert expected in rejected["reason"], rejected
        assert decide(started["grpc_address"]).config_version == before.config_version
    assert process.stop() == 0


def test_config_check_builds_the_vw_arguments(tmp_path: Path) -> None:
    """`config check` refuses what `serve` would: VW's own verdict on vw_args included."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        EXAMPLE.read_text().replace("policies:", "policies:", 1)
        + "\n  other:\n    actions: [{id: a}]\n    vw_args: --cb_explore_adf --no_such_option\n"
    )
    for path in (bad, tmp_path / "latin1.yaml"):
        if path.name == "latin1.yaml":
            path.write_bytes("policies:\n  caf\xe9: {}\n".encode("latin-1"))
        checked = subprocess.run(
            [sys.executable, "-m", "nextbest", "config", "check", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert checked.returncode == 1, checked
        assert checked.stderr.startswith("invalid: "), checked.stderr
        assert "Traceback" not in checked.stderr


def test_nextbest_admin_steers_a_running_server(served: tuple[Process, dict[str, Any]]) -> None:
    process, started = served
    address = started["grpc_address"]

    def admin(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "nextbest", "admin", "--address", address, *args],
            capture_output=True,
            text=True,
            check=False,
        )

    night = ("--intent", "billing_dispute=0.05", "--reason", "night")
    done = admin("set-exploration", "support.next_step", *night)
    assert done.returncode == 0, done.stderr
    assert "override exploration.per_intent.billing_dispute = 0.05 over 0.2  by anonymous" in (
        done.stdout
    )
    assert decide(address).epsilon == 0.05  # a billing_dispute decision
    shown = json.loads(admin("--json", "get", "support.next_step").stdout)
    assert shown["exploration"]["per_intent"] == {"billing_dispute": 0.05}
    assert shown["file_exploration"]["per_intent"] == {"billing_dispute": 0.2}
    refused = admin("set-exploration", "support.next_step", "--epsilon", "0.9", "--reason", "x")
    assert refused.returncode == 1
    assert "INVALID_ARGUMENT: epsilon: 0.9 exceeds the policy's max_epsilon 0.3" in refused.stderr
    assert admin("clear", "support.next_step", "--reason", "morning").returncode == 0
    assert decide(address).epsilon == 0.2
    process.wait_event("config_change")


def test_serve_runs_on_uvloop_unless_told_otherwise(tmp_path: Path) -> None:
    """uvloop costs less CPU per call (bench/wire.py); asyncio stays one setting away, and
    a loop that is neither is refused before anything starts."""
    process = Process(*serve_args(tmp_path / "a"))
    assert process.wait_event("serving")["event_loop"] == "uvloop"
    assert process.stop() == 0
    process = Process(*serve_args(tmp_path / "b"), env={"NEXTBEST_EVENT_LOOP": "asyncio"})
    assert process.wait_event("serving")["event_loop"] == "asyncio"
    assert process.stop() == 0
    process = Process(*serve_args(tmp_path / "c"), env={"NEXTBEST_EVENT_LOOP": "trio"})
    assert process.proc.wait(timeout=30) == 2


@pytest.mark.parametrize(
    ("extra", "env", "line"),
    [
        (["--workers", "many"], {}, "--workers many: "),
        ([], {"NEXTBEST_LOG_LEVEL": "loud"}, "--log-level loud: "),
        ([], {"NEXTBEST_EVENT_LOOP": "trio"}, "--event-loop trio: "),
        (["--limits", '{"max_batch": "x"}'], {}, "--limits max_batch=x: "),
    ],
)
def test_a_wrong_setting_stops_the_start_with_one_line_naming_its_flag(
    tmp_path: Path, extra: list[str], env: dict[str, str], line: str
) -> None:
    process = Process(*serve_args(tmp_path / "data", *extra), env=env)
    record = process.wait_event("cannot_start")
    assert record["reason"].startswith(line), record
    assert "\n" not in record["reason"]
    assert process.proc.wait(timeout=30) == 2
    assert not (tmp_path / "data").exists()  # refused before anything was started


def test_a_flag_wins_over_its_variable(tmp_path: Path) -> None:
    """The variable is not even read when the flag is given; the others are."""
    process = Process(
        *serve_args(tmp_path / "data"),
        env={"NEXTBEST_ADDRESS": "nowhere", "NEXTBEST_EVENT_LOOP": "asyncio"},
    )
    assert process.wait_event("serving")["event_loop"] == "asyncio"
    assert process.stop() == 0


def test_serve_help_names_every_setting_and_its_variable() -> None:
    from nextbest.settings import ServerSettings, env_var, flag

    shown = subprocess.run(
        [sys.executable, "-m", "nextbest", "serve", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for name in ServerSettings.model_fields:
        assert re.search(rf"{flag(name)}(?![\w-])", shown), flag(name)
        assert f"[{env_var(name)}]" in shown
