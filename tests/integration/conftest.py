"""A real nextbest gRPC server on a free loopback port, in this process, on its own loop."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from nextbest.api.server import Server
from nextbest.policy.config import Config
from nextbest.settings import ServerSettings
from nextbest_proto.v1 import decision_pb2 as pb
from nextbest_proto.v1 import decision_pb2_grpc as rpc
from tests.conftest import EXAMPLE, make_config, support_policy

T = TypeVar("T")


class RunningServer:
    """Starts `Server` on a private event loop thread; tests talk to it only over the wire."""

    def __init__(self, config: Config, data_dir: Path) -> None:
        settings = ServerSettings(
            config=EXAMPLE,
            address="127.0.0.1:0",
            metrics_address="127.0.0.1:0",
            data_dir=data_dir,
            join_tick=0.01,
        )
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = self._run(self._make(settings, config))
        self._run(self.server.start())
        self.target = f"127.0.0.1:{self.server.port}"
        self.metrics_url = f"http://127.0.0.1:{self.server.metrics_port}/metrics"
        self.channel = grpc.insecure_channel(self.target)
        self.stub = rpc.DecisionServiceStub(self.channel)

    @staticmethod
    async def _make(settings: ServerSettings, config: Config) -> Server:
        return Server(settings, config)

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def stop(self) -> None:
        self.channel.close()
        self._run(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[[Config], RunningServer]]:
    started: list[RunningServer] = []

    def start(config: Config) -> RunningServer:
        server = RunningServer(config, tmp_path / f"data{len(started)}")
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def server(start_server: Callable[[Config], RunningServer]) -> RunningServer:
    return start_server(make_config(support__next_step=support_policy()))


def wait_for(condition: Callable[[], T | None], timeout: float = 10.0) -> T:
    """Poll until condition() is truthy; fail with a clear message at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.01)


def field_violations(error: grpc.RpcError) -> list[str]:
    """The fields named by the server's google.rpc.BadRequest detail."""
    status = rpc_status.from_call(error)
    fields: list[str] = []
    for detail in status.details if status else []:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            fields.extend(v.field for v in bad.field_violations)
    return fields


def ctx(**values: float | str | bool | list[str]) -> dict[str, pb.Value]:
    out = {}
    for name, v in values.items():
        if isinstance(v, bool):
            out[name] = pb.Value(flag=v)
        elif isinstance(v, int | float):
            out[name] = pb.Value(number=float(v))
        elif isinstance(v, str):
            out[name] = pb.Value(text=v)
        else:
            out[name] = pb.Value(texts=pb.TextList(values=v))
    return out


def serve_args(data_dir: Path, *extra: str, address: str = "127.0.0.1:0") -> list[str]:
    """`nextbest serve` on the example policy at `address`, its /metrics on a free loopback
    port, with its own data dir and `extra` flags."""
    return [
        "serve",
        "--config",
        str(EXAMPLE),
        "--address",
        address,
        "--metrics-address",
        "127.0.0.1:0",
        "--data-dir",
        str(data_dir),
        *extra,
    ]


class Process:
    """A `nextbest serve` subprocess whose JSON log lines are read on a thread."""

    def __init__(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        preexec_fn: Callable[[], None] | None = None,
    ) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "nextbest", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
            preexec_fn=preexec_fn,
        )
        Process.started.append(self)
        self.lines: queue.Queue[str] = queue.Queue()
        self.records: list[dict[str, Any]] = []
        self._returned: set[int] = set()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_event(self, event: str, timeout: float = 30.0) -> dict[str, Any]:
        """The next log record with this event name, earlier ones included: each record is
        returned once."""
        deadline = time.monotonic() + timeout
        while True:
            for i, record in enumerate(self.records):
                if record.get("event") == event and i not in self._returned:
                    self._returned.add(i)
                    return record
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.001))
            except queue.Empty:
                raise AssertionError(f"no {event!r} log line within {timeout}s") from None
            try:
                self.records.append(dict(json.loads(line)))
            except (json.JSONDecodeError, TypeError, ValueError):
                continue

    started: ClassVar[list[Process]] = []

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


@pytest.fixture(autouse=True)
def _no_stray_servers() -> Iterator[None]:
    """Every server process a test started is gone when the test ends, failed or not."""
    yield
    while Process.started:
        process = Process.started.pop()
        if process.proc.poll() is None:
            process.proc.kill()
            process.proc.wait(timeout=30)
