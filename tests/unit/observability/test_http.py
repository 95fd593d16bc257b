"""The /metrics endpoint: threads and connections stay bounded whatever clients do."""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter

from nextbest.observability.http import MetricsServer, serve_metrics


@pytest.fixture
def endpoint() -> Iterator[MetricsServer]:
    registry = CollectorRegistry()
    Counter("nextbest_things", "Things", registry=registry).inc(3)
    server = serve_metrics(registry, "127.0.0.1", 0, timeout=0.3, max_connections=8)
    yield server
    server.shutdown()
    server.server_close()


def scrape(server: MetricsServer, path: str = "/metrics") -> str:
    url = f"http://127.0.0.1:{server.server_port}{path}"
    with urllib.request.urlopen(url, timeout=5) as reply:
        return str(reply.read().decode())


def test_serves_the_registry(endpoint: MetricsServer) -> None:
    assert "nextbest_things_total 3.0" in scrape(endpoint)
    with pytest.raises(urllib.error.HTTPError) as err:
        scrape(endpoint, "/nope")
    assert err.value.code == 404


def test_an_idle_connection_is_closed_after_the_timeout(endpoint: MetricsServer) -> None:
    with socket.create_connection(("127.0.0.1", endpoint.server_port)) as idle:
        idle.sendall(b"GET /metrics HTTP/1.1\r\n")  # half a request, then nothing
        idle.settimeout(5)
        started = time.monotonic()
        assert idle.recv(1024) == b""  # closed by the server, no answer
        assert time.monotonic() - started < 3


def test_idle_connections_beyond_the_bound_evict_the_oldest(endpoint: MetricsServer) -> None:
    threads = threading.active_count()
    idle = [socket.create_connection(("127.0.0.1", endpoint.server_port)) for _ in range(50)]
    try:
        assert "nextbest_things_total" in scrape(endpoint)
        assert threading.active_count() == threads
        idle[0].settimeout(5)
        assert idle[0].recv(1024) == b""  # evicted at once, long before the timeout
    finally:
        for s in idle:
            s.close()


def test_shutdown_stops_the_thread() -> None:
    before = threading.active_count()
    server = serve_metrics(CollectorRegistry(), "127.0.0.1", 0)
    assert threading.active_count() == before + 1
    server.shutdown()
    server.server_close()
    assert threading.active_count() == before
