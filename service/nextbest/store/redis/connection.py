"""Connecting to Redis: one URL (``redis://`` or ``rediss://`` for TLS), the password in it
or in ``NEXTBEST_REDIS_PASSWORD``; a Redis Cluster is recognised by asking the server, so the
same URL (any one node) works for both."""

from __future__ import annotations

import os
from typing import Any, TypeAlias
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError, ResponseError

Client: TypeAlias = "aioredis.Redis | aioredis.RedisCluster"
PASSWORD_ENV = "NEXTBEST_REDIS_PASSWORD"
SOCKET_TIMEOUT = 5.0  # seconds: a stalled Redis fails a call, it does not hang it
RETRIES = 1  # a call that fails for its connection is sent again once, after …
RETRY_BASE = 0.01  # … this many seconds (doubling, up to RETRY_CAP): an outage shows at once
RETRY_CAP = 0.1


class RedisUrlError(ValueError):
    """The URL cannot name a Redis server (said in one line, naming the flag)."""


def check_url(url: str) -> str:
    """`url` if it names a Redis server; RedisUrlError saying why not."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise RedisUrlError(f"--redis {shown(url)}: give redis://HOST:PORT or rediss://HOST:PORT")
    if not parts.hostname:
        raise RedisUrlError(f"--redis {shown(url)}: no host")
    try:
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        raise RedisUrlError(f"--redis {shown(url)}: the port is not a number") from None
    return url


def shown(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()


async def connect(url: str, password: str | None = None) -> Client:
    """A client for the server or cluster at `url`. The password: in the URL, else
    `password`, else ``NEXTBEST_REDIS_PASSWORD``. Raises RedisError when it cannot reach it."""
    check_url(url)
    secret = urlsplit(url).password or password or os.environ.get(PASSWORD_ENV) or None
    options: dict[str, Any] = {
        # A call whose connection broke (Redis restarted, a failover) is sent once more on
        # a new one: every call of the store may be sent twice (see store.py).
        "retry": Retry(ExponentialBackoff(cap=RETRY_CAP, base=RETRY_BASE), RETRIES),
        "password": secret,
        "socket_timeout": SOCKET_TIMEOUT,
        "socket_connect_timeout": SOCKET_TIMEOUT,
        "decode_responses": False,
    }
    single = aioredis.Redis.from_url(url, **options)
    try:
        info = await single.info("cluster")
    except ResponseError:  # a server that knows no CLUSTER section
        info = {}
    except RedisError:
        await single.aclose()
        raise
    if not info.get("cluster_enabled"):
        return single
    await single.aclose()
    cluster = aioredis.RedisCluster.from_url(url, **options)
    await cluster.initialize()
    return cluster
