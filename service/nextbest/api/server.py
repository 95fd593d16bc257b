"""The process: gRPC (DecisionService, health, reflection), /metrics, the join clock,
durability (fsync, checkpoints) and graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from nextbest.api.decision import DecisionServicer
from nextbest.observability.http import serve_metrics
from nextbest.observability.logging import get_logger
from nextbest.observability.metrics import Metrics, Telemetry
from nextbest.policy.config import Config, load_config
from nextbest.policy.engine import Engine
from nextbest.policy.errors import ConfigError
from nextbest.settings import ServerSettings, split_address
from nextbest.store.durable import open_store
from nextbest_client.v1 import decision_pb2, decision_pb2_grpc

SERVICE_NAME = decision_pb2.DESCRIPTOR.services_by_name["DecisionService"].full_name


class Server:
    """One nextbest process in embedded mode. `start()`, then `stop()`; ports after start."""

    def __init__(self, settings: ServerSettings, config: Config | None = None) -> None:
        self.settings = settings
        self.log = get_logger("nextbest.server")
        self.metrics = Metrics()
        config = config if config is not None else load_config(settings.config)
        try:
            self.store, models, recovery = open_store(
                Path(settings.data_dir), config, settings.durability, settings.retain_closed
            )
        except OSError as exc:
            raise OSError(f"data dir {settings.data_dir}: {exc.strerror or exc}") from exc
        self.log.info(
            "recovered",
            data_dir=str(settings.data_dir),
            pending=recovery.pending,
            closed=recovery.closed,
            checkpoints=recovery.checkpoints,
            replayed=recovery.replayed,
        )
        for damage in recovery.damage:
            self.log.warning(
                "damage", path=str(damage.path), line=damage.line, action=damage.action
            )
        for problem in recovery.problems:
            self.log.warning("checkpoint_skipped", reason=problem)
        self.engine = Engine(
            config,
            self.store,
            Telemetry(self.metrics),
            time.time,
            settings.limits,
            models=models,
        )
        self.metrics.watch(
            self.engine.pending_counts,
            lambda: {name: rt.model.version for name, rt in self.engine.policies.items()},
        )
        self.port = 0
        self.metrics_port = 0
        self._grpc: grpc.aio.Server | None = None
        self._http: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._health = health.aio.HealthServicer()
        self._learned_at_checkpoint = self._learned()
        self._checkpointed_at = time.monotonic()

    async def start(self) -> None:
        server = grpc.aio.server()
        decision_pb2_grpc.add_DecisionServiceServicer_to_server(
            DecisionServicer(self.engine, self.metrics, self.store.commit), server
        )
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            [SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME], server
        )
        host, port = split_address(self.settings.address)
        self.port = server.add_insecure_port(f"{host}:{port}")
        if self.port == 0:
            raise OSError(f"cannot bind gRPC to {self.settings.address}")
        mhost, mport = split_address(self.settings.metrics_address)
        self._http = serve_metrics(self.metrics.registry, mhost, mport)
        self.metrics_port = self._http.server_port
        await server.start()
        self._grpc = server
        for name in ("", SERVICE_NAME):
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self._tasks = [
            asyncio.create_task(self._join_clock(), name="nextbest-joins"),
            asyncio.create_task(self.store.sync_periodically(), name="nextbest-fsync"),
        ]
        self.log.info(
            "serving",
            grpc_address=f"{host}:{self.port}",
            metrics_address=f"{mhost}:{self.metrics_port}",
            policies=sorted(self.engine.policies),
            config=str(self.settings.config),
            data_dir=str(self.settings.data_dir),
            fsync=self.settings.durability.fsync,
        )

    async def _join_clock(self) -> None:
        """Close ended windows (learning each event with its joined or default reward), and
        checkpoint the models every `checkpoint_every` learned events or
        `checkpoint_interval` seconds."""
        limit = 1000
        while True:
            try:
                closed = self.engine.close_due(limit=limit)
                self._maybe_checkpoint()
            except Exception:  # a bug must not stop learning for good; it is logged loudly
                self.log.exception("join_clock_failed")
                closed = 0
            await asyncio.sleep(0 if closed == limit else self.settings.join_tick)

    def _learned(self) -> int:
        return sum(model.learned for model in self.engine.models().values())

    def _maybe_checkpoint(self, force: bool = False) -> None:
        learned = self._learned()
        new = learned - self._learned_at_checkpoint
        due = time.monotonic() - self._checkpointed_at >= self.settings.checkpoint_interval
        if new > 0 and (force or due or new >= self.settings.checkpoint_every):
            self.checkpoint()

    def checkpoint(self) -> None:
        """Save every model that learned since its last checkpoint (atomically)."""
        try:
            saved = self.store.checkpoint(self.engine.models())
        except OSError as exc:  # disk full: keep serving; the journal and logs still hold all
            self.log.error("checkpoint_failed", reason=exc.strerror or str(exc))
            return
        self._learned_at_checkpoint = self._learned()
        self._checkpointed_at = time.monotonic()
        if saved:
            self.log.info("checkpoint", learned=saved)

    def reload(self, path: Path | None = None) -> bool:
        """Re-read the config file; a bad one is logged and the running config stays."""
        path = path or self.settings.config
        try:
            self.engine.reload(load_config(path))
        except ConfigError as exc:
            self.log.error("config_rejected", config=str(path), reason=str(exc))
            return False
        self.log.info("config_reloaded", config=str(path), policies=sorted(self.engine.policies))
        return True

    async def stop(self) -> None:
        """Stop accepting, let in-flight RPCs finish within the grace period, then
        checkpoint, flush and close the files."""
        await self._health.enter_graceful_shutdown()
        if self._grpc is not None:
            await self._grpc.stop(self.settings.grace)
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        self._maybe_checkpoint(force=True)
        self.store.close_files()
        self.engine.close()
        self.log.info("stopped")

    async def wait(self) -> None:
        if self._grpc is not None:
            await self._grpc.wait_for_termination()
