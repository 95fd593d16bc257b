"""The test fixtures' redis-server is real, keeps its data over a restart, and clusters."""

from __future__ import annotations

from tests.redis_server import RedisCluster, RedisServer


def test_a_server_answers_and_keeps_its_data_over_a_restart(redis_server: RedisServer) -> None:
    assert redis_server.cli("SET", "k", "v") == "OK"
    redis_server.stop()
    redis_server.start()
    assert redis_server.cli("GET", "k") == "v"


def test_a_cluster_of_three_is_ok(redis_cluster: RedisCluster) -> None:
    info = redis_cluster.nodes[0].cli("CLUSTER", "INFO")
    assert "cluster_known_nodes:3" in info
