"""LangChain tools that let a model choose the next action and report how it went.
Run bash scripts/serve.sh first; pip install nextbest-client[langchain]."""

import json
import os

from langchain_core.messages.tool import tool_call

from nextbest_client import NextBest
from nextbest_client.adapters.langchain import nextbest_tools

nb = NextBest(os.environ.get("NEXTBEST_TARGET", "127.0.0.1:50051"))
choose, report = nextbest_tools(nb, "support.next_step")
# With a real model: model.bind_tools([choose, report]), or any LangChain/LangGraph agent.
# Here we play the model and send the tool calls it would send.

context = {"account_age_days": 400, "amount": 50.0, "plan": "gold"}
answer = choose.invoke(
    tool_call(name=choose.name, args={"intent": "billing_dispute", "context": context}, id="1")
)
print(answer.content)  # {"action": ..., "event_id": ...}
chosen = json.loads(answer.content)

outcome = report.invoke(
    tool_call(name=report.name, args={"event_id": chosen["event_id"], "value": 1.0}, id="2")
)
print(outcome.content)  # {"status": "accepted", ...}

mistake = report.invoke(tool_call(name=report.name, args={"event_id": "nope", "value": 1}, id="3"))
print(mistake.status, mistake.content)  # the model sees the error and can correct itself
nb.close()
