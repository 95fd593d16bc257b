"""The asyncio client: the surface of :class:`NextBest`, awaited."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Coroutine, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from nextbest_client import _channel
from nextbest_client._connection import AsyncConnection
from nextbest_client._requests import batch_request, decide_request, reward_request
from nextbest_client._values import Context
from nextbest_client.errors import NextBestError, error_for
from nextbest_client.types import (
    ActivationStatus,
    DecisionFields,
    DecisionRequest,
    Explanation,
    RewardResult,
    RewardSpec,
    activation_status,
    explanation,
    reward_result,
)
from nextbest_client.v1 import decision_pb2 as pb
from nextbest_client.v1 import decision_pb2_grpc as rpc

log = logging.getLogger("nextbest_client")


@dataclass(kw_only=True)
class AsyncDecision(DecisionFields):
    """One decision, with awaitable :meth:`reward`; ``async with`` closes the loop like
    :class:`nextbest_client.Decision` does."""

    client: AsyncNextBest = field(repr=False, compare=False)

    async def reward(
        self,
        value: float | None = None,
        *,
        signals: Mapping[str, float] | None = None,
        reward_id: str | None = None,
        **more_signals: float,
    ) -> RewardResult:
        result = await self.client.reward(
            self.event_id, value, signals=signals, reward_id=reward_id, **more_signals
        )
        self.rewarded = True
        return result

    async def activate(self) -> ActivationStatus:
        return await self.client.activate(self.event_id)

    async def explain(self) -> Explanation:
        return await self.client.explain(self.event_id)

    async def _send(self, spec: RewardSpec) -> None:
        if isinstance(spec, Mapping):
            await self.reward(signals=spec)
        else:
            await self.reward(spec)

    async def __aenter__(self) -> AsyncDecision:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.rewarded:
            return
        if exc is None:
            if self.default_reward is not None:
                await self._send(self.default_reward)
        elif isinstance(exc, Exception) and self.error_reward is not None:
            try:  # never hide the caller's exception behind a failed reward
                await self._send(self.error_reward)
            except NextBestError as failed:
                log.warning("error reward for event %s not sent: %s", self.event_id, failed)


class DecisionCall(Awaitable[AsyncDecision]):
    """What :meth:`AsyncNextBest.decide` returns: ``await`` it, or ``async with`` it."""

    def __init__(self, coro: Coroutine[Any, Any, AsyncDecision]) -> None:
        self._coro = coro
        self._decision: AsyncDecision | None = None

    def __await__(self) -> Generator[Any, None, AsyncDecision]:
        return self._coro.__await__()

    async def __aenter__(self) -> AsyncDecision:
        self._decision = await self._coro
        return self._decision

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._decision is not None:
            await self._decision.__aexit__(exc_type, exc, tb)


class AsyncNextBest(AsyncConnection):
    """The asyncio twin of :class:`nextbest_client.NextBest`; create it inside a running loop."""

    def __init__(
        self,
        target: str,
        *,
        token: str | None = None,
        tls: _channel.TLS = None,
        timeout: float = 5.0,
        retry: _channel.Retry | None = None,
        options: Sequence[tuple[str, Any]] | None = None,
        default_reward: RewardSpec | None = None,
        error_reward: RewardSpec | None = 0.0,
    ) -> None:
        super().__init__(
            target, token=token, tls=tls, timeout=timeout, retry=retry, options=options
        )
        self._stub = rpc.DecisionServiceStub(self._channel)
        self.default_reward = default_reward
        self.error_reward = error_reward

    def _decision(self, policy: str, response: pb.DecideResponse) -> AsyncDecision:
        return AsyncDecision.from_response(
            policy,
            response,
            client=self,
            default_reward=self.default_reward,
            error_reward=self.error_reward,
        )

    def decide(
        self,
        policy: str,
        intent: str,
        context: Context | None = None,
        candidates: Sequence[str] | None = None,
        exclude: Sequence[str] | None = None,
        baseline: str | None = None,
        defer: bool = False,
        *,
        actions: Mapping[str, Context] | None = None,
        event_id: str | None = None,
    ) -> DecisionCall:
        """``d = await client.decide(...)`` or ``async with client.decide(...) as d:``.

        The request is checked here, before anything is awaited, so a bad context raises
        at the call site."""
        request = decide_request(
            policy=policy,
            intent=intent,
            context=context,
            candidates=candidates,
            exclude=exclude,
            baseline=baseline,
            defer=defer,
            actions=actions,
            event_id=event_id,
        )

        async def run() -> AsyncDecision:
            response = await self._call(self._stub.Decide, request)
            return self._decision(policy, response)

        return DecisionCall(run())

    async def decide_batch(
        self,
        requests: Sequence[DecisionRequest | Mapping[str, Any]],
    ) -> list[AsyncDecision | NextBestError]:
        batch = batch_request(requests)
        response = await self._call(self._stub.DecideBatch, batch)
        out: list[AsyncDecision | NextBestError] = []
        for item, result in zip(batch.requests, response.results, strict=True):
            if result.HasField("decision"):
                out.append(self._decision(item.policy, result.decision))
            else:
                e = result.error
                out.append(error_for(e.code, f"{e.field}: {e.message}", e.field, e.message))
        return out

    async def reward(
        self,
        event_id: str,
        value: float | None = None,
        *,
        signals: Mapping[str, float] | None = None,
        reward_id: str | None = None,
        **more_signals: float,
    ) -> RewardResult:
        request = reward_request(event_id, value, {**(signals or {}), **more_signals}, reward_id)
        return reward_result(await self._call(self._stub.Reward, request))

    async def activate(self, event_id: str) -> ActivationStatus:
        request = pb.ActivateRequest(event_id=event_id)
        return activation_status(await self._call(self._stub.Activate, request))

    async def explain(self, event_id: str) -> Explanation:
        request = pb.ExplainRequest(event_id=event_id)
        return explanation(await self._call(self._stub.Explain, request))
