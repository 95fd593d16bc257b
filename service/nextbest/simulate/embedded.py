"""A real nextbest server inside the simulator's process, for `simulate` without --target.

The server is the same `Server` that `nextbest serve` runs, on 127.0.0.1 with ports the OS
picks, driven by its own asyncio loop on a background thread, so the synchronous simulator
talks to it over real gRPC like any client. Its policy file is written to a temporary
directory and loaded from there, exactly as a served file would be; its data directory (the
journal and decision logs) lives there too and goes with it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any, TypeVar

import yaml

from nextbest.api.server import Server
from nextbest.settings import ServerSettings
from nextbest.store.durable import Durability

T = TypeVar("T")
START_TIMEOUT = 30.0


class _LoopThread:
    """An asyncio loop running forever on a daemon thread; coroutines are run to completion."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="nextbest-embedded", daemon=True
        )
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=START_TIMEOUT)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=START_TIMEOUT)
        self.loop.close()


async def _make_server(settings: ServerSettings) -> Server:
    return Server(settings)  # built on the loop: its gRPC and health objects belong to it


@contextmanager
def embedded_server(config: dict[str, Any]) -> Iterator[str]:
    """Serve the policy file `config` (as parsed YAML) until exit; yields `127.0.0.1:PORT`."""
    with TemporaryDirectory(prefix="nextbest-simulate-") as tmp:
        path = Path(tmp) / "policies.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        settings = ServerSettings(
            config=path,
            address="127.0.0.1:0",
            metrics_address="127.0.0.1:0",
            data_dir=Path(tmp) / "data",
            # the data dir is thrown away at exit: nothing to make durable
            durability=Durability(fsync="never"),
        )
        loop = _LoopThread()
        try:
            server = loop.run(_make_server(settings))
            try:
                loop.run(server.start())
                yield f"127.0.0.1:{server.port}"
            finally:
                loop.run(server.stop())  # safe after a failed start: it closes what opened
        finally:
            loop.close()
