"""AutoGen FunctionTools that let an AssistantAgent choose the next action and report how it
went. Run bash scripts/serve.sh first. autogen-core pins protobuf 5, so install it with
--no-deps (see clients/python/README.md)."""

import asyncio
import json
import os

from autogen_agentchat.agents import AssistantAgent
from autogen_core import FunctionCall
from autogen_core.models import CreateResult, ModelInfo, RequestUsage
from autogen_ext.models.replay import ReplayChatCompletionClient

from nextbest_client import AsyncNextBest
from nextbest_client.adapters.autogen import nextbest_function_tools

CALL = FunctionCall(
    id="1",
    name="choose_next_action",
    arguments=json.dumps({"intent": "billing_dispute", "context": {"amount": 50.0}}),
)


async def main() -> None:
    async with AsyncNextBest(os.environ.get("NEXTBEST_TARGET", "127.0.0.1:50051")) as nb:
        tools = nextbest_function_tools(nb, "support.next_step")
        # A real model client (e.g. OpenAIChatCompletionClient) goes here; this one replays
        # the tool call such a model would make.
        model = ReplayChatCompletionClient(
            [
                CreateResult(
                    finish_reason="function_calls",
                    content=[CALL],
                    usage=RequestUsage(prompt_tokens=0, completion_tokens=0),
                    cached=False,
                )
            ],
            model_info=ModelInfo(
                vision=False,
                function_calling=True,
                json_output=False,
                family="unknown",
                structured_output=False,
            ),
        )
        agent = AssistantAgent("support", model_client=model, tools=tools)
        result = await agent.run(task="The customer disputes a charge of 50.")
        chosen = json.loads(result.messages[-1].to_text())
        print("do:", chosen["action"])
        await nb.reward(chosen["event_id"], resolved=1)  # or: the report_outcome tool
        print("join:", (await nb.explain(chosen["event_id"])).join_status)


asyncio.run(main())
