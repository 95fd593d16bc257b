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
class Decision(DecisionFields):
    """One decision: the action to take, how it was chosen, and how to report the outcome.

    Send the outcome with :meth:`reward`, or use the decision as a context manager, which
    closes the loop itself: ``with client.decide(...) as d:`` sends ``error_reward`` if the
    block raises before a reward was sent, and ``default_reward`` (when set) if it ends
    without one.

    Attributes:
        policy: The policy that decided.
        event_id: The event's id, which rewards, activations and explanations name.
        action: The action id to take.
        probability: The probability with which ``action`` was drawn (its propensity).
        explored: The action is not the model's greedy choice (exploration).
        fallback: Every candidate was masked and the policy's fallback action was returned.
        ranking: Every eligible action with its probability and score (:class:`RankedAction`).
        masked: The actions left out, each with its reason and rule (:class:`MaskedAction`).
        masked_reasons: Action id → why it was left out, for every masked action.
        epsilon: The exploration rate applied to this decision.
        model_version: The model that scored the actions.
        config_version: The policy configuration in force.
        rewarded: A reward was sent through this object (the context manager then sends none).
        default_reward: Sent when a ``with`` block ends without a reward; None sends nothing.
        error_reward: Sent when a ``with`` block raises before a reward; None sends nothing.
        client: The client that made the decision, and sends its reward.
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
        """Report this decision's outcome: :meth:`NextBest.reward` for its event.

        Args:
            value: The reward, higher is better; or give signals instead.
            signals: Named outcome signals, weighed into one reward by the policy's spec.
            reward_id: An idempotency key; made here when not given.
            **more_signals: More signals, as keywords (``resolved=1, csat=5``).

        Returns:
            Whether the server took the reward, and its value after weighting and clipping.

        Raises:
            InvalidArgument: Both or neither of a value and signals, or a number not finite.
            NextBestError: The call failed (see :meth:`NextBest.reward`).
        """
        result = self.client.reward(
            self.event_id, value, signals=signals, reward_id=reward_id, **more_signals
        )
        self.rewarded = True
        return result

    def activate(self) -> ActivationStatus:
        """Activate this decision, made with ``defer=True``: see :meth:`NextBest.activate`."""
        return self.client.activate(self.event_id)

    def explain(self) -> Explanation:
        """The server's record of this decision: see :meth:`NextBest.explain`."""
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

    Decide which action to take, report how it went, and read the server's record of an
    event. Close it with ``close()``, or use it as a context manager.

    Args:
        target: The server's address, ``host:port``.
        token: Sent as ``authorization: Bearer <token>``; None reads ``NEXTBEST_TOKEN``,
            ``""`` sends no token whatever the environment says.
        tls: A :class:`TLSConfig` (CA, client certificate and key), True for TLS with the
            system's roots, False for plaintext, or grpc credentials used as given; None
            reads ``NEXTBEST_TLS_CA`` / ``_CERT`` / ``_KEY``, plaintext when none is set.
        timeout: Seconds each attempt may take (a retry gets as long again).
        retry: Retries of UNAVAILABLE and DEADLINE_EXCEEDED; None uses ``Retry()``, see
            :class:`Retry`.
        options: gRPC channel arguments, over the client's defaults.
        default_reward: What a decision's ``with`` block sends when it ends without a
            reward (a number, or signals); None sends nothing.
        error_reward: What a decision's ``with`` block sends when it raises before a
            reward; None sends nothing.

    Raises:
        ValueError: ``tls`` is None and the environment sets only one of ``NEXTBEST_TLS_CERT``
            and ``NEXTBEST_TLS_KEY``.
        OSError: A PEM file of ``tls`` cannot be read.
        TypeError: ``tls`` is of none of the types above.
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
        """Ask which action to take at a decision point.

        The request is checked here first, so a bad value raises before any call.

        Args:
            policy: The policy (decision point) to ask, as named in the policy file.
            intent: What the user wants, a label such as ``"billing_dispute"``.
            context: Features of the situation: name → text, number, flag or list of texts.
            candidates: Choose only among these action ids; None: every action.
            exclude: Never choose these action ids.
            baseline: The caller's own choice, returned in apprentice mode.
            defer: Learn the event only if :meth:`activate` comes within the reward window.
            actions: Inline actions, id → features, scored like the catalog's (e.g. the
                tools an agent has right now).
            event_id: The event's id; made here when not given. Repeating an id returns the
                stored decision, so a retry never makes a second event.

        Returns:
            The decision; report its outcome with :meth:`Decision.reward`.

        Raises:
            InvalidContextValue: A context or feature value of a type that cannot be sent.
            InvalidArgument: The request is malformed (e.g. an unknown action id); ``field``
                names what to fix.
            NotFound: The policy is unknown.
            FailedPrecondition: Every action was masked and the policy has no usable fallback.
            AlreadyExists: ``event_id`` was used before with another policy.
            NextBestError: Any other failure, e.g. :class:`Unavailable` after the last retry.
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
        return self._decision(policy, self._call(self._stub.Decide, request))

    def decide_batch(
        self,
        requests: Sequence[DecisionRequest | Mapping[str, Any]],
    ) -> list[Decision | NextBestError]:
        """Many decisions in one call; each item succeeds or fails on its own.

        Args:
            requests: :class:`DecisionRequest` items, or dicts of :meth:`decide`'s arguments.

        Returns:
            One result per request, in order: a :class:`Decision`, or the item's error.

        Raises:
            InvalidArgument: An item is malformed before any call; ``field`` starts with
                ``requests[i]``.
            NextBestError: The call as a whole failed (e.g. more items than the server takes).
        """
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
        """Report the outcome of a decision, so that the policy learns from it.

        Give either a value or signals. A reward id is made before the first attempt, so a
        retried reward is never counted twice.

        Args:
            event_id: The decision's event id.
            value: The reward, higher is better; clipped to the policy's range.
            signals: Named outcome signals, weighed into one reward by the policy's spec.
            reward_id: An idempotency key: a second reward with this id is not applied.
            **more_signals: More signals, as keywords (``resolved=1, csat=5``).

        Returns:
            The status (``accepted``, ``duplicate``, ``late`` …) and the computed value.

        Raises:
            InvalidArgument: Both or neither of a value and signals, a number not finite, or
                a signal the policy does not know.
            NotFound: The event is unknown (never decided, or past retention).
            NextBestError: Any other failure, e.g. :class:`Unavailable` after the last retry.
        """
        request = reward_request(event_id, value, {**(signals or {}), **more_signals}, reward_id)
        return reward_result(self._call(self._stub.Reward, request))

    def activate(self, event_id: str) -> ActivationStatus:
        """Activate an event decided with ``defer=True``, so that it is learned.

        Call it once the chosen action was really taken; an event never activated within
        the reward window is logged but not learned.

        Args:
            event_id: The decision's event id.

        Returns:
            ``activated``, ``already_active`` (or not deferred), or ``late`` (window closed).

        Raises:
            NotFound: The event is unknown (never decided, or past retention).
            NextBestError: Any other failure, e.g. :class:`Unavailable` after the last retry.
        """
        request = pb.ActivateRequest(event_id=event_id)
        return activation_status(self._call(self._stub.Activate, request))

    def explain(self, event_id: str) -> Explanation:
        """The stored record of an event: context, masks, pmf, rewards, join status.

        Args:
            event_id: The decision's event id.

        Raises:
            NotFound: The event is unknown (never decided, or past retention).
            NextBestError: Any other failure, e.g. :class:`Unavailable` after the last retry.
        """
        request = pb.ExplainRequest(event_id=event_id)
        return explanation(self._call(self._stub.Explain, request))
