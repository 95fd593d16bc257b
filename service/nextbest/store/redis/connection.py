"""Connecting to Redis: one URL (``redis://`` or ``rediss://`` for TLS), the password in it
or in ``NEXTBEST_REDIS_PASSWORD``; a Redis Cluster is recognised by asking the server, so the
same URL (any one node) works for both."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, TypeAlias, cast
from urllib.parse import urlsplit

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection, Connection, SSLConnection
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.typing import EncodableT

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
    # A Cluster's nodes keep redis-py's pool and connections (it sets them itself).
    single = aioredis.Redis.from_pool(_Pool.from_url(url, **options))
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


class _Pool(aioredis.ConnectionPool):
    """redis-py's pool, of `_PromptWrites` connections, giving one out and taking it back
    without what this process does not use (≈ 25 µs a command): its lock (one event loop,
    and nothing between taking a connection and marking it used awaits), its check for
    deprecated arguments, its observability counters and its release event (for
    credentials that re-authenticate). A new connection is made the way redis-py makes
    it, and a connection given out is checked as redis-py checks it (`ensure_connection`:
    connected, nothing left unread)."""

    def __init__(self, connection_class: type[AbstractConnection] = Connection, **options: Any):
        super().__init__(_PROMPT.get(connection_class, connection_class), **options)

    async def get_connection(
        self, command_name: str | None = None, *keys: Any, **options: Any
    ) -> AbstractConnection:
        """A connection for a command (the arguments, deprecated by redis-py, are unused)."""
        if not self._available_connections:  # a new one, made the way redis-py makes it
            made = await super().get_connection()  # type: ignore[no-untyped-call]
            return cast(AbstractConnection, made)
        connection = self._available_connections.pop()
        self._in_use_connections.add(connection)
        try:
            await self.ensure_connection(connection)
        except BaseException:
            await self.release(connection)
            raise
        return connection

    async def release(self, connection: AbstractConnection) -> None:
        self._in_use_connections.remove(connection)
        if connection.should_reconnect():  # type: ignore[no-untyped-call]
            await connection.disconnect()
        self._available_connections.append(connection)


class _PromptWrites(Connection):
    """redis-py's connection, cheaper per command (a Redis-mode Decide is one command):

    - packed by hiredis in one C call, as redis-py's synchronous client packs, not by its
      asyncio client's packer in Python (≈ 5× slower on an event's ADD);
    - written without `asyncio.wait_for`, which redis-py puts around every write when
      there is a socket timeout and which makes a task of each on Python 3.11. A write
      that leaves the transport's buffer at most at its high-water mark never waits
      (`drain` waits only above it), so it needs no bound; any other write is bounded as
      redis-py does, and every read still is (its reply's).
    """

    def pack_command(self, *args: EncodableT) -> list[bytes]:
        head = args[0]
        if all(type(a) in _PACKABLE for a in args) and not (isinstance(head, str) and " " in head):
            return [hiredis.pack_command(args)]  # type: ignore[arg-type]  # its stub: a 1-tuple
        return super().pack_command(*args)  # "CONFIG GET" and the like, or odd types

    async def send_packed_command(
        self, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        writer = self._writer
        if (
            self.health_check_interval  # redis-py's PING first: its way
            or writer is None  # not connected yet: redis-py connects
            or not isinstance(command, list)
            or sum(map(len, command)) + writer.transport.get_write_buffer_size()
            > writer.transport.get_write_buffer_limits()[1]
        ):
            await super().send_packed_command(command, check_health)
            return
        try:
            writer.writelines(command)
            await writer.drain()  # returns at once: the buffer is not above its mark
        except BaseException as exc:  # as redis-py: the connection is not reused
            await self.disconnect(nowait=True)
            if isinstance(exc, OSError):
                raise RedisConnectionError(f"Error while writing to socket: {exc}") from exc
            raise


class _PromptSSLWrites(_PromptWrites, SSLConnection):
    """`_PromptWrites` over TLS (``rediss://``)."""


_PACKABLE = frozenset((str, bytes, int, float))  # as redis-py encodes them (no bool, no None)
_PROMPT: dict[type[AbstractConnection], type[AbstractConnection]] = {
    Connection: _PromptWrites,
    SSLConnection: _PromptSSLWrites,
}
