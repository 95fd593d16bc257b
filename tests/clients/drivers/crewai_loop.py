"""CrewAI tools choose and report through nextbest, sync (``run``) and async (``arun``).

Usage: python crewai_loop.py TARGET POLICY → prints one JSON object with the tool answers.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from nextbest_client import AsyncNextBest, NextBest
from nextbest_client.adapters.crewai import (
    ChooseNextActionTool,
    ReportOutcomeTool,
    nextbest_tools,
)

CHOOSE = {"intent": "billing_dispute", "context": {"account_age_days": 3, "plan": "gold"}}
# The schema's own form of the context, as a model following it sends it.
FACTS = [{"name": "account_age_days", "value": 3}, {"name": "tags", "value": ["vip", "eu"]}]


async def run_async(target: str, policy: str) -> dict[str, Any]:
    async with AsyncNextBest(target) as nb:
        choose = ChooseNextActionTool(client=nb, policy=policy)
        report = ReportOutcomeTool(client=nb)
        chosen: dict[str, Any] = json.loads(await choose.arun(**CHOOSE))
        await report.arun(event_id=chosen["event_id"], value=0.5)
        return chosen


def main(target: str, policy: str) -> dict[str, Any]:
    with NextBest(target) as nb:
        choose, report = nextbest_tools(nb, policy)
        # What a CrewAI agent sees: the tool's name, description and argument schema.
        described = choose.formatted_description
        chosen = json.loads(choose.run(intent="billing_dispute", context=FACTS))
        reported = json.loads(report.run(event_id=chosen["event_id"], signals={"resolved": 1}))
    return {
        "chosen": chosen,
        "reported": reported,
        "async_chosen": asyncio.run(run_async(target, policy)),
        "described": described,
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
