"""LangGraph: a graph's decision point is a nextbest decision; a later node sends the reward."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from langgraph.graph import END, START, StateGraph

from nextbest_client import AsyncNextBest, NextBest
from nextbest_client.adapters.langgraph import NextBestRouter, NextBestState
from tests.clients.support import NEW_ACCOUNT, OLD_ACCOUNT, POLICY
from tests.integration.conftest import RunningServer

HANDLERS = ["ask_details", "transfer_billing", "escalate_human"]


class SupportState(NextBestState, total=False):
    intent: str
    context: dict[str, Any]
    handled_by: str


class Node(Protocol):
    def __call__(self, state: SupportState) -> Any: ...


def handler(name: str) -> Node:
    def handle(state: SupportState) -> dict[str, str]:
        return {"handled_by": name}

    return handle


def support_graph(
    router: NextBestRouter,
    close: Node,
) -> Any:
    graph = StateGraph(SupportState)
    router.add_to(graph, "decide_next_step")
    graph.add_edge(START, "decide_next_step")
    for name in HANDLERS:
        graph.add_node(name, handler(name))
        graph.add_edge(name, "close")
    graph.add_node("close", close)
    graph.add_edge("close", END)
    return graph.compile()


def test_the_graph_routes_to_the_chosen_node_and_a_later_node_rewards(
    server: RunningServer, client: NextBest
) -> None:
    router = NextBestRouter(client, POLICY, HANDLERS)

    def close(state: SupportState) -> dict[str, Any]:
        router.reward(state, resolved=1)
        return {}

    app = support_graph(router, close)
    out = app.invoke({"intent": "billing_dispute", "context": OLD_ACCOUNT})

    assert out["handled_by"] == out["nextbest_action"]
    e = client.explain(out["nextbest_event_id"])
    assert (e.action, e.intent, e.context["plan"]) == (out["handled_by"], "billing_dispute", "gold")
    assert {a.action for a in e.eligible} == set(HANDLERS)  # the graph's nodes only
    assert (e.join_status, e.joined_reward) == ("learned", 1.0)
    assert client.decide(POLICY, "billing_dispute", OLD_ACCOUNT).model_version == "1"


def test_a_rating_after_the_graph_ended_rewards_the_decision(
    server: RunningServer, client: NextBest
) -> None:
    router = NextBestRouter(
        client,
        POLICY,
        {"ask_details": "ask_details", "escalate_human": "escalate_human"},
        inputs=lambda state: (state["intent"], {**state["context"], "channel": "chat"}),
    )

    def close(state: SupportState) -> dict[str, Any]:
        return {}

    out = support_graph(router, close).invoke({"intent": "login_problem", "context": NEW_ACCOUNT})
    assert out["handled_by"] in {"ask_details", "escalate_human"}

    result = router.reward(out, csat=4)  # e.g. a human rated the conversation 4 of 5
    assert (result.status, result.value) == ("accepted", 0.375)
    e = client.explain(out["nextbest_event_id"])
    assert (e.context["channel"], e.join_status, e.joined_reward) == ("chat", "learned", 0.375)


def test_an_async_graph_decides_and_rewards_with_the_async_client(server: RunningServer) -> None:
    async def run() -> tuple[dict[str, Any], str, float | None]:
        async with AsyncNextBest(server.target) as nb:
            router = NextBestRouter(nb, POLICY, HANDLERS)

            async def close(state: SupportState) -> dict[str, Any]:
                await router.areward(state, 0.5)
                return {}

            out: dict[str, Any] = await support_graph(router, close).ainvoke(
                {"intent": "billing_dispute", "context": OLD_ACCOUNT}
            )
            e = await nb.explain(out["nextbest_event_id"])
            return out, e.join_status, e.joined_reward

    out, join_status, joined = asyncio.run(run())
    assert out["handled_by"] == out["nextbest_action"]
    assert (join_status, joined) == ("learned", 0.5)
