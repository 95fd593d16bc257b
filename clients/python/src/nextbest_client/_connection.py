"""What every client shares: one channel, its token and timeout, and the retry loop.

:class:`NextBest` and :class:`~nextbest_client.admin.Admin` are :class:`Connection`\\ s, their
asyncio twins :class:`AsyncConnection`\\ s. A call is retried on UNAVAILABLE and
DEADLINE_EXCEEDED (see :class:`~nextbest_client._channel.Retry`); any other failure raises
the typed error of :mod:`nextbest_client.errors`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any, Self, TypeVar

import grpc
import grpc.aio

from nextbest_client import _channel
from nextbest_client.errors import from_rpc_error

Req = TypeVar("Req")
Resp = TypeVar("Resp")


def _settle(
    client: Connection | AsyncConnection,
    target: str,
    token: str | None,
    timeout: float,
    retry: _channel.Retry | None,
) -> None:
    client.target = target
    client._metadata = _channel.metadata(_channel.token_or_env(token))
    client.timeout = timeout
    client.retry = retry or _channel.Retry()


class Connection:
    """One sync channel, its token and timeout, and the retry loop; a context manager."""

    target: str
    """The server's address, as given."""
    timeout: float
    """Seconds each attempt may take."""
    retry: _channel.Retry
    """Retries of UNAVAILABLE and DEADLINE_EXCEEDED."""
    _metadata: _channel.Metadata

    def __init__(
        self,
        target: str,
        *,
        token: str | None,
        tls: _channel.TLS,
        timeout: float,
        retry: _channel.Retry | None,
        options: Sequence[tuple[str, Any]] | None,
    ) -> None:
        self._channel = _channel.channel(target, tls, options)
        _settle(self, target, token, timeout, retry)

    def close(self) -> None:
        """Close the channel; calls in flight are cancelled. ``with`` calls it on exit."""
        self._channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(
        self,
        method: grpc.UnaryUnaryMultiCallable[Req, Resp],
        request: Req,
        retry: _channel.Retry | None = None,
    ) -> Resp:
        retry = retry or self.retry
        for attempt in range(retry.attempts):
            try:
                return method(request, timeout=self.timeout, metadata=self._metadata)
            except grpc.RpcError as exc:
                if exc.code() in _channel.RETRYABLE and attempt + 1 < retry.attempts:
                    time.sleep(retry.delay(attempt))
                    continue
                raise from_rpc_error(exc) from exc
        raise AssertionError("unreachable: the last attempt returns or raises")


class AsyncConnection:
    """One asyncio channel, its token and timeout, and the retry loop; ``async with``."""

    target: str
    """The server's address, as given."""
    timeout: float
    """Seconds each attempt may take."""
    retry: _channel.Retry
    """Retries of UNAVAILABLE and DEADLINE_EXCEEDED."""
    _metadata: _channel.Metadata

    def __init__(
        self,
        target: str,
        *,
        token: str | None,
        tls: _channel.TLS,
        timeout: float,
        retry: _channel.Retry | None,
        options: Sequence[tuple[str, Any]] | None,
    ) -> None:
        self._channel = _channel.aio_channel(target, tls, options)
        _settle(self, target, token, timeout, retry)

    async def close(self) -> None:
        """Close the channel; calls in flight are cancelled. ``async with`` calls it on exit."""
        await self._channel.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _call(
        self,
        method: grpc.aio.UnaryUnaryMultiCallable[Req, Resp],
        request: Req,
        retry: _channel.Retry | None = None,
    ) -> Resp:
        retry = retry or self.retry
        for attempt in range(retry.attempts):
            try:
                return await method(request, timeout=self.timeout, metadata=self._metadata)
            except grpc.aio.AioRpcError as exc:
                if exc.code() in _channel.RETRYABLE and attempt + 1 < retry.attempts:
                    await asyncio.sleep(retry.delay(attempt))
                    continue
                raise from_rpc_error(exc) from exc
        raise AssertionError("unreachable: the last attempt returns or raises")
