"""LangChain tools: ``choose_next_action`` and ``report_outcome`` (sync and async).

Install with ``pip install nextbest-client[langchain]``. Errors the model can fix (a bad
context value, an unknown event id, everything masked) come back to it as the tool's answer
(``ToolException``); transport errors raise, for the application to handle.

``context=`` (a mapping, or a callable returning one) holds what the application knows
itself; it is merged over the model's context and wins, so the model cannot talk its way past
a safety rule that reads it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from langchain_core.tools import StructuredTool, ToolException

from nextbest_client.adapters._common import (
    CHOOSE_DESCRIPTION,
    CHOOSE_NAME,
    REPORT_DESCRIPTION,
    REPORT_NAME,
    AppContext,
    ChooseArgs,
    ReportArgs,
    ToolContextValue,
    awith_app_context,
    decision_answer,
    reward_answer,
    signals_or_none,
    with_app_context,
)
from nextbest_client.aio import AsyncNextBest
from nextbest_client.client import NextBest
from nextbest_client.errors import FailedPrecondition, InvalidArgument, NotFound

# What the model caused and can correct; anything else is the application's to handle.
MODEL_ERRORS = (InvalidArgument, NotFound, FailedPrecondition)


def _invalid_arguments(error: Exception) -> str:
    """The schema error itself, so the model sees which argument to fix."""
    return f"invalid arguments: {error}"


def nextbest_tools(
    client: NextBest | AsyncNextBest,
    policy: str,
    *,
    context: AppContext | None = None,
    choose_name: str = CHOOSE_NAME,
    report_name: str = REPORT_NAME,
    choose_description: str = CHOOSE_DESCRIPTION,
    report_description: str = REPORT_DESCRIPTION,
) -> list[StructuredTool]:
    """LangChain tools for one policy: ``[choose_next_action, report_outcome]``.

    With a :class:`nextbest_client.NextBest` the tools run synchronously (``ainvoke`` runs
    them in a thread); with an :class:`nextbest_client.AsyncNextBest` they are coroutines, for
    ``ainvoke`` and async agents.
    Errors the model can fix come back to it as the tool's answer; others raise.

    Args:
        client: The client the tools call; it fixes whether they are sync or async.
        policy: The policy every decision asks; the model never picks it.
        context: The application's features (a mapping, or a callable returning one, a
            coroutine function for the async tools), merged over the model's: they win.
        choose_name: The name of the tool that decides.
        report_name: The name of the tool that reports an outcome.
        choose_description: What the model is told the deciding tool does.
        report_description: What the model is told the reporting tool does.

    Returns:
        The two ``StructuredTool`` objects, deciding tool first.
    """
    if isinstance(client, AsyncNextBest):
        choose, report = None, None
        achoose, areport = _async_functions(client, policy, context)
    else:
        choose, report = _sync_functions(client, policy, context)
        achoose, areport = None, None
    return [
        StructuredTool.from_function(
            func=choose,
            coroutine=achoose,
            name=choose_name,
            description=choose_description,
            args_schema=ChooseArgs,
            handle_tool_error=True,
            handle_validation_error=_invalid_arguments,
        ),
        StructuredTool.from_function(
            func=report,
            coroutine=areport,
            name=report_name,
            description=report_description,
            args_schema=ReportArgs,
            handle_tool_error=True,
            handle_validation_error=_invalid_arguments,
        ),
    ]


def _sync_functions(
    client: NextBest, policy: str, app_context: AppContext | None
) -> tuple[Callable[..., str], Callable[..., str]]:
    def choose(
        intent: str,
        context: dict[str, ToolContextValue] | None = None,
        candidates: Sequence[str] | None = None,
        exclude: Sequence[str] | None = None,
    ) -> str:
        features = with_app_context(context, app_context)
        try:
            return decision_answer(client.decide(policy, intent, features, candidates, exclude))
        except MODEL_ERRORS as exc:
            raise ToolException(str(exc)) from exc

    def report(
        event_id: str, value: float | None = None, signals: dict[str, float] | None = None
    ) -> str:
        try:
            result = client.reward(event_id, value, signals=signals_or_none(signals))
        except MODEL_ERRORS as exc:
            raise ToolException(str(exc)) from exc
        return reward_answer(event_id, result)

    return choose, report


def _async_functions(
    client: AsyncNextBest, policy: str, app_context: AppContext | None
) -> tuple[Callable[..., Awaitable[str]], Callable[..., Awaitable[str]]]:
    async def choose(
        intent: str,
        context: dict[str, ToolContextValue] | None = None,
        candidates: Sequence[str] | None = None,
        exclude: Sequence[str] | None = None,
    ) -> str:
        features = await awith_app_context(context, app_context)
        try:
            d = await client.decide(policy, intent, features, candidates, exclude)
        except MODEL_ERRORS as exc:
            raise ToolException(str(exc)) from exc
        return decision_answer(d)

    async def report(
        event_id: str, value: float | None = None, signals: dict[str, float] | None = None
    ) -> str:
        try:
            result = await client.reward(event_id, value, signals=signals_or_none(signals))
        except MODEL_ERRORS as exc:
            raise ToolException(str(exc)) from exc
        return reward_answer(event_id, result)

    return choose, report
