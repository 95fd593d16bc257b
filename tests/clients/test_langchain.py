"""LangChain tools driven by LangChain's own fake chat model: it emits the tool calls an LLM
would, the tools run them against a real server, and the loop is closed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Sequence
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.messages.tool import tool_call
from langchain_core.tools import BaseTool
from pydantic import BaseModel

from nextbest_client import AsyncNextBest, NextBest
from nextbest_client.adapters.langchain import nextbest_tools
from tests.clients.support import NEW_ACCOUNT, POLICY
from tests.integration.conftest import RunningServer


def call(name: str, args: dict[str, Any], call_id: str) -> AIMessage:
    return AIMessage(content="", tool_calls=[tool_call(name=name, args=args, id=call_id)])


class ScriptedAgent:
    """A fake model whose second tool call uses the event id the first tool answered."""

    def __init__(self, tools: Sequence[BaseTool], choose_args: dict[str, Any], reward: Any) -> None:
        self.tools = {t.name: t for t in tools}
        self.answers: list[ToolMessage] = []
        self.model = GenericFakeChatModel(messages=self._script(choose_args, reward))

    def _script(self, choose_args: dict[str, Any], reward: dict[str, Any]) -> Iterator[AIMessage]:
        yield call("choose_next_action", choose_args, "call-1")
        event_id = json.loads(str(self.answers[-1].content))["event_id"]
        yield call("report_outcome", {"event_id": event_id, **reward}, "call-2")

    def step(self, history: list[BaseMessage]) -> ToolMessage:
        ai = self.model.invoke(history)
        assert isinstance(ai, AIMessage)
        request = ai.tool_calls[0]
        answer = self.tools[request["name"]].invoke(request)
        assert isinstance(answer, ToolMessage)
        self.answers.append(answer)
        return answer

    async def astep(self, history: list[BaseMessage]) -> ToolMessage:
        ai = await self.model.ainvoke(history)
        assert isinstance(ai, AIMessage)
        request = ai.tool_calls[0]
        answer = await self.tools[request["name"]].ainvoke(request)
        assert isinstance(answer, ToolMessage)
        self.answers.append(answer)
        return answer


def test_choose_then_report_through_tool_calls(server: RunningServer, client: NextBest) -> None:
    tools = nextbest_tools(client, POLICY)
    assert [t.name for t in tools] == ["choose_next_action", "report_outcome"]
    schema = tools[0].tool_call_schema
    assert isinstance(schema, type)
    assert issubclass(schema, BaseModel)
    assert schema.model_json_schema()["required"] == ["intent"]

    agent = ScriptedAgent(
        tools,
        {"intent": "billing_dispute", "context": NEW_ACCOUNT},
        {"signals": {"resolved": 1, "csat": 5}},
    )
    chosen = json.loads(str(agent.step([]).content))
    assert chosen["action"] != "offer_refund"
    assert "30 days" in chosen["not_allowed"]["offer_refund"]
    reported = json.loads(str(agent.step([]).content))
    assert reported == {"event_id": chosen["event_id"], "status": "accepted", "reward": 1.0}

    e = client.explain(chosen["event_id"])
    assert (e.action, e.join_status, e.joined_reward) == (chosen["action"], "learned", 1.0)
    assert client.decide(POLICY, "billing_dispute", NEW_ACCOUNT).model_version == "1"


def test_async_tools_with_the_async_client(server: RunningServer, client: NextBest) -> None:
    async def run() -> dict[str, Any]:
        async with AsyncNextBest(server.target) as nb:
            agent = ScriptedAgent(
                nextbest_tools(nb, POLICY),
                {"intent": "login_problem", "context": {"attempts": 3}},
                {"value": 0.5},
            )
            chosen: dict[str, Any] = json.loads(str((await agent.astep([])).content))
            await agent.astep([])
            return chosen

    chosen = asyncio.run(run())
    e = client.explain(chosen["event_id"])
    assert (e.context, e.join_status, e.joined_reward) == ({"attempts": 3.0}, "learned", 0.5)


def test_a_mistake_of_the_model_comes_back_to_it_as_the_tool_answer(client: NextBest) -> None:
    choose, report = nextbest_tools(client, POLICY)
    nested = choose.invoke(
        tool_call(
            name="choose_next_action",
            args={"intent": "billing_dispute", "context": {"plan": {"tier": "gold"}}},
            id="c0",
        )
    )
    assert isinstance(nested, ToolMessage)
    assert nested.status == "error"
    assert "context.plan" in str(nested.content)

    answer = report.invoke(
        tool_call(name="report_outcome", args={"event_id": "made-up", "value": 1}, id="c")
    )
    assert isinstance(answer, ToolMessage)
    assert answer.status == "error"
    assert "NOT_FOUND" in str(answer.content)
