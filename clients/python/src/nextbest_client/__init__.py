"""Client for nextbest, the contextual-bandit decision service for AI agents.

``NextBest`` (sync) and ``AsyncNextBest`` (asyncio) wrap the generated stubs of
:mod:`nextbest_client.v1`; framework adapters live in :mod:`nextbest_client.adapters`.
"""

from nextbest_client._channel import Retry
from nextbest_client._values import Context, ContextValue
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
    "AlreadyExists",
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
    "RankedAction",
    "ReceivedReward",
    "Retry",
    "RewardResult",
    "RewardSpec",
    "Unavailable",
]
