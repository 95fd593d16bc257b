"""AutoGen agents, driven by AutoGen's replay model, choose and report through nextbest.

Usage: python autogen_loop.py TARGET POLICY → prints one JSON object with the tool answers.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from autogen_agentchat.agents import AssistantAgent  # type: ignore[import-not-found, unused-ignore]
from autogen_agentchat.messages import ToolCallExecutionEvent  # type: ignore[import-not-found, unused-ignore]
from autogen_core import CancellationToken, FunctionCall  # type: ignore[import-not-found, unused-ignore]
from autogen_core.models import CreateResult, ModelInfo, RequestUsage  # type: ignore[import-not-found, unused-ignore]
from autogen_ext.models.replay import ReplayChatCompletionClient  # type: ignore[import-not-found, unused-ignore]

from nextbest_client import AsyncNextBest, NextBest
from nextbest_client.adapters.autogen import nextbest_function_tools

CHOOSE = {"intent": "billing_dispute", "context": {"account_age_days": 3, "plan": "gold"}}


def scripted_model(tool: str, arguments: dict[str, Any]) -> Any:
    """AutoGen's own fake model: its one answer is a call of ``tool``."""
    call = FunctionCall(id="call-1", name=tool, arguments=json.dumps(arguments))
    answer = CreateResult(
        finish_reason="function_calls",
        content=[call],
        usage=RequestUsage(prompt_tokens=0, completion_tokens=0),
        cached=False,
    )
    info = ModelInfo(
        vision=False,
        function_calling=True,
        json_output=False,
        family="unknown",
        structured_output=False,
    )
    return ReplayChatCompletionClient([answer], model_info=info)


async def agent_calls(name: str, tools: list[Any], tool: str, arguments: dict[str, Any]) -> Any:
    """Run an AssistantAgent whose model calls ``tool``; return the tool's parsed answer."""
    agent = AssistantAgent(name, model_client=scripted_model(tool, arguments), tools=tools)
    result = await agent.run(task="The customer disputes a charge.")
    for message in result.messages:
        if isinstance(message, ToolCallExecutionEvent):
            outcome = message.content[0]
            if outcome.is_error:
                raise RuntimeError(outcome.content)
            return json.loads(outcome.content)
    raise RuntimeError(f"{name} called no tool: {result.messages}")


async def main(target: str, policy: str) -> dict[str, Any]:
    async with AsyncNextBest(target) as nb:  # the agents' path: coroutine tools
        tools = nextbest_function_tools(nb, policy)
        chosen = await agent_calls("support_agent", tools, "choose_next_action", CHOOSE)
        report = {"event_id": chosen["event_id"], "signals": {"resolved": 1}}
        reported = await agent_calls("rater", tools, "report_outcome", report)
    with NextBest(target) as sync_client:  # plain functions, run by AutoGen in a thread
        choose, report_tool = nextbest_function_tools(sync_client, policy)
        token = CancellationToken()
        sync_chosen = json.loads(await choose.run_json(CHOOSE, token))
        await report_tool.run_json({"event_id": sync_chosen["event_id"], "value": 0.5}, token)
    return {"chosen": chosen, "reported": reported, "sync_chosen": sync_chosen}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2]))))
