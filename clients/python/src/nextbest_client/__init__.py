"""Client for nextbest, the contextual-bandit decision service for AI agents.

``NextBest`` (sync) and ``AsyncNextBest`` (asyncio) wrap the generated stubs of
:mod:`nextbest_client.v1`; ``Admin`` / ``AsyncAdmin`` are the operators' AdminService client;
framework adapters live in :mod:`nextbest_client.adapters`.
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
