"""Fixtures for the client SDK and adapter tests: a real server, a client, a faulty proxy."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from nextbest_client import NextBest
from tests.clients.proxy import FaultyProxy
from tests.integration.conftest import RunningServer, server, start_server  # noqa: F401


@pytest.fixture
def client(server: RunningServer) -> Iterator[NextBest]:  # noqa: F811
    with NextBest(server.target) as nb:
        yield nb


@pytest.fixture
def make_proxy() -> Iterator[Callable[[str], FaultyProxy]]:
    started: list[FaultyProxy] = []

    def make(target: str) -> FaultyProxy:
        proxy = FaultyProxy(target)
        started.append(proxy)
        return proxy

    yield make
    for proxy in started:
        proxy.stop()
