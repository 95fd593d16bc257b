"""Config in Redis mode: a reload or a live override made on any replica reaches every
replica (learners too) within a second.

Redis holds the hash ``keys.CONFIG``: ``version`` (bumped by every change), ``reload``
(bumped by every reload of the policy file, wherever it was made) and, per policy,
``o:<policy>``: its live overrides and what set them last (exploration, mode, clear). The
replica where a change is made writes it there and says so on ``keys.CONFIG_CHANNEL``, in
one script. Every replica listens, and reads ``version`` every `interval` as the backstop
for a message missed. A change it has not applied yet is applied by its own hands:

- a new reload count: it reloads its own policy file (deploy one file to every replica,
  e.g. one ConfigMap); a file it finds bad is rejected there and logged, as a SIGHUP would;
- new overrides of a policy: put in force and kept in its data dir's ``overrides.json``
  (a restart that cannot reach Redis still serves them), not audited again (the replica
  where ops made the change audited it).

A replica that starts takes the overrides Redis holds, so one started after a change
serves it from its first call.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from redis.exceptions import RedisError

from nextbest import tasks
from nextbest.observability.logging import get_logger
from nextbest.policy.control import SYNC_CALLER
from nextbest.policy.overrides import Overrides
from nextbest.store.control import overrides_from_json, overrides_json
from nextbest.store.redis import keys
from nextbest.store.redis.channel import listen, stop_listening
from nextbest.store.redis.connection import Client

POLICY_FIELD = "o:"
SUBSCRIBE_TIMEOUT = 5.0  # seconds `start` waits for the channel before it goes on

# KEYS[1] the config hash. ARGV: kind (reload, or what set the overrides), policy,
# its overrides (JSON with their kind), this process's name, the channel.
ANNOUNCE = """
local v = redis.call('HINCRBY', KEYS[1], 'version', 1)
if ARGV[1] == 'reload' then
  redis.call('HINCRBY', KEYS[1], 'reload', 1)
else
  redis.call('HSET', KEYS[1], 'o:' .. ARGV[2], ARGV[3])
end
redis.call('PUBLISH', ARGV[5], ARGV[4] .. '\\n' .. v)
return v
"""

Reload = Callable[[], Awaitable[object]]
Follow = Callable[[str, Overrides, str], None]
__all__ = ["SYNC_CALLER", "ConfigSync", "Follow", "Reload"]


class ConfigSync:
    """See the module docstring. `reload` reloads this process's policy file; `follow`
    puts a policy's overrides (made elsewhere) in force, with what set them."""

    def __init__(
        self,
        client: Client,
        origin: str,
        *,
        reload: Reload,
        follow: Follow,
        interval: float = 1.0,
    ) -> None:
        self.client = client
        self.origin = origin
        self.reload = reload
        self.follow = follow
        self.interval = interval
        self.log = get_logger("nextbest.config")
        self._announce = client.register_script(ANNOUNCE)
        self._version = -1  # the version applied here (-1: none read yet)
        self._reloads = -1
        self._policies: dict[str, bytes] = {}  # o:<policy> as applied here
        self._wake = asyncio.Event()
        self._announcing: set[asyncio.Task[None]] = set()
        self._listening: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()  # ends the listener, whatever redis-py does with cancels

    async def start(self) -> None:
        """Listen, then take the overrides Redis holds now (no reload: the file was just
        read): no change made from then on is missed."""
        subscribed = asyncio.Event()
        self._listening = asyncio.create_task(
            listen(self.client, keys.CONFIG_CHANNEL, self._heard, self.log, subscribed, self._stop),
            name="nextbest-config-listen",
        )
        with contextlib.suppress(TimeoutError):  # else the periodic check covers it
            await asyncio.wait_for(subscribed.wait(), SUBSCRIBE_TIMEOUT)
        fields = await self._fields()
        self._reloads = _int(fields.get(b"reload"))
        await self._apply(fields, reload=False)

    async def run(self) -> None:
        """Follow until cancelled (after `start`)."""
        listening = self._listening
        try:
            while True:
                try:
                    await self.check()
                except (RedisError, OSError) as exc:  # the next check tries again
                    self.log.warning("config_check_failed", reason=str(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.interval)
                self._wake.clear()
        finally:
            if listening is not None:
                await stop_listening(listening, self._stop)
            await tasks.stop(self._announcing)

    async def check(self) -> None:
        """Apply what changed in Redis since the last check, if anything did."""
        version = _int(await self.client.hget(keys.CONFIG, "version"))
        if version != self._version:
            await self._apply(await self._fields(), reload=True)

    def _heard(self, data: bytes) -> None:
        if not data.startswith(self.origin.encode() + b"\n"):
            self._wake.set()

    async def _fields(self) -> dict[bytes, bytes]:
        fields: dict[Any, Any] = await self.client.hgetall(keys.CONFIG)
        return fields

    async def _apply(self, fields: Mapping[bytes, bytes], reload: bool) -> None:
        self._version = _int(fields.get(b"version"))
        reloads = _int(fields.get(b"reload"))
        if reload and reloads != self._reloads:
            self._reloads = reloads
            self.log.info("config_reload_followed")
            await self.reload()
        prefix = POLICY_FIELD.encode()
        for name, value in fields.items():
            if not name.startswith(prefix):
                continue
            policy = name[len(prefix) :].decode(errors="replace")
            if self._policies.get(policy) == value:
                continue
            self._policies[policy] = value
            try:
                doc = orjson.loads(value)
                overrides = overrides_from_json(orjson.dumps({policy: doc["overrides"]}))
                self.follow(policy, overrides.get(policy, {}), str(doc["kind"]))
            except (ValueError, KeyError, TypeError) as exc:  # the change stays as it was
                self.log.error("config_follow_failed", policy=policy, reason=str(exc))

    # -- announcing -------------------------------------------------------------------------

    def announce_reload(self) -> None:
        """This process reloaded its policy file: every other one reloads its own."""
        self._background(self._send("reload", "", b""))

    def announce_overrides(self, policy: str, overrides: Overrides, kind: str) -> None:
        """A policy's overrides were set here: every other process puts them in force."""
        doc = orjson.loads(overrides_json({policy: overrides}))
        value = orjson.dumps({"kind": kind, "overrides": doc.get(policy, {})})
        self._policies[policy] = value  # in force here already
        self._background(self._send(kind, policy, value))

    async def _send(self, kind: str, policy: str, value: bytes) -> None:
        args: list[str | bytes] = [kind, policy, value, self.origin, keys.CONFIG_CHANNEL]
        try:
            version = _int(await self._announce(keys=[keys.CONFIG], args=args))
        except (RedisError, OSError) as exc:
            self.log.error("config_announce_failed", change=kind, policy=policy, reason=str(exc))
            return
        if kind == "reload":
            self._reloads += 1
        if version == self._version + 1:  # nothing else changed meanwhile: all seen
            self._version = version

    def _background(self, step: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(step)
        self._announcing.add(task)
        task.add_done_callback(self._announcing.discard)


def _int(value: object) -> int:
    if isinstance(value, bytes):
        value = value.decode()
    try:
        return int(str(value)) if value is not None else 0
    except ValueError:
        return 0
