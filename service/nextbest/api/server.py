"""The process: gRPC (DecisionService, health, reflection), /metrics, the join clock,
durability (fsync, checkpoints) and graceful shutdown."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from nextbest import tasks
from nextbest.api.admin import METHODS as ADMIN_METHODS
from nextbest.api.admin import SERVICE as ADMIN_SERVICE
from nextbest.api.admin import AdminServicer
from nextbest.api.auth import AuthFileError, Authorizer, is_loopback
from nextbest.api.boundary import add_decision_service, add_service
from nextbest.api.decision import DecisionServicer
from nextbest.api.personalizer.http import PersonalizerHttp, check_exposure
from nextbest.observability.audit import AuditTelemetry
from nextbest.observability.http import serve_metrics
from nextbest.observability.logging import get_logger
from nextbest.observability.metrics import Metrics, Telemetry
from nextbest.policy.config import Config, load_config
from nextbest.policy.control import SYNC_CALLER, Control, ReloadVerdict, Told
from nextbest.policy.engine import Engine, PreparedConfig
from nextbest.policy.errors import ConfigError, DecisionError
from nextbest.policy.model import Model
from nextbest.policy.ports import EventStore
from nextbest.settings import ServerSettings, split_address
from nextbest.store.control import ControlFiles
from nextbest.store.durable import CheckpointJob, DurableStore, open_store
from nextbest.store.lock import DataDirError
from nextbest_proto.v1 import decision_pb2

GC_YOUNG_THRESHOLD = 10_000  # allocations between young collections (Python's default: 700)
if TYPE_CHECKING:
    from nextbest.api.redis_mode import RedisMode

SERVICE_NAME = decision_pb2.DESCRIPTOR.services_by_name["DecisionService"].full_name


class Server:
    """One nextbest process, embedded (the default) or in Redis mode (`redis_url`, see
    `api.redis_mode`). `start()`, then `stop()`; ports after start."""

    def __init__(self, settings: ServerSettings, config: Config | None = None) -> None:
        self.settings = settings
        self.log = get_logger("nextbest.server")
        self.metrics = Metrics()
        # Before the data dir is opened: a bad auth file or an open address stops the start.
        self.authorize = self._authorizer(settings)
        check_exposure(settings, self.authorize)  # the Personalizer API's address
        config = config if config is not None else load_config(settings.config)
        self._config = config
        # Redis mode: events live in Redis, the learner owns the data dir (see redis_mode).
        self.redis: RedisMode | None = None
        if settings.redis_url is not None:  # imported here: embedded mode never loads redis
            from nextbest.api.redis_mode import RedisMode

            self.redis = RedisMode(settings)
        self.store: DurableStore | None = None
        if self.redis is None:
            store, models = self._open_data_dir(config)
            self.store = store
        self.control_files = ControlFiles(Path(settings.data_dir), self.store)
        try:
            self._overrides = self.control_files.load_overrides()
        except ConfigError:
            if self.store is not None:
                self.store.shutdown()  # and its data-dir lock
            raise
        if self.store is not None:
            self._build(config, self.store, models, learns=True)
        self.port = 0
        self.metrics_port = 0
        self.http_port = 0  # the Personalizer-compatible REST API (--http-address), if on
        self._personalizer: PersonalizerHttp | None = None
        self._grpc: grpc.aio.Server | None = None
        self.decisions: DecisionServicer | None = None  # None where this process decides nothing
        self._http: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._health = health.aio.HealthServicer()
        self._reloading = asyncio.Lock()
        self._checkpointed_at = time.monotonic()
        self._checkpoint_backoff = 0.0  # seconds; doubles after each failed checkpoint
        self._checkpoint_retry_at = 0.0  # monotonic time before which none is tried
        self._checkpointing: asyncio.Task[None] | None = None  # its files being written
        self._failure_reported = False
        self._pending_steps: set[asyncio.Task[None]] = set()  # health changes under way
        self.failed = asyncio.Event()  # set when the data dir failed: the process should stop

    def _open_data_dir(self, config: Config) -> tuple[DurableStore, dict[str, Model]]:
        """Embedded mode: open (and lock) the data dir, recovering what it holds."""
        settings = self.settings
        try:
            store, models, recovery = open_store(
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
        recovery.report(self.log, "recovered", data_dir=str(settings.data_dir))
        return store, models

    def _build(
        self, config: Config, store: EventStore, models: dict[str, Model], learns: bool
    ) -> None:
        self.engine = Engine(
            config,
            store,
            Telemetry(self.metrics, lambda policy: self.engine.policies[policy].catalog),
            time.time,
            self.settings.limits,
            models=models,
            overrides=self._overrides,
            learns=learns,
        )
        told: Told = AuditTelemetry(self.metrics)
        if self.redis is not None:  # and announced to every replica
            told = self.redis.told(told, lambda: self.engine)
        self.control = Control(self.engine, self.control_files, time.time, told)
        self.metrics.watch(
            self.engine.pending_counts,
            lambda: {name: rt.model.version for name, rt in self.engine.policies.items()},
        )

    async def _commit(self) -> None:
        """Durable before the answer: the data dir's commit (fsync=always), or nothing in
        Redis mode, where Redis's own persistence (AOF) decides (see README)."""
        if self.store is not None:
            await self.store.commit()
        elif self.redis is not None:
            await self.redis.commit()

    async def start(self) -> None:
        if self.redis is not None:
            store = await self.redis.open(self.metrics, self._spool_full)
            self._build(self._config, store, {}, learns=False)
        limit = self.settings.max_receive_message_bytes
        options: list[tuple[str, Any]] = [("grpc.max_receive_message_length", limit)]
        if self.settings.worker is not None:  # a --workers child: the workers share the port
            options.append(("grpc.so_reuseport", 1))
        server = grpc.aio.server(options=options)
        if self.redis is None or self.redis.serves:
            self.decisions = DecisionServicer(
                self.engine, self.metrics, self._commit, self.settings.coalesce_wait
            )
            add_decision_service(
                self.decisions,
                server,
                self.metrics,
                authorize=self.authorize,
            )
        add_service(
            server,
            ADMIN_SERVICE,
            ADMIN_METHODS,
            AdminServicer(self.control, self.metrics, self.engine.pending_counts, self._reload_for),
            self.metrics,
            authorize=self.authorize,
        )
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            [SERVICE_NAME, ADMIN_SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME], server
        )
        host, port = split_address(self.settings.address)
        bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        credentials = self._credentials()
        try:
            self.port = (
                server.add_secure_port(bind, credentials)
                if credentials is not None
                else server.add_insecure_port(bind)
            )
        except RuntimeError:  # grpc says only "failed to bind"
            hint = ", or --tls-key is not the key of --tls-cert" if credentials else ""
            raise OSError(f"cannot bind gRPC to {self.settings.address} (in use{hint})") from None
        if self.port == 0:
            raise OSError(f"cannot bind gRPC to {self.settings.address}")
        mhost, mport = split_address(self.settings.metrics_address)
        if self.settings.worker is None:  # a --workers child: its parent serves /metrics
            self._http = serve_metrics(self.metrics.registry, mhost, mport)
            self.metrics_port = self._http.server_port
        if self.settings.http_address:
            self._personalizer = await PersonalizerHttp.start(
                self.settings,
                self.engine,
                self.control,
                self._commit,
                self.authorize,
                self.metrics,
            )
            self.http_port = self._personalizer.port
        if self.redis is not None:  # its config follower first: the shared overrides
            await self.redis.start(self.engine, self._config, self.control, self._follow_reload)
        await server.start()
        self._grpc = server
        for name in ("", SERVICE_NAME):
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self._tasks = []
        if self.store is not None:
            self._tasks.append(asyncio.create_task(self.store.sync_periodically(), name="fsync"))
        if self.redis is None or self.redis.learns:  # in Redis mode: the closer of windows
            self._tasks.append(asyncio.create_task(self._join_clock(), name="nextbest-joins"))
        self.log.info(
            "serving",
            grpc_address=f"{host}:{self.port}",
            metrics_address=f"{mhost}:{self.metrics_port}" if self._http is not None else None,
            http_address=(
                f"{split_address(self.settings.http_address)[0]}:{self.http_port}"
                if self.settings.http_address
                else None
            ),
            policies=sorted(self.engine.policies),
            config=str(self.settings.config),
            data_dir=str(self.settings.data_dir),
            fsync=self.settings.durability.fsync,
            event_loop=type(asyncio.get_running_loop()).__module__.partition(".")[0],
            tls=credentials is not None,
            mtls=self.settings.tls_client_ca is not None,
            auth_file=str(self.settings.auth_file) if self.settings.auth_file else None,
        )

    async def _follow_reload(self) -> None:
        """Redis mode: another replica reloaded its policy file; reload ours."""
        await self._reload_for("reloaded on another replica", SYNC_CALLER)

    def _spool_full(self, full: bool) -> None:
        """Redis mode: a full spool refuses calls; health says so until it empties."""
        status = (
            health_pb2.HealthCheckResponse.NOT_SERVING
            if full
            else health_pb2.HealthCheckResponse.SERVING
        )
        for name in ("", SERVICE_NAME):
            self._background(self._health.set(name, status))

    def _background(self, step: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(step)
        self._pending_steps.add(task)
        task.add_done_callback(self._pending_steps.discard)

    def _authorizer(self, settings: ServerSettings) -> Authorizer:
        """The boundary's `authorize` hook; refuses an address others can reach when no
        caller would have to prove who it is."""
        authorizer = Authorizer(settings.auth_file, settings.tls_client_ca is not None)
        host, _ = split_address(settings.address)
        if authorizer.enabled or settings.tls_client_ca is not None or is_loopback(host):
            return authorizer
        if not settings.allow_unauthenticated:
            raise ValueError(
                f"{settings.address} is reachable from other hosts and every call would be "
                "accepted: give --auth-file (or --tls-client-ca), or --allow-unauthenticated"
            )
        self.log.warning(
            "unauthenticated",
            address=settings.address,
            reason="--allow-unauthenticated: anyone who reaches the address may call",
        )
        return authorizer

    def _credentials(self) -> grpc.ServerCredentials | None:
        """TLS from --tls-cert/--tls-key; client certificates required with --tls-client-ca."""
        settings = self.settings
        if settings.tls_cert is None or settings.tls_key is None:
            return None
        cert = _pem(settings.tls_cert, "--tls-cert", "CERTIFICATE")
        key = _pem(settings.tls_key, "--tls-key", "PRIVATE KEY")
        ca = (
            _pem(settings.tls_client_ca, "--tls-client-ca", "CERTIFICATE")
            if settings.tls_client_ca is not None
            else None
        )
        return grpc.ssl_server_credentials(
            [(key, cert)], root_certificates=ca, require_client_auth=ca is not None
        )

    def reload_auth(self) -> bool:
        """Re-read the auth file (on SIGHUP); a bad one is logged and the tokens in force
        stay."""
        if not self.authorize.enabled:
            return True
        try:
            tokens = self.authorize.reload()
        except AuthFileError as exc:
            self.log.error("auth_rejected", auth_file=str(self.authorize.path), reason=str(exc))
            return False
        self.log.info("auth_reloaded", auth_file=str(self.authorize.path), tokens=tokens)
        return True

    async def _join_clock(self) -> None:
        """Close ended windows (learning each event with its joined or default reward), and
        checkpoint the models every `checkpoint_every` learned events or
        `checkpoint_interval` seconds (the files written by a thread)."""
        limit = 1000
        while True:
            try:
                closed = await self.engine.settle_due(limit=limit)
                self._maybe_checkpoint()
            except Exception:  # a bug must not stop learning for good; it is logged loudly
                self.log.exception("join_clock_failed")
                closed = 0
            if self.store is not None and self.store.failure and not self._failure_reported:
                # An fsync failed: the store refuses writes until a restart recovers from
                # what the disk holds; say so, turn health to NOT_SERVING, and stop (`nextbest
                # serve` then exits 1, for a supervisor to restart it).
                self._failure_reported = True
                self.log.error("data_dir_failed", reason=self.store.failure)
                for name in ("", SERVICE_NAME):
                    await self._health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
                self.failed.set()
            await asyncio.sleep(0 if closed == limit else self.settings.join_tick)

    def _maybe_checkpoint(self, force: bool = False) -> asyncio.Task[None] | None:
        """Checkpoint when due (see `start_checkpoint`; the task, if one started); after a
        failure, not before its back-off ends. Forced (at shutdown), or off a running loop
        (a script), the whole checkpoint is done before this returns."""
        now = time.monotonic()
        if self.store is None or (not force and now < self._checkpoint_retry_at):
            return None  # Redis mode: the learner checkpoints
        new = self.store.unsaved(self.engine.models())  # per policy: reloads change models
        due = now - self._checkpointed_at >= self.settings.checkpoint_interval
        if new > 0 and (force or due or new >= self.settings.checkpoint_every):
            if force or not _on_a_loop():
                self.checkpoint()
                return None
            return self.start_checkpoint()
        return None

    def checkpoint(self) -> None:
        """Save every model that learned since its last checkpoint (atomically), all of it
        now, on this thread (after a checkpoint still being written)."""
        if self.store is None:
            return  # Redis mode: the learner checkpoints
        try:
            saved = self.store.checkpoint(self.engine.models())
        except OSError as exc:  # disk full: keep serving; the journal and logs still hold all
            self._checkpoint_failed(exc)
            return
        self._checkpoint_saved(saved)

    def start_checkpoint(self) -> asyncio.Task[None] | None:
        """Checkpoint without stalling the calls being served: only the models' bytes are
        taken here, on the loop (VW is not thread-safe); a thread writes the files, and the
        task returned ends when it has. None if one is still being written (one at a time:
        this one is then left to the next tick) or this one could not start."""
        store = self.store
        if store is None or (self._checkpointing is not None and not self._checkpointing.done()):
            return None
        loop = asyncio.get_running_loop()
        try:
            job = store.begin_checkpoint(self.engine.models())
        except OSError as exc:
            self._checkpoint_failed(exc)
            return None
        # Handed to the thread now, not when the task first runs: a rollback in between
        # waits for this checkpoint (see `DurableStore.begin_checkpoint`).
        written = loop.run_in_executor(None, store.write_checkpoint, job)
        self._checkpointing = asyncio.create_task(
            self._end_checkpoint(job, written), name="nextbest-checkpoint"
        )
        return self._checkpointing

    async def _end_checkpoint(self, job: CheckpointJob, written: asyncio.Future[None]) -> None:
        await written
        assert self.store is not None
        try:
            saved = self.store.end_checkpoint(job)
        except OSError as exc:
            self._checkpoint_failed(exc)
        except Exception:  # a bug: logged in full; the next checkpoint is tried as usual
            self.log.exception("checkpoint_failed")
        else:
            self._checkpoint_saved(saved)

    def _checkpoint_failed(self, exc: OSError) -> None:
        """Keep serving (the journal and logs still hold everything); retry after a back-off."""
        self._checkpoint_backoff = min(max(2 * self._checkpoint_backoff, 1.0), 60.0)
        self._checkpoint_retry_at = time.monotonic() + self._checkpoint_backoff
        self.log.error(
            "checkpoint_failed", reason=exc.strerror or str(exc), retry_in=self._checkpoint_backoff
        )

    def _checkpoint_saved(self, saved: dict[str, int]) -> None:
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
        one at a time. Audited as a SIGHUP."""
        verdict = await self._reload_for("SIGHUP", "signal", path)
        return verdict.applied

    async def _reload_for(
        self, reason: str, caller: str, path: Path | None = None
    ) -> ReloadVerdict:
        """Reload the config file (and the auth file) for `caller`, audit it, and say what
        happened."""
        path = path or self.settings.config
        if caller != "signal":  # SIGHUP re-reads the auth file itself, first
            self.reload_auth()
        async with self._reloading:
            before = {name: rt.version for name, rt in self.engine.policies.items()}
            try:
                config = await asyncio.to_thread(load_config, path)
                prepared = await asyncio.to_thread(self.engine.prepare, config)
            except Exception as exc:
                self._rejected(path, exc)
                verdict = ReloadVerdict(
                    False, str(exc) if isinstance(exc, ConfigError) else repr(exc)[:500]
                )
            else:
                self._install(path, prepared)
                verdict = ReloadVerdict(True)
            verdict.config_versions = {n: rt.version for n, rt in self.engine.policies.items()}
            try:
                self.control.record_reload(before, verdict, reason, caller)
            except DecisionError as exc:  # the reload stands; say that its record is missing
                self.log.error("audit_failed", reason=str(exc), change="reload")
            return verdict

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
        if self._personalizer is not None:
            await self._personalizer.stop()
        await tasks.stop(self._tasks)
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        if self._checkpointing is not None:
            await self._checkpointing  # its thread writes no file once the files close
        self._maybe_checkpoint(force=True)
        if self.store is not None:
            try:
                self.store.shutdown()
            except OSError as exc:  # a failed fsync: recovery will read what the disk holds
                self.log.error("close_failed", reason=exc.strerror or str(exc))
        if self.redis is not None:
            await self.redis.close()  # the learner checkpoints and gives up its lease
        self.engine.shutdown()
        self.log.info("stopped")

    async def wait(self) -> None:
        if self._grpc is not None:
            await self._grpc.wait_for_termination()


def _on_a_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def settle_gc() -> None:
    """Once serving: move what start-up made (modules, config, models, recovered state)
    out of the collector's sight, and collect the young generation less often. Pending
    events are bytes the collector never walks; what a call allocates dies with it."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)


def _pem(path: Path, flag: str, kind: str) -> bytes:
    """A PEM file's bytes; OSError naming the flag when it cannot be read or holds no
    `kind` block (grpc itself would only fail the first handshake)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise OSError(f"{flag} {path}: cannot read: {exc.strerror or exc}") from None
    if f"{kind}-----".encode() not in data:  # PRIVATE KEY also matches EC/RSA PRIVATE KEY
        raise OSError(f"{flag} {path}: no PEM {kind} in it")
    return data
