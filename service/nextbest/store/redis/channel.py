"""Listening on a Redis pub/sub channel, for the followers of Redis mode (models, config).

A message only wakes a follower early: each follower also checks Redis on a timer, so a
message lost while the channel was down (a reconnect, a failover) delays a change by one
interval at most, never loses it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError

from nextbest.store.redis.connection import Client

MAX_BACKOFF = 10.0  # seconds before the channel is subscribed again after an error
LISTEN_POLL = 1.0  # seconds a read of the channel waits for a message, at most
MAX_WAIT = 2 * LISTEN_POLL  # seconds `stop_listening` waits for the listener to end


async def listen(
    client: Client,
    channel: str,
    heard: Callable[[bytes], None],
    log: Any,
    subscribed: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Call `heard` with each message's data on `channel` until cancelled or `stop` is set;
    subscribe again after an error (logged as ``channel_lost``), backing off up to
    `MAX_BACKOFF`. `subscribed` is set once the channel is subscribed. `stop` ends it within
    `LISTEN_POLL` even when redis-py swallowed the cancel (see `nextbest.tasks`)."""
    stop = stop if stop is not None else asyncio.Event()
    backoff = 0.0
    while not stop.is_set():
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(channel)
            if subscribed is not None:
                subscribed.set()
            backoff = 0.0
            while not stop.is_set():
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=LISTEN_POLL
                )
                if message is not None and message.get("type") == "message":
                    data = message.get("data", b"")
                    heard(data if isinstance(data, bytes) else str(data).encode())
        except (RedisError, OSError) as exc:
            backoff = min(max(2 * backoff, 0.1), MAX_BACKOFF)
            log.warning("channel_lost", channel=channel, reason=str(exc), retry_in=backoff)
        finally:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), backoff)


async def stop_listening(listening: asyncio.Task[None], stop: asyncio.Event) -> None:
    """End a `listen` task: its `stop` set, then cancelled. Called from a `finally` of a task
    being cancelled, where a second cancel may cut the wait short: `stop` still ends it."""
    stop.set()
    listening.cancel()
    with contextlib.suppress(BaseException):
        await asyncio.wait([listening], timeout=MAX_WAIT)
