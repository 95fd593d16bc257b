"""Channel, metadata and retry settings shared by the sync and asyncio clients."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc

RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})

# A restarting server should be found again within a retry budget, not after grpc's default
# reconnect backoff (1 s, growing to 120 s).
DEFAULT_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
)

Metadata = tuple[tuple[str, str], ...]
TLS = bool | grpc.ChannelCredentials | None


@dataclass(frozen=True)
class Retry:
    """Retries of UNAVAILABLE and DEADLINE_EXCEEDED, with jittered exponential backoff.

    Every RPC is safe to repeat: Decide and DecideBatch carry event ids made before the first
    attempt (the server returns the stored decision), Reward carries a reward id (a repeat is
    a DUPLICATE, never counted twice), Activate and Explain are idempotent.
    """

    attempts: int = 4
    """Total attempts, the first included; 1 disables retries."""
    initial_backoff: float = 0.05
    max_backoff: float = 1.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("Retry.attempts must be at least 1")

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (0-based), jittered in [½, 1]."""
        backoff = min(self.max_backoff, self.initial_backoff * self.multiplier**retry)
        return backoff * random.uniform(0.5, 1.0)


def metadata(token: str | None) -> Metadata:
    return (("authorization", f"Bearer {token}"),) if token else ()


def options(extra: Sequence[tuple[str, Any]] | None) -> list[tuple[str, Any]]:
    given = dict(extra or ())
    return [(k, v) for k, v in DEFAULT_OPTIONS if k not in given] + list(given.items())


def credentials(tls: TLS) -> grpc.ChannelCredentials | None:
    """None for a plaintext channel; True means TLS with the system's root certificates."""
    if tls is None or tls is False:
        return None
    if tls is True:
        return grpc.ssl_channel_credentials()
    if isinstance(tls, grpc.ChannelCredentials):
        return tls
    raise TypeError(f"tls: expected bool or grpc.ChannelCredentials, got {type(tls).__name__}")
