"""`nextbest health`: exit 0 only when the server answers SERVING (Docker HEALTHCHECK,
Kubernetes exec probes)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from grpc_health.v1 import health_pb2

from nextbest.health import probe_address
from tests.deploy.conftest import free_port
from tests.integration.conftest import RunningServer, server, start_server

__all__ = ["server", "start_server"]  # the fixtures, shared with tests/integration


def health(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nextbest", "health", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_serving_exits_0_and_not_serving_exits_1(server: RunningServer) -> None:
    port = server.server.port
    done = health("--address", f"127.0.0.1:{port}")
    assert (done.returncode, done.stdout.strip()) == (0, f"127.0.0.1:{port}: SERVING")
    wildcard = health("--address", f"0.0.0.0:{port}", "--service", "nextbest.v1.DecisionService")
    assert wildcard.returncode == 0
    server._run(server.server._health.set("", health_pb2.HealthCheckResponse.NOT_SERVING))
    done = health("--address", f"127.0.0.1:{port}")
    assert (done.returncode, done.stderr.strip()) == (1, f"127.0.0.1:{port}: NOT_SERVING")


def test_nothing_listening_exits_2() -> None:
    done = health("--address", f"127.0.0.1:{free_port()}", "--timeout", "2")
    assert done.returncode == 2
    assert "UNAVAILABLE" in done.stderr


@pytest.mark.parametrize(
    ("listening", "asked"),
    [
        ("0.0.0.0:50051", "127.0.0.1:50051"),
        ("[::]:50051", "127.0.0.1:50051"),
        ("10.0.0.7:50051", "10.0.0.7:50051"),
        ("localhost:1", "localhost:1"),
    ],
)
def test_a_wildcard_listening_address_is_asked_on_loopback(listening: str, asked: str) -> None:
    assert probe_address(listening) == asked
