"""Retries through a faulty proxy: a lost call or a lost answer never makes a second event."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest

from nextbest_client import DeadlineExceeded, NextBest, NotFound, Retry, Unavailable
from nextbest_client.v1 import decision_pb2 as pb
from tests.clients.proxy import FaultyProxy
from tests.clients.support import OLD_ACCOUNT, POLICY, decisions_total
from tests.integration.conftest import RunningServer

ProxyFactory = Callable[[str], FaultyProxy]


def sent_event_ids(proxy: FaultyProxy) -> list[str]:
    return [pb.DecideRequest.FromString(c.request).event_id for c in proxy.seen("Decide")]


def test_unavailable_is_retried_with_the_same_event_id(
    server: RunningServer, make_proxy: ProxyFactory
) -> None:
    proxy = make_proxy(server.target)
    proxy.inject("Decide", "unavailable", "unavailable")
    with NextBest(proxy.target) as nb:
        d = nb.decide(POLICY, "billing_dispute", OLD_ACCOUNT)
        assert sent_event_ids(proxy) == [d.event_id] * 3
        assert nb.explain(d.event_id).action == d.action
    assert decisions_total(server) == 1


def test_a_lost_answer_is_retried_into_the_stored_decision_not_a_second_event(
    server: RunningServer, make_proxy: ProxyFactory
) -> None:
    proxy = make_proxy(server.target)
    proxy.inject("Decide", "lost_response")  # the server decided; the client never heard
    with NextBest(proxy.target) as nb:
        d = nb.decide(POLICY, "billing_dispute", OLD_ACCOUNT)
        e = nb.explain(d.event_id)
    assert sent_event_ids(proxy) == [d.event_id, d.event_id]
    assert (e.action, e.probability) == (d.action, d.probability)
    assert decisions_total(server) == 1


def test_a_lost_reward_answer_is_not_counted_twice(
    server: RunningServer, make_proxy: ProxyFactory
) -> None:
    proxy = make_proxy(server.target)
    proxy.inject("Reward", "lost_response")
    with NextBest(proxy.target) as nb:
        d = nb.decide(POLICY, "billing_dispute", OLD_ACCOUNT)
        result = d.reward(resolved=1)
        e = d.explain()
    assert result.status == "duplicate"  # the first attempt landed; the retry said so
    assert len(proxy.seen("Reward")) == 2
    assert [r.value for r in e.rewards] == [1.0]
    assert (e.join_status, e.joined_reward) == ("learned", 1.0)


def test_deadline_exceeded_is_retried(server: RunningServer, make_proxy: ProxyFactory) -> None:
    proxy = make_proxy(server.target)
    proxy.inject("Decide", "stall")
    with NextBest(proxy.target, timeout=0.5) as nb:
        d = nb.decide(POLICY, "billing_dispute", OLD_ACCOUNT)
    assert sent_event_ids(proxy) == [d.event_id, d.event_id]
    assert decisions_total(server) == 1


def test_retries_are_bounded_and_end_in_a_typed_error(
    server: RunningServer, make_proxy: ProxyFactory
) -> None:
    proxy = make_proxy(server.target)
    proxy.inject("Decide", "unavailable", "unavailable", "unavailable")
    with NextBest(proxy.target, retry=Retry(attempts=3)) as nb, pytest.raises(Unavailable) as e:
        nb.decide(POLICY, "billing_dispute", OLD_ACCOUNT)
    assert e.value.code == grpc.StatusCode.UNAVAILABLE
    assert len(proxy.seen("Decide")) == 3
    assert decisions_total(server) == 0

    proxy.inject("Decide", "stall")  # the server decides; the answer comes too late
    no_retry = NextBest(proxy.target, timeout=0.2, retry=Retry(attempts=1))
    with no_retry as nb, pytest.raises(DeadlineExceeded):
        nb.decide(POLICY, "billing_dispute", OLD_ACCOUNT)
    assert len(proxy.seen("Decide")) == 4
    assert decisions_total(server) == 1


def test_errors_other_than_unavailable_and_deadline_are_not_retried(
    server: RunningServer, make_proxy: ProxyFactory
) -> None:
    proxy = make_proxy(server.target)
    with NextBest(proxy.target) as nb, pytest.raises(NotFound) as e:
        nb.decide("no.such.policy", "billing_dispute")
    assert e.value.field == "policy"  # the server's detail survives the proxy
    assert len(proxy.seen("Decide")) == 1
