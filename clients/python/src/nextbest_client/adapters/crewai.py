"""CrewAI tools: :class:`ChooseNextActionTool` and :class:`ReportOutcomeTool`.

Install with ``pip install nextbest-client[crewai]``. ``run`` needs a
:class:`nextbest_client.NextBest`; ``arun`` takes either client (a sync one runs in a
thread).

``context=`` of :func:`nextbest_tools` (``app_context=`` of :class:`ChooseNextActionTool`: a
mapping, or a callable returning one) holds what the application knows itself; it is merged
over the model's context and wins, so the model cannot talk its way past a safety rule that
reads it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from crewai.tools import BaseTool  # type: ignore[import-not-found, unused-ignore]
from pydantic import BaseModel, ConfigDict, Field

from nextbest_client.adapters._common import (
    CHOOSE_DESCRIPTION,
    CHOOSE_NAME,
    REPORT_DESCRIPTION,
    REPORT_NAME,
    AppContext,
    FactsChooseArgs,
    ReportArgs,
    awith_app_context,
    decision_answer,
    facts_to_context,
    reward_answer,
    signals_or_none,
    with_app_context,
)
from nextbest_client.aio import AsyncNextBest
from nextbest_client.client import NextBest


def _sync(client: NextBest | AsyncNextBest) -> NextBest:
    if not isinstance(client, NextBest):
        raise TypeError("run needs a NextBest client; use arun with AsyncNextBest")
    return client


class ChooseNextActionTool(BaseTool):  # type: ignore[misc, unused-ignore]
    """Asks nextbest which action to take; answers JSON with the action and its event_id.

    The context is a list of ``{name, value}`` facts: CrewAI gives the model a strict JSON
    schema, which cannot describe a free-form object (a mapping is accepted as well).

    Args:
        client: The client the tool calls; ``run`` needs a
            :class:`nextbest_client.NextBest`, ``arun`` takes either.
        policy: The policy every decision asks; the model never picks it.
        app_context: The application's features (a mapping, or a callable returning one),
            merged over the model's context: they win.
        name: The tool's name, as the model sees it.
        description: What the model is told the tool does.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str = CHOOSE_NAME
    description: str = CHOOSE_DESCRIPTION
    args_schema: type[BaseModel] = FactsChooseArgs
    client: NextBest | AsyncNextBest = Field(exclude=True)
    policy: str
    # The application's features, merged over the model's context (they win).
    app_context: AppContext | None = Field(default=None, exclude=True)

    def _run(
        self,
        intent: str,
        context: list[dict[str, Any]] | None = None,
        candidates: Sequence[str] | None = None,
        exclude: Sequence[str] | None = None,
        **_: Any,
    ) -> str:
        features = with_app_context(facts_to_context(context), self.app_context)
        d = _sync(self.client).decide(self.policy, intent, features, candidates, exclude)
        return decision_answer(d)

    async def _arun(
        self,
        intent: str,
        context: list[dict[str, Any]] | None = None,
        candidates: Sequence[str] | None = None,
        exclude: Sequence[str] | None = None,
        **_: Any,
    ) -> str:
        if isinstance(self.client, AsyncNextBest):
            features = await awith_app_context(facts_to_context(context), self.app_context)
            d = await self.client.decide(self.policy, intent, features, candidates, exclude)
            return decision_answer(d)
        return await asyncio.to_thread(self._run, intent, context, candidates, exclude)


class ReportOutcomeTool(BaseTool):  # type: ignore[misc, unused-ignore]
    """Sends the reward of a decision made by :class:`ChooseNextActionTool`.

    Args:
        client: The client the tool calls; ``run`` needs a
            :class:`nextbest_client.NextBest`, ``arun`` takes either.
        name: The tool's name, as the model sees it.
        description: What the model is told the tool does.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str = REPORT_NAME
    description: str = REPORT_DESCRIPTION
    args_schema: type[BaseModel] = ReportArgs
    client: NextBest | AsyncNextBest = Field(exclude=True)

    def _run(
        self,
        event_id: str,
        value: float | None = None,
        signals: dict[str, float] | None = None,
        **_: Any,
    ) -> str:
        result = _sync(self.client).reward(event_id, value, signals=signals_or_none(signals))
        return reward_answer(event_id, result)

    async def _arun(
        self,
        event_id: str,
        value: float | None = None,
        signals: dict[str, float] | None = None,
        **_: Any,
    ) -> str:
        if isinstance(self.client, AsyncNextBest):
            result = await self.client.reward(event_id, value, signals=signals_or_none(signals))
            return reward_answer(event_id, result)
        return await asyncio.to_thread(self._run, event_id, value, signals)


def nextbest_tools(
    client: NextBest | AsyncNextBest, policy: str, *, context: AppContext | None = None
) -> list[ChooseNextActionTool | ReportOutcomeTool]:
    """CrewAI tools for one policy: ``[choose_next_action, report_outcome]``.

    For example ``Agent(tools=nextbest_tools(client, "support.next_step"))``.

    Args:
        client: The client the tools call (see :class:`ChooseNextActionTool`).
        policy: The policy every decision asks; the model never picks it.
        context: The application's features (a mapping, or a callable returning one),
            merged over the model's context: they win.
    """
    return [
        ChooseNextActionTool(client=client, policy=policy, app_context=context),
        ReportOutcomeTool(client=client),
    ]
