"""One URL reaches a server or a cluster; a URL that cannot name one is refused clearly."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.asyncio.connection import Connection
from redis.exceptions import DataError
from redis.exceptions import TimeoutError as RedisTimeoutError

from nextbest.store.redis import connection
from nextbest.store.redis.connection import RedisUrlError, check_url, connect, shown
from tests.certs import Authority
from tests.redis_server import RedisCluster, RedisServer, free_port


def test_a_server_and_a_cluster_are_told_apart(
    redis_server: RedisServer, redis_cluster: RedisCluster
) -> None:
    async def kinds() -> tuple[type, type]:
        single = await connect(redis_server.url)
        cluster = await connect(redis_cluster.url)
        try:
            await single.set("k", "v")
            await cluster.set("k", "v")
            return type(single), type(cluster)
        finally:
            await single.aclose()
            await cluster.aclose()

    assert asyncio.run(kinds()) == (aioredis.Redis, aioredis.RedisCluster)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:6379", "give redis://"),
        ("redis://", "no host"),
        ("redis://127.0.0.1:notaport", "not a number"),
    ],
)
def test_a_bad_url_is_refused_naming_the_flag(url: str, reason: str) -> None:
    with pytest.raises(RedisUrlError, match=reason) as info:
        check_url(url)
    assert str(info.value).startswith("--redis ")


def test_a_password_is_never_shown() -> None:
    assert shown("redis://user:s3cret@h:1/0") == "redis://user:***@h:1/0"
    with pytest.raises(RedisUrlError) as info:
        check_url("http://user:s3cret@h:1/0")
    assert "s3cret" not in str(info.value)


def test_commands_are_packed_as_redis_py_packs_them(redis_server: RedisServer) -> None:
    """A single server's connections pack with hiredis: the bytes redis-py's packer makes."""

    async def connection_class() -> type[Connection]:
        client = await connect(redis_server.url)
        await client.aclose()
        assert isinstance(client, aioredis.Redis)
        made = client.connection_pool.connection_class
        assert issubclass(made, Connection)
        return made

    made = asyncio.run(connection_class())
    assert made is not Connection
    ours, theirs = made(), Connection()
    for args in [
        ("EVALSHA", "ab" * 20, 3, "nb:e:{é}", b"\x00\xff" * 5000, 1.5, 1e20, -7, 2**70, "ünï"),
        ("CONFIG GET", "maxmemory"),
        ("ZADD", "k", "NX", 0.1, "m"),
        (b"PING",),
    ]:
        assert b"".join(ours.pack_command(*args)) == b"".join(theirs.pack_command(*args))
    with pytest.raises(DataError):
        ours.pack_command("SET", "k", True)


def test_a_stalled_redis_fails_a_call_in_time_however_large(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writes skip redis-py's timeout when they cannot wait: the reply's read is still
    bounded, and a write too large for the socket is bounded as redis-py bounds it."""
    monkeypatch.setattr(connection, "SOCKET_TIMEOUT", 0.3)
    assert redis_server.proc is not None
    pid = redis_server.proc.pid

    async def body() -> None:
        client = await connect(redis_server.url)
        try:
            await client.set("k", "v")
            os.kill(pid, signal.SIGSTOP)
            try:
                for value in (b"small", b"x" * (64 << 20)):  # a reply never comes; nor room
                    started = time.monotonic()
                    with pytest.raises(RedisTimeoutError):
                        await client.set("k", value)
                    assert time.monotonic() - started < 10  # timeouts and one retry, not a hang
            finally:
                os.kill(pid, signal.SIGCONT)
            assert await client.ping()
        finally:
            await client.aclose()

    asyncio.run(body())


def test_a_tls_server_is_reached_and_answers_large_values(tmp_path: Path) -> None:
    """``rediss://``: the same prompt writes, over TLS (its transport's buffer marks)."""
    authority = Authority(tmp_path / "ca")
    pair = authority.server()
    tls = free_port()
    # fmt: off
    server = RedisServer(
        tmp_path / "redis", "--tls-port", str(tls), "--tls-cert-file", str(pair.cert),
        "--tls-key-file", str(pair.key), "--tls-ca-cert-file", str(authority.ca),
        "--tls-auth-clients", "no",
    ).start()
    # fmt: on

    async def body() -> None:
        client = await connect(f"rediss://127.0.0.1:{tls}/0?ssl_ca_certs={authority.ca}")
        try:
            for size in (10, 1 << 20):  # one write at once; one above the buffer's mark
                await client.set("k", b"v" * size)
                assert await client.strlen("k") == size
        finally:
            await client.aclose()

    try:
        asyncio.run(body())
    finally:
        server.stop()
