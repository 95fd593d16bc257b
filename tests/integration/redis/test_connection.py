"""One URL reaches a server or a cluster; a URL that cannot name one is refused clearly."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from nextbest.store.redis.connection import RedisUrlError, check_url, connect, shown
from tests.redis_server import RedisCluster, RedisServer


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
