"""The asyncio client: the same surface as the sync one, awaited, against a real server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from nextbest_client import (
    AsyncDecision,
    AsyncNextBest,
    InvalidArgument,
    InvalidContextValue,
    NextBestError,
    NotFound,
)
from tests.clients.proxy import FaultyProxy
from tests.clients.support import NEW_ACCOUNT, OLD_ACCOUNT, POLICY, decisions_total
from tests.integration.conftest import RunningServer

NESTED: dict[str, Any] = {"plan": {"tier": "gold"}}  # not a feature value


def test_decide_reward_explain(server: RunningServer) -> None:
    async def run() -> None:
        async with AsyncNextBest(server.target) as nb:
            d = await nb.decide(POLICY, "billing_dispute", NEW_ACCOUNT)
            assert isinstance(d, AsyncDecision)
            assert d.action != "offer_refund"
            assert d.masked[0].rule == "refund_limits"
            assert (await d.reward(resolved=1)).status == "accepted"
            e = await d.explain()
            assert (e.join_status, e.joined_reward) == ("learned", 1.0)
            again = await nb.decide(POLICY, "billing_dispute", NEW_ACCOUNT)
            assert again.model_version == "1"

    asyncio.run(run())


class ToolCrashed(Exception):
    pass


async def act_and_crash(nb: AsyncNextBest) -> None:
    """An agent step that acts inside ``async with`` and fails."""
    async with nb.decide(POLICY, "billing_dispute", OLD_ACCOUNT) as d:
        raise ToolCrashed(d.event_id)


def test_async_with_sends_the_error_reward_when_the_block_raises(server: RunningServer) -> None:
    async def run() -> None:
        async with AsyncNextBest(server.target, error_reward=-1.0) as nb:
            with pytest.raises(ToolCrashed) as crashed:
                await act_and_crash(nb)
            e = await nb.explain(str(crashed.value))
            assert (e.join_status, e.joined_reward) == ("learned", -1.0)

            async with nb.decide(POLICY, "billing_dispute", OLD_ACCOUNT) as ok:
                await ok.reward(0.5)
            assert (await ok.explain()).joined_reward == 0.5

    asyncio.run(run())


def test_bad_context_raises_at_the_call_site_before_anything_is_awaited(
    server: RunningServer, make_proxy: Callable[[str], FaultyProxy]
) -> None:
    proxy = make_proxy(server.target)

    async def run() -> None:
        async with AsyncNextBest(proxy.target) as nb:
            with pytest.raises(InvalidContextValue) as caught:
                nb.decide(POLICY, "billing_dispute", NESTED)
            assert caught.value.field == "context['plan']"

    asyncio.run(run())
    assert proxy.calls == []


def test_typed_errors(server: RunningServer) -> None:
    async def run() -> None:
        async with AsyncNextBest(server.target) as nb:
            with pytest.raises(NotFound) as unknown:
                await nb.decide("no.such.policy", "billing_dispute")
            assert unknown.value.field == "policy"
            with pytest.raises(InvalidArgument) as bad:
                await nb.decide(POLICY, "billing_dispute", {"amount": float("nan")})
            assert bad.value.field == "context['amount']"

    asyncio.run(run())


def test_retry_after_a_lost_answer_makes_one_event(
    server: RunningServer, make_proxy: Callable[[str], FaultyProxy]
) -> None:
    proxy = make_proxy(server.target)
    proxy.inject("Decide", "unavailable", "lost_response")

    async def run() -> None:
        async with AsyncNextBest(proxy.target) as nb:
            d = await nb.decide(POLICY, "billing_dispute", OLD_ACCOUNT)
            assert (await nb.explain(d.event_id)).action == d.action

    asyncio.run(run())
    assert len(proxy.seen("Decide")) == 3
    assert decisions_total(server) == 1


def test_decide_batch(server: RunningServer) -> None:
    async def run() -> list[AsyncDecision | NextBestError]:
        async with AsyncNextBest(server.target) as nb:
            return await nb.decide_batch(
                [
                    {"policy": POLICY, "intent": "billing_dispute", "context": OLD_ACCOUNT},
                    {"policy": POLICY, "intent": ""},
                ]
            )

    ok, failed = asyncio.run(run())
    assert isinstance(ok, AsyncDecision)
    assert isinstance(failed, InvalidArgument)
    assert failed.field == "requests[1].intent"
