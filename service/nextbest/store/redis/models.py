"""The model follower of Redis mode: a serving replica's models are the learner's latest
published snapshots.

The learner publishes a policy's model as the hash ``keys.model(policy)`` (``version``,
``vw_args``, ``data``, ``token``, …) and says so on ``keys.MODELS_CHANNEL``. The follower
listens there and, as the backstop for a message missed (a reconnect, a replica started
late), also reads each configured policy's ``version`` and ``token`` every `interval`. A
model it does not hold yet (another version, or one published under another lease) is
fetched whole, built from its bytes off the event loop (VW loading takes milliseconds), and
swapped in on the loop with `Engine.replace_model` only once whole: a request never meets a
half-loaded model. A model made with other vw_args than the running policy's (the learner
runs another config) is left aside, said once in the logs.

Responses carry the model's version (`Model.version`: the events it has learned), so
model_version advances on every replica as the learner learns.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from redis.exceptions import RedisError

from nextbest.observability.logging import get_logger
from nextbest.policy.engine import Engine
from nextbest.policy.errors import ConfigError
from nextbest.policy.model import Model
from nextbest.store.redis import keys
from nextbest.store.redis.channel import listen, stop_listening
from nextbest.store.redis.connection import Client


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class ModelFollower:
    """Keeps `engine`'s models equal to the latest published ones; see the module docstring."""

    def __init__(self, client: Client, engine: Engine, *, interval: float = 1.0) -> None:
        self.client = client
        self.engine = engine
        self.interval = interval
        self.log = get_logger("nextbest.models")
        # policy → (token, version) in force, and the model it is (a reload or a rollback
        # that replaced it is undone: in Redis mode the models are the learner's)
        self._held: dict[str, tuple[str, str, Model]] = {}
        # policy → (token, version, the running vw_args) of a model left aside
        self._ignored: dict[str, tuple[str, str, str]] = {}
        self._wake = asyncio.Event()

    def versions(self) -> dict[str, str]:
        """The version of each policy's model in force, for the policies whose model came
        from Redis."""
        return {
            policy: version
            for policy, (_, version, model) in self._held.items()
            if self._running(policy) is model
        }

    async def run(self) -> None:
        """Follow until cancelled."""
        stop = asyncio.Event()
        listening = asyncio.create_task(
            listen(self.client, keys.MODELS_CHANNEL, self._heard, self.log, stop=stop),
            name="nextbest-models-listen",
        )
        try:
            while True:
                await self.check()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.interval)
                self._wake.clear()
        finally:
            await stop_listening(listening, stop)

    async def check(self) -> None:
        """Swap in each configured policy's published model, if it is not the one in force."""
        for policy in list(self.engine.policies):
            try:
                await self._follow(policy)
            except RedisError as exc:  # the next check tries again
                self.log.warning("model_check_failed", policy=policy, reason=str(exc))

    async def _follow(self, policy: str) -> None:
        token, version = await self.client.hmget(keys.model(policy), ["token", "version"])
        if version is None:
            return  # nothing published yet
        seen = (_text(token), _text(version))
        if self._holds(policy, seen) or self._ignores(policy, seen):
            return
        fields: dict[Any, Any] = await self.client.hgetall(keys.model(policy))
        if b"data" not in fields or b"version" not in fields:
            return  # deleted meanwhile
        seen = (_text(fields.get(b"token", b"")), _text(fields[b"version"]))
        vw_args = _text(fields.get(b"vw_args", b""))
        if not self._fits(policy, vw_args):
            if not self._ignores(policy, seen):
                self._ignore(policy, seen)
                self.log.warning(
                    "model_ignored",
                    policy=policy,
                    version=seen[1],
                    vw_args=vw_args,
                    reason="made with other vw_args than the running policy's",
                )
            return
        try:
            model = await asyncio.to_thread(
                Model.from_bytes, vw_args, fields[b"data"], int(seen[1])
            )
        except (ConfigError, RuntimeError, ValueError) as exc:
            self._ignore(policy, seen)
            self.log.error("model_unloadable", policy=policy, version=seen[1], reason=str(exc))
            return
        if not self._fits(policy, vw_args):  # reconfigured while it loaded
            model.close()
            return
        self.engine.replace_model(policy, model)
        self._held[policy] = (*seen, model)
        self.log.info("model_followed", policy=policy, version=seen[1], token=seen[0])

    def _fits(self, policy: str, vw_args: str) -> bool:
        runtime = self.engine.policies.get(policy)
        return runtime is not None and runtime.config.vw_args == vw_args

    def _running(self, policy: str) -> Model | None:
        runtime = self.engine.policies.get(policy)
        return None if runtime is None else runtime.model

    def _holds(self, policy: str, seen: tuple[str, str]) -> bool:
        held = self._held.get(policy)
        return held is not None and held[:2] == seen and held[2] is self._running(policy)

    def _ignores(self, policy: str, seen: tuple[str, str]) -> bool:
        runtime = self.engine.policies.get(policy)
        args = "" if runtime is None else runtime.config.vw_args
        return self._ignored.get(policy) == (*seen, args)

    def _ignore(self, policy: str, seen: tuple[str, str]) -> None:
        """Leave this model aside while the policy runs with the vw_args it has now."""
        runtime = self.engine.policies.get(policy)
        self._ignored[policy] = (*seen, "" if runtime is None else runtime.config.vw_args)

    def _heard(self, data: bytes) -> None:
        """A model was published ("<policy>\n<version>"): check it now if it is ours."""
        if data.decode(errors="replace").split("\n", 1)[0] in self.engine.policies:
            self._wake.set()
