"""Channel, metadata and retry settings shared by the sync and asyncio clients."""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import grpc
import grpc.aio

RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})

# A restarting server should be found again within a retry budget, not after grpc's default
# reconnect backoff (1 s, growing to 120 s).
DEFAULT_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
)

Metadata = tuple[tuple[str, str], ...]
PEM: TypeAlias = str | Path | bytes
"""A PEM file's path, or its contents (bytes, or a str starting with ``-----BEGIN``)."""


@dataclass(frozen=True)
class TLSConfig:
    """TLS settings of a channel: whom the client trusts, and for mTLS who it is.

    Each PEM is a file's path, or the PEM itself (bytes, or a str starting with
    ``-----BEGIN``); files are read when a client makes its channel.

    Args:
        ca: The CA certificate(s) that signed the server's certificate; None trusts the
            system's root certificates.
        cert: The client's certificate chain, for mTLS; given together with ``key``.
        key: The client's private key, for mTLS; given together with ``cert``.
        server_name: The name checked against the server's certificate, for a target the
            certificate does not list (an IP address, a load balancer's name).

    Raises:
        ValueError: ``cert`` without ``key``, or ``key`` without ``cert``.
    """

    ca: PEM | None = None
    cert: PEM | None = None
    key: PEM | None = None
    server_name: str | None = None

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise ValueError("TLSConfig: cert and key go together (both, or neither)")

    @classmethod
    def from_env(cls) -> TLSConfig | None:
        """The settings of ``NEXTBEST_TLS_CA``, ``NEXTBEST_TLS_CERT`` and ``NEXTBEST_TLS_KEY``.

        Each variable holds a file's path; the clients read them when ``tls`` is None.

        Returns:
            The settings, or None when none of the three is set (a plaintext channel).

        Raises:
            ValueError: Only one of ``NEXTBEST_TLS_CERT`` and ``NEXTBEST_TLS_KEY`` is set.
        """
        ca, cert, key = (os.environ.get(f"NEXTBEST_TLS_{n}") or None for n in ("CA", "CERT", "KEY"))
        if ca is None and cert is None and key is None:
            return None
        return cls(ca=ca, cert=cert, key=key)

    def credentials(self) -> grpc.ChannelCredentials:
        """The grpc channel credentials these settings describe, PEM files read now.

        Raises:
            OSError: A PEM file cannot be read; the message names the setting and the path.
        """
        return grpc.ssl_channel_credentials(
            root_certificates=_pem(self.ca, "ca"),
            private_key=_pem(self.key, "key"),
            certificate_chain=_pem(self.cert, "cert"),
        )


TLS = bool | TLSConfig | grpc.ChannelCredentials | None
"""``None``: from the environment (``NEXTBEST_TLS_*``; plaintext when unset); ``False``:
plaintext; ``True``: TLS with the system's roots; a :class:`TLSConfig`; or grpc credentials."""


def _pem(value: PEM | None, name: str) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    if isinstance(value, str) and value.lstrip().startswith("-----BEGIN"):
        return value.encode()
    try:
        return Path(value).read_bytes()
    except OSError as exc:
        raise OSError(f"TLSConfig.{name}: {value}: {exc.strerror or exc}") from None


@dataclass(frozen=True)
class Retry:
    """Retries of UNAVAILABLE and DEADLINE_EXCEEDED, with jittered exponential backoff.

    Every RPC is safe to repeat: Decide and DecideBatch carry event ids made before the first
    attempt (the server returns the stored decision), Reward carries a reward id (a repeat is
    a DUPLICATE, never counted twice), Activate and Explain are idempotent.

    Args:
        attempts: Total attempts, the first included; 1 disables retries.
        initial_backoff: Seconds to wait before the first retry.
        max_backoff: The longest wait before any retry, in seconds.
        multiplier: The factor by which the wait grows from one retry to the next.

    Raises:
        ValueError: ``attempts`` is below 1.
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
        """Seconds to wait before a retry: the backoff, times a random factor in [½, 1].

        The jitter keeps clients that failed together from retrying together.

        Args:
            retry: The retry's number, 0 for the first retry (the second attempt).
        """
        backoff = min(self.max_backoff, self.initial_backoff * self.multiplier**retry)
        return backoff * random.uniform(0.5, 1.0)


def token_or_env(token: str | None) -> str | None:
    """The token given, else ``NEXTBEST_TOKEN``; ``""`` sends none whatever the env says."""
    return os.environ.get("NEXTBEST_TOKEN") or None if token is None else token or None


def metadata(token: str | None) -> Metadata:
    return (("authorization", f"Bearer {token}"),) if token else ()


def options(extra: Sequence[tuple[str, Any]] | None) -> list[tuple[str, Any]]:
    given = dict(extra or ())
    return [(k, v) for k, v in DEFAULT_OPTIONS if k not in given] + list(given.items())


def credentials(tls: TLS) -> grpc.ChannelCredentials | None:
    """None for a plaintext channel; True means TLS with the system's root certificates."""
    if tls is None:
        tls = TLSConfig.from_env()
    if tls is None or tls is False:
        return None
    if tls is True:
        return grpc.ssl_channel_credentials()
    if isinstance(tls, TLSConfig):
        return tls.credentials()
    if isinstance(tls, grpc.ChannelCredentials):
        return tls
    raise TypeError(
        f"tls: expected bool, TLSConfig or grpc.ChannelCredentials, got {type(tls).__name__}"
    )


def _channel_args(tls: TLS, extra: Sequence[tuple[str, Any]] | None) -> list[tuple[str, Any]]:
    args = options(extra)
    if isinstance(tls, TLSConfig) and tls.server_name:
        args.append(("grpc.ssl_target_name_override", tls.server_name))
    return args


def channel(target: str, tls: TLS, extra: Sequence[tuple[str, Any]] | None) -> grpc.Channel:
    """A sync channel: TLS per `tls` (see :data:`TLS`), else plaintext."""
    tls = TLSConfig.from_env() if tls is None else tls
    creds = credentials(tls)
    args = _channel_args(tls, extra)
    if creds is None:
        return grpc.insecure_channel(target, args)
    return grpc.secure_channel(target, creds, args)


def aio_channel(target: str, tls: TLS, extra: Sequence[tuple[str, Any]] | None) -> grpc.aio.Channel:
    """An asyncio channel, as :func:`channel`."""
    tls = TLSConfig.from_env() if tls is None else tls
    creds = credentials(tls)
    args = _channel_args(tls, extra)
    if creds is None:
        return grpc.aio.insecure_channel(target, args)
    return grpc.aio.secure_channel(target, creds, args)
