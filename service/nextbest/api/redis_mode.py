"""What a process runs in Redis mode, beside gRPC: the shared join (the engine's store),
the model follower (serving roles: the replica's models are the learner's latest
snapshots), and the learner with the join closer (learner roles).

Roles: `server` answers DecisionService and closes `earliest` joins in the Reward call,
with a spool in its data dir for what it acknowledges while Redis is unreachable (see
`store.redis.spool`);
`learner` closes the joins whose window ended, learns every closed join from the stream,
writes the DSJSON decision log and checkpoints in its data dir, and publishes models;
`all` does both in one process.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Callable
from pathlib import Path

from nextbest import tasks
from nextbest.observability.logging import get_logger
from nextbest.observability.metrics import Metrics
from nextbest.observability.redis_mode import RedisTelemetry, SpoolTelemetry
from nextbest.policy.config import Config
from nextbest.policy.control import SYNC_CALLER, AuditRecord, Control, Told
from nextbest.policy.engine import Engine
from nextbest.policy.errors import DecisionError
from nextbest.policy.overrides import Overrides
from nextbest.settings import ServerSettings
from nextbest.store.redis.config_sync import ConfigSync, Reload
from nextbest.store.redis.connection import Client, connect, shown
from nextbest.store.redis.learner import Learner
from nextbest.store.redis.models import ModelFollower
from nextbest.store.redis.spool import SpoolingStore
from nextbest.store.redis.store import RedisEventStore

COUNTS_EVERY = 1.0  # seconds between refreshes of the pending counts /metrics shows
SPOOL_DRAIN_TIMEOUT = 10.0  # seconds a stopping replica waits to hand its spool to Redis
CONFIG_CHECK_EVERY = 0.5  # seconds between checks of the shared config (pub/sub is at once)
OVERRIDE_KINDS = frozenset({"exploration", "mode", "clear"})


class RedisMode:
    """Open with `open()`, hand `store` to the engine, then `start(engine)`; `close()`."""

    def __init__(self, settings: ServerSettings) -> None:
        assert settings.redis_url is not None
        self.settings = settings
        self.url = settings.redis_url
        self.log = get_logger("nextbest.redis")
        self.client: Client | None = None
        self.store: RedisEventStore | None = None
        self.spool: SpoolingStore | None = None  # serving roles: the engine's store
        self.sync: ConfigSync | None = None  # set by `start`
        self.telemetry: RedisTelemetry  # set by `open`
        self.learner: Learner | None = None
        self.follower: ModelFollower | None = None
        self._engine: Engine | None = None  # set by `start`: its policies are the ones closed
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def serves(self) -> bool:
        return self.settings.role in ("all", "server")

    @property
    def learns(self) -> bool:
        return self.settings.role in ("all", "learner")

    async def open(
        self, metrics: Metrics, on_full: Callable[[bool], None]
    ) -> RedisEventStore | SpoolingStore:
        """Connect; the engine's store: in serving roles, Redis behind this replica's
        spool (`on_full` is told when the spool fills and empties). OSError naming the URL
        (without its password) if Redis cannot be reached at start."""
        try:
            self.client = await connect(self.url)
            await self.client.ping()
        except Exception as exc:
            raise OSError(f"--redis {shown(self.url)}: cannot reach Redis: {exc}") from None
        self.store = RedisEventStore(self.client, self._policies)
        self.telemetry = RedisTelemetry(metrics)
        if not self.serves:
            return self.store
        worker = self.settings.worker
        directory = Path(self.settings.data_dir) / (
            "spool" if worker is None else f"spool-{worker}"
        )
        durability = self.settings.durability
        self.spool = SpoolingStore(
            self.store,
            directory,
            SpoolTelemetry(metrics, self.telemetry),
            max_bytes=self.settings.spool_max_bytes,
            fsync=durability.fsync,
            fsync_interval=durability.fsync_interval,
            on_full=on_full,
        )
        if self.spool.records:
            self.log.info("spool_found", records=self.spool.records, spool=str(directory))
        return self.spool

    async def commit(self) -> None:
        """Durable before the answer: what this call spooled (see `SpoolingStore.commit`);
        what went to Redis is as durable as Redis's persistence makes it (README)."""
        if self.spool is not None:
            await self.spool.commit()

    def _policies(self) -> list[str]:
        return sorted(self._engine.policies) if self._engine is not None else []

    def told(self, told: Told, engine: Callable[[], Engine]) -> Told:
        """`told`, and config changes made here announced to every replica."""
        return _Announcer(told, engine, lambda: self.sync)

    async def start(self, engine: Engine, config: Config, control: Control, reload: Reload) -> None:
        """The background work of this role (the engine is the one built on `store`);
        `control` puts overrides made elsewhere in force, `reload` reloads the policy file
        when another replica did."""
        assert self.client is not None
        assert self.store is not None
        self._engine = engine
        self.sync = ConfigSync(
            self.client,
            uuid.uuid4().hex,
            reload=reload,
            follow=functools.partial(self._follow, control),
            interval=CONFIG_CHECK_EVERY,
        )
        try:
            await self.sync.start()
        except Exception as exc:  # Redis went away since open(): the follower catches up
            self.log.warning("config_check_failed", reason=str(exc))
        self._tasks.append(asyncio.create_task(self.sync.run(), name="nextbest-config"))
        self._tasks.append(asyncio.create_task(self._counts(), name="nextbest-redis-counts"))
        if self.spool is not None:
            self._tasks.append(
                asyncio.create_task(self.spool.run(engine.reward), name="nextbest-spool")
            )
        if self.serves:
            self.follower = ModelFollower(
                self.client, engine, interval=self.settings.model_publish_interval
            )
            self._tasks.append(asyncio.create_task(self.follower.run(), name="nextbest-models"))
        if self.learns:
            self.learner = Learner(
                self.client,
                config,
                Path(self.settings.data_dir),
                self.settings.durability,
                publish_interval=self.settings.model_publish_interval,
                checkpoint_every=self.settings.checkpoint_every,
                checkpoint_interval=self.settings.checkpoint_interval,
            )
            self._tasks.append(asyncio.create_task(self.learner.run(), name="nextbest-learner"))
        self.log.info("redis_mode", redis=shown(self.url), role=self.settings.role)

    def _follow(self, control: Control, policy: str, overrides: Overrides, kind: str) -> None:
        try:
            if control.follow(policy, overrides, kind):
                self.log.info("config_followed", policy=policy, change=kind)
        except DecisionError as exc:  # they do not fit this replica's file: said, not applied
            self.log.error("config_follow_rejected", policy=policy, change=kind, reason=str(exc))

    async def _counts(self) -> None:
        assert self.store is not None
        while True:
            try:
                await self.store.refresh_counts()
                self.telemetry.lags(await self.store.learner_lags())
            except Exception:  # a Redis outage: the last counts stay
                reachable = False
            else:
                reachable = True
            if self.spool is None:  # a spool says so itself, as its calls go
                self.telemetry.redis_reachable(reachable)
            await asyncio.sleep(COUNTS_EVERY)

    async def close(self) -> None:
        if self.spool is not None and self.spool.records:
            drained = await self.spool.drain(SPOOL_DRAIN_TIMEOUT)
            self.log.info("spool_drained" if drained else "spool_kept", left=self.spool.records)
        await tasks.stop(self._tasks)
        if self.learner is not None:
            await self.learner.stop()
        if self.spool is not None:
            self.spool.release()  # what is still spooled is replayed by the next start
        if self.client is not None:
            await self.client.aclose()


class _Announcer:
    """A Control's `Told` that also announces, through `ConfigSync`, the config changes
    made in this process (not those it followed from another one)."""

    def __init__(
        self, told: Told, engine: Callable[[], Engine], sync: Callable[[], ConfigSync | None]
    ) -> None:
        self._told = told
        self._engine = engine
        self._sync = sync

    def changed(self, record: AuditRecord) -> None:
        self._told.changed(record)
        sync = self._sync()
        if sync is None or record.caller == SYNC_CALLER:
            return
        if record.kind == "reload" and "rejected" not in record.new:
            sync.announce_reload()
        elif record.kind in OVERRIDE_KINDS:
            overrides = self._engine().overrides.get(record.policy, {})
            sync.announce_overrides(record.policy, overrides, record.kind)
