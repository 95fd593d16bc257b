"""The synchronous client: ``NextBest(target).decide(...)`` → :class:`Decision`."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from nextbest_client import _channel
from nextbest_client._connection import Connection
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
class Decision(DecisionFields):
    """One decision. Send its reward with :meth:`reward`, or use it as a context manager:

    ``with client.decide(...) as d:`` sends ``error_reward`` if the block raises before a
    reward was sent, and ``default_reward`` (when set) if it ends without one.
    """

    client: NextBest = field(repr=False, compare=False)

    def reward(
        self,
        value: float | None = None,
        *,
        signals: Mapping[str, float] | None = None,
        reward_id: str | None = None,
        **more_signals: float,
    ) -> RewardResult:
        result = self.client.reward(
            self.event_id, value, signals=signals, reward_id=reward_id, **more_signals
        )
        self.rewarded = True
        return result

    def activate(self) -> ActivationStatus:
        return self.client.activate(self.event_id)

    def explain(self) -> Explanation:
        return self.client.explain(self.event_id)

    def _send(self, spec: RewardSpec) -> None:
        if isinstance(spec, Mapping):
            self.reward(signals=spec)
        else:
            self.reward(spec)

    def __enter__(self) -> Decision:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.rewarded:
            return
        if exc is None:
            if self.default_reward is not None:
                self._send(self.default_reward)
        elif isinstance(exc, Exception) and self.error_reward is not None:
            try:  # never hide the caller's exception behind a failed reward
                self._send(self.error_reward)
            except NextBestError as failed:
                log.warning("error reward for event %s not sent: %s", self.event_id, failed)


class NextBest(Connection):
    """A nextbest client over one gRPC channel; thread-safe, meant to be shared.

    ``token`` is sent as ``authorization: Bearer <token>`` (default: ``NEXTBEST_TOKEN``).
    ``tls``: a :class:`TLSConfig` (CA, client certificate and key), ``True`` for TLS with the
    system's roots, ``False`` for plaintext, grpc credentials as given; default: from
    ``NEXTBEST_TLS_CA`` / ``_CERT`` / ``_KEY``, plaintext when unset. ``timeout`` bounds each
    attempt; ``retry`` retries UNAVAILABLE and DEADLINE_EXCEEDED (see :class:`Retry`).
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

    def _decision(self, policy: str, response: pb.DecideResponse) -> Decision:
        return Decision.from_response(
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
    ) -> Decision:
        """Ask which action to take. ``actions`` adds inline actions (id → features), e.g.
        the tools available right now; ``event_id`` is made here when not given."""
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
        return self._decision(policy, self._call(self._stub.Decide, request))

    def decide_batch(
        self,
        requests: Sequence[DecisionRequest | Mapping[str, Any]],
    ) -> list[Decision | NextBestError]:
        """Many decisions in one call, in order; a bad item is returned as its error."""
        batch = batch_request(requests)
        response = self._call(self._stub.DecideBatch, batch)
        out: list[Decision | NextBestError] = []
        for item, result in zip(batch.requests, response.results, strict=True):
            if result.HasField("decision"):
                out.append(self._decision(item.policy, result.decision))
            else:
                e = result.error
                out.append(error_for(e.code, f"{e.field}: {e.message}", e.field, e.message))
        return out

    def reward(
        self,
        event_id: str,
        value: float | None = None,
        *,
        signals: Mapping[str, float] | None = None,
        reward_id: str | None = None,
        **more_signals: float,
    ) -> RewardResult:
        """Report an outcome: a number, or signals (``resolved=1, csat=5``)."""
        request = reward_request(event_id, value, {**(signals or {}), **more_signals}, reward_id)
        return reward_result(self._call(self._stub.Reward, request))

    def activate(self, event_id: str) -> ActivationStatus:
        """Activate an event decided with ``defer=True``, so that it is learned."""
        request = pb.ActivateRequest(event_id=event_id)
        return activation_status(self._call(self._stub.Activate, request))

    def explain(self, event_id: str) -> Explanation:
        """The stored record of an event: context, masks, pmf, rewards, join status."""
        request = pb.ExplainRequest(event_id=event_id)
        return explanation(self._call(self._stub.Explain, request))
