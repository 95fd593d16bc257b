"""Safety from the agent side: what the application passes as ``context=`` to a tool factory
(or the LangGraph router) is merged over the model's context and wins, so a model that claims
an old account cannot get a refund the refund rule denies a 3-day-old one.

Every tool here is called with the model's arguments restricted to ``offer_refund``: on the
model's word alone it is chosen; with the application's context it is masked and the
policy's fallback answers.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from langgraph.graph import END, START, StateGraph

from nextbest_client import AsyncNextBest, NextBest
from nextbest_client.adapters.langchain import nextbest_tools
from nextbest_client.adapters.langgraph import NextBestRouter, NextBestState
from tests.clients.drivers.app_context import ARGS, KNOWN
from tests.clients.support import DRIVERS, POLICY, adapter_python, run_script
from tests.integration.conftest import RunningServer

REFUND_RULE = "refunds need 30 days of tenure and at most 200"
FALLBACK = "escalate_human"


def assert_the_rule_held(answer: Mapping[str, Any], client: NextBest) -> None:
    assert answer["action"] == FALLBACK
    assert answer["not_allowed"]["offer_refund"] == REFUND_RULE
    e = client.explain(answer["event_id"])
    # the application's age, the model's amount
    assert e.context == {"account_age_days": 3.0, "amount": 50.0}
    assert e.fallback


def test_langchain_the_apps_context_wins(server: RunningServer, client: NextBest) -> None:
    (choose, _) = nextbest_tools(client, POLICY)
    model_only = json.loads(choose.invoke(ARGS))
    assert model_only["action"] == "offer_refund"  # the model's claim alone gets the refund

    (choose, _) = nextbest_tools(client, POLICY, context=KNOWN)
    assert_the_rule_held(json.loads(choose.invoke(ARGS)), client)

    calls = []

    def known() -> Mapping[str, Any]:  # read when the tool runs: e.g. from the session
        calls.append(1)
        return KNOWN

    (choose, _) = nextbest_tools(client, POLICY, context=known)
    assert_the_rule_held(json.loads(choose.invoke(ARGS)), client)
    assert calls == [1]


def test_langchain_async_tools_await_an_async_context(
    server: RunningServer, client: NextBest
) -> None:
    async def known() -> Mapping[str, Any]:
        return KNOWN

    async def run() -> Any:
        async with AsyncNextBest(server.target) as nb:
            (choose, _) = nextbest_tools(nb, POLICY, context=known)
            return json.loads(await choose.ainvoke(ARGS))

    assert_the_rule_held(asyncio.run(run()), client)

    (choose, _) = nextbest_tools(client, POLICY, context=known)  # sync tools: refused, clearly
    with pytest.raises(TypeError, match="async tools"):
        choose.invoke(ARGS)


class State(NextBestState, total=False):
    intent: str
    context: dict[str, Any]


def test_langgraph_the_apps_context_wins_over_the_state(
    server: RunningServer, client: NextBest
) -> None:
    nodes = ["offer_refund", "escalate_human"]
    router = NextBestRouter(client, POLICY, nodes, context=lambda: KNOWN)
    graph = StateGraph(State)
    router.add_to(graph)
    for node in nodes:
        graph.add_node(node, lambda state, node=node: {"context": {"visited": node}})
        graph.add_edge(node, END)
    graph.add_edge(START, "nextbest")
    # an LLM node wrote the claimed age into the state
    end = graph.compile().invoke({"intent": "billing_dispute", "context": ARGS["context"]})
    assert end["context"] == {"visited": "escalate_human"}
    e = client.explain(end["nextbest_event_id"])
    assert e.context["account_age_days"] == 3.0
    assert {m.action: m.reason for m in e.masked}["offer_refund"] == REFUND_RULE


@pytest.mark.parametrize("framework", ["crewai", "autogen"])
def test_crewai_and_autogen_the_apps_context_wins(
    server: RunningServer, client: NextBest, tmp_path: Path, framework: str
) -> None:
    python = adapter_python(framework)
    out = json.loads(
        run_script(
            python,
            DRIVERS / "app_context.py",
            server.target,
            tmp_path,
            framework,
            server.target,
            POLICY,
        )
        .strip()
        .splitlines()[-1]
    )
    assert out.pop("model_only")["action"] == "offer_refund"
    assert out  # the app's context, given each way this framework's tools take it
    for answer in out.values():
        assert_the_rule_held(answer, client)
