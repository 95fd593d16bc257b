"""What every framework's two tools share: argument schemas, descriptions, JSON answers.

The tools answer in JSON text because that is what every framework hands back to the model.
The policy is fixed when the tools are made: the model picks intent and context, never which
decision point it is talking to. What the application knows itself (``context=`` of every tool
factory) is merged over the model's context and wins on conflict, so a safety rule that reads
it cannot be talked around by the model.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeAlias

from pydantic import BaseModel, Field, field_validator

from nextbest_client.aio import AsyncDecision
from nextbest_client.client import Decision
from nextbest_client.types import RewardResult

ToolContextValue = str | float | bool | list[str]

AppContext: TypeAlias = (
    Mapping[str, Any] | Callable[[], Mapping[str, Any] | Awaitable[Mapping[str, Any]]]
)
"""Features the application knows itself (account age, amount, plan…): a mapping, or a
callable that returns one when a tool runs (a coroutine function for the async tools)."""


def with_app_context(model: Mapping[str, Any] | None, app: AppContext | None) -> dict[str, Any]:
    """The model's context with the application's merged over it (the application wins)."""
    if app is None:
        return dict(model or {})
    trusted = app() if callable(app) else app
    if inspect.isawaitable(trusted):
        close = getattr(trusted, "close", None)
        if close is not None:
            close()  # never left un-awaited
        raise TypeError("context: a coroutine function needs the async tools (AsyncNextBest)")
    return {**(model or {}), **trusted}


async def awith_app_context(
    model: Mapping[str, Any] | None, app: AppContext | None
) -> dict[str, Any]:
    """:func:`with_app_context`, awaiting the application's callable when it is async."""
    if app is None:
        return dict(model or {})
    trusted = app() if callable(app) else app
    if inspect.isawaitable(trusted):
        trusted = await trusted
    return {**(model or {}), **trusted}


CHOOSE_NAME = "choose_next_action"
REPORT_NAME = "report_outcome"
CHOOSE_DESCRIPTION = (
    "Choose the next action to take. Give the intent (what the user wants, e.g. "
    "'billing_dispute') and the context (facts about the situation, name -> text, number, "
    "true/false or list of texts). Returns the action to take and an event_id: after "
    "acting, call report_outcome with that event_id."
)
REPORT_DESCRIPTION = (
    "Report how an action chosen by choose_next_action went, so the next choice is better. "
    "Give its event_id and either a reward value (higher is better) or named signals."
)
INTENT_HELP = "What the user wants, in a few words or a label, e.g. billing_dispute."
CONTEXT_HELP = "Facts about the situation: name -> text, number, true/false or list of texts."
FACTS_HELP = "Facts about the situation, each a name and a value."
CANDIDATES_HELP = "Only choose among these action ids (omit: any allowed action)."
EXCLUDE_HELP = "Never choose these action ids."
EVENT_ID_HELP = "The event_id returned by choose_next_action."
VALUE_HELP = "The reward: higher is better (omit when giving signals)."
SIGNALS_HELP = "Named outcome signals, e.g. {'resolved': 1} (omit when giving a value)."


class ChooseArgs(BaseModel):
    intent: str = Field(description=INTENT_HELP)
    context: dict[str, ToolContextValue] = Field(default_factory=dict, description=CONTEXT_HELP)
    candidates: list[str] | None = Field(default=None, description=CANDIDATES_HELP)
    exclude: list[str] | None = Field(default=None, description=EXCLUDE_HELP)


class Fact(BaseModel):
    name: str = Field(description="What the fact is about, e.g. amount.")
    value: ToolContextValue = Field(description="A text, number, true/false or list of texts.")


# ChooseArgs with the context as a list of facts, for frameworks that send strict JSON
# schemas to the model (CrewAI): a strict schema cannot describe a free-form object.
# (A comment, not a docstring: pydantic would put a docstring into the model's schema.)
class FactsChooseArgs(BaseModel):
    intent: str = Field(description=INTENT_HELP)
    context: list[Fact] = Field(default_factory=list, description=FACTS_HELP)
    candidates: list[str] | None = Field(default=None, description=CANDIDATES_HELP)
    exclude: list[str] | None = Field(default=None, description=EXCLUDE_HELP)

    @field_validator("context", mode="before")
    @classmethod
    def _accept_a_mapping(cls, value: Any) -> Any:
        """Models often send {name: value} anyway; take it."""
        if isinstance(value, Mapping):
            return [{"name": k, "value": v} for k, v in value.items()]
        return value


def facts_to_context(facts: Sequence[Mapping[str, Any] | Fact] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for fact in facts or ():
        if isinstance(fact, Fact):
            out[fact.name] = fact.value
        else:
            out[str(fact["name"])] = fact["value"]
    return out


class ReportArgs(BaseModel):
    event_id: str = Field(description=EVENT_ID_HELP)
    value: float | None = Field(default=None, description=VALUE_HELP)
    signals: dict[str, float] | None = Field(default=None, description=SIGNALS_HELP)


def decision_answer(d: Decision | AsyncDecision) -> str:
    answer: dict[str, Any] = {"action": d.action, "event_id": d.event_id}
    if d.masked:
        answer["not_allowed"] = d.masked_reasons
    return json.dumps(answer)


def reward_answer(event_id: str, r: RewardResult) -> str:
    return json.dumps({"event_id": event_id, "status": r.status, "reward": r.value})


def signals_or_none(signals: Mapping[str, float] | None) -> dict[str, float] | None:
    return dict(signals) if signals else None
