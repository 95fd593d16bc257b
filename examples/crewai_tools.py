"""CrewAI tools that let an agent choose the next action and report how it went.
Run bash scripts/serve.sh first; pip install nextbest-client[crewai]."""

import json
import os

from nextbest_client import NextBest
from nextbest_client.adapters.crewai import nextbest_tools

nb = NextBest(os.environ.get("NEXTBEST_TARGET", "127.0.0.1:50051"))
choose, report = nextbest_tools(nb, "support.next_step")

# In a crew:
#   Agent(role="Support agent", goal="Resolve billing disputes", backstory="...",
#         tools=[choose, report])
# Here we call the tools the way CrewAI does when the agent's LLM picks them.
print(choose.formatted_description)  # what the agent's LLM is told about the tool

facts = [{"name": "account_age_days", "value": 400}, {"name": "amount", "value": 50.0}]
chosen = json.loads(choose.run(intent="billing_dispute", context=facts))
print("do:", chosen["action"], "event:", chosen["event_id"])

print(report.run(event_id=chosen["event_id"], signals={"resolved": 1, "csat": 5}))
print("join:", nb.explain(chosen["event_id"]).join_status)
nb.close()
