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
    # Named by the fields inherited from DecisionFields: the dataclass __init__ resolves
    # their annotations in this module (typing.get_type_hints, the API docs).
    MaskedAction,  # noqa: F401
    RankedAction,  # noqa: F401
    RewardResult,
    RewardSpec,
    activation_status,
    explanation,
    reward_result,
)
from nextbest_proto.v1 import decision_pb2 as pb
from nextbest_proto.v1 import decision_pb2_grpc as rpc

log = logging.getLogger("nextbest_client")


@dataclass(kw_only=True)
class AsyncDecision(DecisionFields):
    """One decision, with awaitable methods; the asyncio twin of :class:`Decision`.

    Its fields are those of :class:`Decision`. ``async with client.decide(...) as d:`` closes
    the loop as ``with`` does for a :class:`Decision`: ``error_reward`` is sent if the block
    raises before a reward was sent, ``default_reward`` (when set) if it ends without one.
    """

    client: AsyncNextBest = field(repr=False, compare=False)

    async def reward(
        self,
        value: float | None = None,
        *,
        signals: Mapping[str, float] | None = None,
        reward_id: str | None = None,
        **more_signals: float,
    ) -> RewardResult:
        """Report this decision's outcome: :meth:`AsyncNextBest.reward` for its event.

        Args:
            value: The reward, higher is better; or give signals instead.
            signals: Named outcome signals, weighed into one reward by the policy's spec.
            reward_id: An idempotency key; made here when not given.
            **more_signals: More signals, as keywords (``resolved=1, csat=5``).

        Raises:
            InvalidArgument: Both or neither of a value and signals, or a number not finite.
            NextBestError: The call failed (see :meth:`NextBest.reward`).
        """
        result = await self.client.reward(
            self.event_id, value, signals=signals, reward_id=reward_id, **more_signals
        )
        self.rewarded = True
        return result

    async def activate(self) -> ActivationStatus:
        """Activate this decision, made with ``defer=True``: see :meth:`NextBest.activate`."""
        return await self.client.activate(self.event_id)

    async def explain(self) -> Explanation:
        """The server's record of this decision: see :meth:`NextBest.explain`."""
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
    """The asyncio twin of :class:`NextBest`; create it inside the running event loop.

    Every method is awaited and takes the arguments of its :class:`NextBest` twin. Close it
    with ``await close()``, or use it with ``async with``.

    Args:
        target: The server's address, ``host:port``.
        token: Sent as ``authorization: Bearer <token>``; None reads ``NEXTBEST_TOKEN``,
            ``""`` sends no token.
        tls: As for :class:`NextBest`: a :class:`TLSConfig`, True, False, grpc credentials,
            or None to read ``NEXTBEST_TLS_*`` (plaintext when unset).
        timeout: Seconds each attempt may take.
        retry: Retries of UNAVAILABLE and DEADLINE_EXCEEDED; None uses ``Retry()``.
        options: gRPC channel arguments, over the client's defaults.
        default_reward: Sent when a decision's ``async with`` block ends without a reward;
            None sends nothing.
        error_reward: Sent when a decision's ``async with`` block raises before a reward;
            None sends nothing.

    Raises:
        ValueError, OSError, TypeError: As for :class:`NextBest`.
    """

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
        """Ask which action to take: ``d = await client.decide(...)``, or
        ``async with client.decide(...) as d:`` to close the loop on exit.

        The request is checked here, before anything is awaited, so a bad context raises
        at the call site. Arguments, results and errors are those of :meth:`NextBest.decide`.

        Args:
            policy: The policy (decision point) to ask.
            intent: What the user wants, a label such as ``"billing_dispute"``.
            context: Features of the situation: name → text, number, flag or list of texts.
            candidates: Choose only among these action ids; None: every action.
            exclude: Never choose these action ids.
            baseline: The caller's own choice, returned in apprentice mode.
            defer: Learn the event only if :meth:`activate` comes within the reward window.
            actions: Inline actions, id → features, scored like the catalog's.
            event_id: The event's id; made here when not given.

        Raises:
            InvalidContextValue: A context or feature value of a type that cannot be sent
                (raised by this call, not by the await).
            NextBestError: When awaited, as :meth:`NextBest.decide`.
        """
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
        """Many decisions in one call; each item succeeds or fails on its own.

        Args:
            requests: :class:`DecisionRequest` items, or dicts of :meth:`decide`'s arguments.

        Returns:
            One result per request, in order: an :class:`AsyncDecision`, or the item's error.

        Raises:
            NextBestError: As :meth:`NextBest.decide_batch`.
        """
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
        """Report the outcome of a decision; see :meth:`NextBest.reward`.

        Args:
            event_id: The decision's event id.
            value: The reward, higher is better; or give signals instead.
            signals: Named outcome signals, weighed into one reward by the policy's spec.
            reward_id: An idempotency key: a second reward with this id is not applied.
            **more_signals: More signals, as keywords (``resolved=1, csat=5``).

        Raises:
            NextBestError: As :meth:`NextBest.reward`.
        """
        request = reward_request(event_id, value, {**(signals or {}), **more_signals}, reward_id)
        return reward_result(await self._call(self._stub.Reward, request))

    async def activate(self, event_id: str) -> ActivationStatus:
        """Activate an event decided with ``defer=True``; see :meth:`NextBest.activate`.

        Args:
            event_id: The decision's event id.

        Raises:
            NextBestError: As :meth:`NextBest.activate`.
        """
        request = pb.ActivateRequest(event_id=event_id)
        return activation_status(await self._call(self._stub.Activate, request))

    async def explain(self, event_id: str) -> Explanation:
        """The stored record of an event; see :meth:`NextBest.explain`.

        Args:
            event_id: The decision's event id.

        Raises:
            NextBestError: As :meth:`NextBest.explain`.
        """
        request = pb.ExplainRequest(event_id=event_id)
        return explanation(await self._call(self._stub.Explain, request))
