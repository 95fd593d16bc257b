"""AutoGen (autogen-core / autogen-agentchat 0.7) ``FunctionTool``s for an ``AssistantAgent``.

autogen-core 0.7 pins ``protobuf~=5.29`` while this client's stubs need protobuf 7, so pip
cannot resolve both together: install autogen with ``--no-deps`` (see the README). The tools
only use autogen's tool layer, which works with either protobuf.

``context=`` (a mapping, or a callable returning one) holds what the application knows
itself; it is merged over the model's context and wins, so the model cannot talk its way past
a safety rule that reads it.
"""

from __future__ import annotations

from typing import Annotated

from autogen_core.tools import FunctionTool  # type: ignore[import-not-found, unused-ignore]

from nextbest_client.adapters._common import (
    CANDIDATES_HELP,
    CHOOSE_DESCRIPTION,
    CHOOSE_NAME,
    CONTEXT_HELP,
    EVENT_ID_HELP,
    EXCLUDE_HELP,
    INTENT_HELP,
    REPORT_DESCRIPTION,
    REPORT_NAME,
    SIGNALS_HELP,
    VALUE_HELP,
    AppContext,
    ToolContextValue,
    awith_app_context,
    decision_answer,
    reward_answer,
    signals_or_none,
    with_app_context,
)
from nextbest_client.aio import AsyncNextBest
from nextbest_client.client import NextBest

Intent = Annotated[str, INTENT_HELP]
ToolContext = Annotated[dict[str, ToolContextValue] | None, CONTEXT_HELP]
Candidates = Annotated[list[str] | None, CANDIDATES_HELP]
Exclude = Annotated[list[str] | None, EXCLUDE_HELP]
EventId = Annotated[str, EVENT_ID_HELP]
Value = Annotated[float | None, VALUE_HELP]
Signals = Annotated[dict[str, float] | None, SIGNALS_HELP]


def nextbest_function_tools(
    client: NextBest | AsyncNextBest,
    policy: str,
    *,
    context: AppContext | None = None,
    choose_name: str = CHOOSE_NAME,
    report_name: str = REPORT_NAME,
) -> list[FunctionTool]:
    """AutoGen tools for one policy: ``[choose_next_action, report_outcome]``.

    ``FunctionTool`` objects over coroutines with an
    :class:`nextbest_client.AsyncNextBest`, over plain functions (run by AutoGen in a thread)
    with a :class:`nextbest_client.NextBest`.

    Args:
        client: The client the tools call; it fixes whether they are sync or async.
        policy: The policy every decision asks; the model never picks it.
        context: The application's features (a mapping, or a callable returning one, a
            coroutine function with an async client), merged over the model's context: they
            win.
        choose_name: The name of the tool that decides.
        report_name: The name of the tool that reports an outcome.
    """
    app_context = context
    if isinstance(client, AsyncNextBest):
        aclient = client

        async def choose(
            intent: Intent,
            context: ToolContext = None,
            candidates: Candidates = None,
            exclude: Exclude = None,
        ) -> str:
            features = await awith_app_context(context, app_context)
            return decision_answer(
                await aclient.decide(policy, intent, features, candidates, exclude)
            )

        async def report(event_id: EventId, value: Value = None, signals: Signals = None) -> str:
            result = await aclient.reward(event_id, value, signals=signals_or_none(signals))
            return reward_answer(event_id, result)

        functions: tuple[object, object] = (choose, report)
    else:
        sclient = client

        def choose_sync(
            intent: Intent,
            context: ToolContext = None,
            candidates: Candidates = None,
            exclude: Exclude = None,
        ) -> str:
            features = with_app_context(context, app_context)
            return decision_answer(sclient.decide(policy, intent, features, candidates, exclude))

        def report_sync(event_id: EventId, value: Value = None, signals: Signals = None) -> str:
            result = sclient.reward(event_id, value, signals=signals_or_none(signals))
            return reward_answer(event_id, result)

        functions = (choose_sync, report_sync)
    return [
        FunctionTool(functions[0], description=CHOOSE_DESCRIPTION, name=choose_name),
        FunctionTool(functions[1], description=REPORT_DESCRIPTION, name=report_name),
    ]
