"""The application's context beats the model's, in CrewAI's and AutoGen's tools.

The model claims an old account (the refund rule would let offer_refund through); the app
knows the account is 3 days old. Usage: python app_context.py crewai|autogen TARGET POLICY →
one JSON object: each tool answer, keyed by how the tool was made.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Mapping
from typing import Any

from nextbest_client import AsyncNextBest, NextBest

CLAIMED = {"account_age_days": 400, "amount": 50}  # what a talked-into model says
KNOWN = {"account_age_days": 3}  # what the application knows
ARGS: dict[str, Any] = {
    "intent": "billing_dispute",
    "context": CLAIMED,
    "candidates": ["offer_refund"],
}


async def known_later() -> Mapping[str, Any]:
    return KNOWN


def crewai(target: str, policy: str) -> dict[str, Any]:
    from nextbest_client.adapters.crewai import ChooseNextActionTool, nextbest_tools

    out: dict[str, Any] = {}
    with NextBest(target) as nb:
        out["model_only"] = json.loads(nextbest_tools(nb, policy)[0].run(**ARGS))
        out["mapping"] = json.loads(nextbest_tools(nb, policy, context=KNOWN)[0].run(**ARGS))
        out["callable"] = json.loads(
            nextbest_tools(nb, policy, context=lambda: KNOWN)[0].run(**ARGS)
        )

    async def run_async() -> Any:
        async with AsyncNextBest(target) as anb:
            tool = ChooseNextActionTool(client=anb, policy=policy, app_context=known_later)
            return json.loads(await tool.arun(**ARGS))

    out["async_callable"] = asyncio.run(run_async())
    return out


def autogen(target: str, policy: str) -> dict[str, Any]:
    from autogen_core import CancellationToken  # type: ignore[import-not-found, unused-ignore]

    from nextbest_client.adapters.autogen import nextbest_function_tools

    async def call(tools: list[Any]) -> Any:
        result = await tools[0].run_json(ARGS, CancellationToken())
        return json.loads(tools[0].return_value_as_string(result))

    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {}
        with NextBest(target) as nb:
            out["model_only"] = await call(nextbest_function_tools(nb, policy))
            out["mapping"] = await call(nextbest_function_tools(nb, policy, context=KNOWN))
        async with AsyncNextBest(target) as anb:
            out["async_callable"] = await call(
                nextbest_function_tools(anb, policy, context=known_later)
            )
        return out

    return asyncio.run(main())


if __name__ == "__main__":
    framework, target, policy = sys.argv[1:4]
    print(json.dumps({"crewai": crewai, "autogen": autogen}[framework](target, policy)))
