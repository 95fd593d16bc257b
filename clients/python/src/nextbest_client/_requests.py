"""Request building shared by the sync and asyncio clients: checks that need no server."""

from __future__ import annotations

import math
import numbers
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from nextbest_client._values import Context, to_features
from nextbest_client.errors import InvalidArgument
from nextbest_client.types import DecisionRequest
from nextbest_proto.v1 import decision_pb2 as pb


def new_id() -> str:
    """A fresh event or reward id, made before the first attempt so retries reuse it."""
    return uuid.uuid4().hex


def _text(field: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidArgument(f"{field}: expected str, got {type(value).__name__}", field=field)
    return value


def _ids(field: str, values: Sequence[str] | None) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str):  # a bare string would be split into letters
        raise InvalidArgument(f"{field}: expected a list of action ids, got str", field=field)
    return [_text(f"{field}[{i}]", v) for i, v in enumerate(values)]


def _actions(actions: Mapping[str, Context] | None) -> list[pb.Action]:
    if actions is None:
        return []
    if not isinstance(actions, Mapping):
        raise InvalidArgument(
            "actions: expected a mapping of action id to features dict", field="actions"
        )
    return [
        pb.Action(id=_text("actions", aid), features=to_features(f, f"actions[{aid!r}]"))
        for aid, f in actions.items()
    ]


def decide_request(
    *,
    policy: str,
    intent: str,
    context: Context | None = None,
    candidates: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    baseline: str | None = None,
    defer: bool = False,
    actions: Mapping[str, Context] | None = None,
    event_id: str | None = None,
) -> pb.DecideRequest:
    return pb.DecideRequest(
        policy=_text("policy", policy),
        intent=_text("intent", intent),
        context=to_features(context, "context"),
        candidate_action_ids=_ids("candidates", candidates),
        actions=_actions(actions),
        excluded_action_ids=_ids("exclude", exclude),
        event_id=_text("event_id", event_id) if event_id else new_id(),
        baseline_action_id=_text("baseline", baseline) if baseline else "",
        defer_activation=bool(defer),
    )


def batch_request(items: Sequence[DecisionRequest | Mapping[str, Any]]) -> pb.DecideBatchRequest:
    requests = []
    for i, item in enumerate(items):
        req = item if isinstance(item, DecisionRequest) else DecisionRequest(**item)
        try:
            requests.append(
                decide_request(
                    policy=req.policy,
                    intent=req.intent,
                    context=req.context,
                    candidates=req.candidates,
                    exclude=req.exclude,
                    baseline=req.baseline,
                    defer=req.defer,
                    actions=req.actions,
                    event_id=req.event_id,
                )
            )
        except InvalidArgument as exc:  # name the item, as the server does
            exc.field = f"requests[{i}].{exc.field}" if exc.field else f"requests[{i}]"
            exc.message = f"requests[{i}].{exc.message}"
            exc.args = (exc.message,)
            raise
    return pb.DecideBatchRequest(requests=requests)


def _number(field: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidArgument(
            f"{field}: expected a number, got {type(value).__name__}", field=field
        )
    number = float(value)
    if not math.isfinite(number):
        raise InvalidArgument(f"{field}: must be a finite number", field=field)
    return number


def reward_request(
    event_id: str,
    value: float | None,
    signals: Mapping[str, float] | None,
    reward_id: str | None,
) -> pb.RewardRequest:
    """Exactly one of value and signals; a reward id so that a retry is never counted twice."""
    if value is not None and signals:
        raise InvalidArgument("signals: give either a value or signals, not both", field="signals")
    if value is None and not signals:
        raise InvalidArgument("value: give a value or at least one signal", field="value")
    req = pb.RewardRequest(
        event_id=_text("event_id", event_id),
        reward_id=_text("reward_id", reward_id) if reward_id else new_id(),
    )
    if value is not None:
        req.value = _number("value", value)
    for name, v in (signals or {}).items():
        req.signals[_text("signals", name)] = _number(f"signals[{name!r}]", v)
    return req
