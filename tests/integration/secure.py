"""A real server with auth and TLS settings, and the files they read: auth files, tokens."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import grpc
import yaml

from nextbest.api.auth import digest
from nextbest.policy.config import Config
from nextbest.settings import ServerSettings
from nextbest_proto.v1 import decision_pb2_grpc as rpc
from tests.conftest import EXAMPLE
from tests.integration.conftest import RunningServer


class SecureServer(RunningServer):
    """:class:`RunningServer` with ``ServerSettings`` fields of its own (auth_file, tls_*)."""

    def __init__(self, config: Config, data_dir: Path, **settings: Any) -> None:
        values: dict[str, Any] = {
            "config": EXAMPLE,
            "address": "127.0.0.1:0",
            "metrics_address": "127.0.0.1:0",
            "data_dir": data_dir,
            "join_tick": 0.01,
            **settings,
        }
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        try:
            self.server = self._run(self._make(ServerSettings(**values), config))
            self._run(self.server.start())
        except BaseException:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)
            self.loop.close()
            raise
        self.target = f"127.0.0.1:{self.server.port}"
        self.metrics_url = f"http://127.0.0.1:{self.server.metrics_port}/metrics"
        # Plaintext and without credentials: what an outsider has.
        self.channel = grpc.insecure_channel(self.target)
        self.stub = rpc.DecisionServiceStub(self.channel)


def write_auth_file(path: Path, tokens: Mapping[str, tuple[str, Sequence[str]]]) -> Path:
    """An auth file admitting each ``name: (token, scopes)``."""
    entries = [
        {"name": name, "sha256": digest(token), "scopes": list(scopes)}
        for name, (token, scopes) in tokens.items()
    ]
    path.write_text(yaml.safe_dump({"tokens": entries}), encoding="utf-8")
    return path


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)
