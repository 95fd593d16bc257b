"""Client for nextbest, the contextual-bandit decision service for AI agents.

``NextBest`` (sync) and ``AsyncNextBest`` (asyncio) wrap the generated stubs of
``nextbest_client.v1`` (the ``nextbest-proto`` distribution's, which the server shares);
``Admin`` / ``AsyncAdmin`` are the operators' AdminService client;
framework adapters live in :mod:`nextbest_client.adapters`.

Decide, act, then report how it went:

    with NextBest("127.0.0.1:50051") as nb:
        d = nb.decide("support.next_step", "billing_dispute", {"amount": 80.0})
        d.reward(resolved=1)

Types of the arguments:

- ``Context``: a decision's (or an inline action's) features, name → ``ContextValue``;
  every value is checked before any call (:class:`InvalidContextValue`).
- ``ContextValue``: a feature value: a str, an int or float, a bool, or a list of str.
- ``RewardSpec``: a reward: a number, or named signals the policy's reward spec weighs into
  one (``{"resolved": 1, "csat": 5}``).

Failures raise :class:`NextBestError` subclasses: one per gRPC status the server uses, with
the request field at fault in ``field``.
"""

from nextbest_client._channel import Retry, TLSConfig
from nextbest_client._values import Context, ContextValue
from nextbest_client.admin import Admin, AsyncAdmin
from nextbest_client.aio import AsyncDecision, AsyncNextBest
from nextbest_client.client import Decision, NextBest
from nextbest_client.errors import (
    AlreadyExists,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    InvalidContextValue,
    NextBestError,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from nextbest_client.types import (
    DecisionRequest,
    EligibleAction,
    Explanation,
    MaskedAction,
    RankedAction,
    ReceivedReward,
    RewardResult,
    RewardSpec,
)

__version__ = "0.1.0"

__all__ = [
    "Admin",
    "AlreadyExists",
    "AsyncAdmin",
    "AsyncDecision",
    "AsyncNextBest",
    "Context",
    "ContextValue",
    "DeadlineExceeded",
    "Decision",
    "DecisionRequest",
    "EligibleAction",
    "Explanation",
    "FailedPrecondition",
    "InvalidArgument",
    "InvalidContextValue",
    "MaskedAction",
    "NextBest",
    "NextBestError",
    "NotFound",
    "PermissionDenied",
    "RankedAction",
    "ReceivedReward",
    "Retry",
    "RewardResult",
    "RewardSpec",
    "TLSConfig",
    "Unauthenticated",
    "Unavailable",
]
