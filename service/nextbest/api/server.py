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

from nextbest.api.boundary import add_decision_service
from nextbest.api.decision import DecisionServicer
from nextbest.observability.http import serve_metrics
from nextbest.observability.logging import get_logger
from nextbest.observability.metrics import Metrics, Telemetry
from nextbest.policy.config import Config, load_config
from nextbest.policy.engine import Engine, PreparedConfig
from nextbest.policy.errors import ConfigError
from nextbest.settings import ServerSettings, split_address
from nextbest.store.durable import open_store
from nextbest.store.lock import DataDirError
from nextbest_client.v1 import decision_pb2

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
                Path(settings.data_dir),
                config,
                settings.durability,
                settings.retain_closed,
                max_pending_bytes=settings.max_pending_bytes,
                max_closed_bytes=settings.max_closed_bytes,
            )
        except DataDirError:  # its message names the data dir and the reason
            raise
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
            Telemetry(self.metrics, lambda policy: self.engine.policies[policy].catalog),
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
        self._reloading = asyncio.Lock()
        self._checkpointed_at = time.monotonic()
        self._checkpoint_backoff = 0.0  # seconds; doubles after each failed checkpoint
        self._checkpoint_retry_at = 0.0  # monotonic time before which none is tried
        self._failure_reported = False

    async def start(self) -> None:
        limit = self.settings.max_receive_message_bytes
        server = grpc.aio.server(options=[("grpc.max_receive_message_length", limit)])
        add_decision_service(
            DecisionServicer(self.engine, self.metrics, self.store.commit), server, self.metrics
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
            if self.store.failure is not None and not self._failure_reported:
                # An fsync failed: the store refuses writes until a restart recovers from
                # what the disk holds; say so, and let health checks restart the process.
                self._failure_reported = True
                self.log.error("data_dir_failed", reason=self.store.failure)
                for name in ("", SERVICE_NAME):
                    await self._health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
            await asyncio.sleep(0 if closed == limit else self.settings.join_tick)

    def _maybe_checkpoint(self, force: bool = False) -> None:
        """Checkpoint when due; after a failure, not before its back-off ends (unless
        forced, at shutdown)."""
        now = time.monotonic()
        if not force and now < self._checkpoint_retry_at:
            return
        new = self.store.unsaved(self.engine.models())  # per policy: reloads change models
        due = now - self._checkpointed_at >= self.settings.checkpoint_interval
        if new > 0 and (force or due or new >= self.settings.checkpoint_every):
            self.checkpoint()

    def checkpoint(self) -> None:
        """Save every model that learned since its last checkpoint (atomically)."""
        try:
            saved = self.store.checkpoint(self.engine.models())
        except OSError as exc:  # disk full: keep serving; the journal and logs still hold all
            self._checkpoint_backoff = min(max(2 * self._checkpoint_backoff, 1.0), 60.0)
            self._checkpoint_retry_at = time.monotonic() + self._checkpoint_backoff
            self.log.error(
                "checkpoint_failed",
                reason=exc.strerror or str(exc),
                retry_in=self._checkpoint_backoff,
            )
            return
        self._checkpoint_backoff = self._checkpoint_retry_at = 0.0
        self._checkpointed_at = time.monotonic()
        if saved:
            self.log.info("checkpoint", learned=saved)

    def reload(self, path: Path | None = None) -> bool:
        """Re-read the config file; a bad one is logged and the running config stays."""
        path = path or self.settings.config
        try:
            prepared = self.engine.prepare(load_config(path))
        except Exception as exc:
            return self._rejected(path, exc)
        return self._install(path, prepared)

    async def reload_async(self, path: Path | None = None) -> bool:
        """`reload` with the slow part (parsing, compiling rules, making VW workspaces) on
        a thread, so a large file or rule never stalls the calls being served; reloads run
        one at a time."""
        path = path or self.settings.config
        async with self._reloading:
            try:
                config = await asyncio.to_thread(load_config, path)
                prepared = await asyncio.to_thread(self.engine.prepare, config)
            except Exception as exc:
                return self._rejected(path, exc)
            return self._install(path, prepared)

    def _rejected(self, path: Path, exc: Exception) -> bool:
        if isinstance(exc, ConfigError):
            self.log.error("config_rejected", config=str(path), reason=str(exc))
        else:  # not foreseen, but the running config must stay all the same
            self.log.error(
                "config_rejected", config=str(path), reason=repr(exc)[:500], exc_info=exc
            )
        return False

    def _install(self, path: Path, prepared: PreparedConfig) -> bool:
        self.engine.install(prepared)
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
        try:
            self.store.close_files()
        except OSError as exc:  # a failed fsync: recovery will read what the disk holds
            self.log.error("close_failed", reason=exc.strerror or str(exc))
        self.engine.close()
        self.log.info("stopped")

    async def wait(self) -> None:
        if self._grpc is not None:
            await self._grpc.wait_for_termination()
