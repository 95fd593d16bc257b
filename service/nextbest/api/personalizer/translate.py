"""Personalizer's JSON ↔ the engine's records. No decisions are made here: the engine validates,
masks, explores and joins; this module only renames and reshapes."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from nextbest.policy.config import Aggregation, Mode
from nextbest.policy.engine import PolicyRuntime
from nextbest.policy.errors import DecisionError, FailedPrecondition, InvalidArgument
from nextbest.policy.events import Event
from nextbest.policy.features import FeatureValue
from nextbest.policy.requests import DecideInput, InlineAction

from .schemas import (
    LearningMode,
    PolicyContract,
    RankedAction,
    RankRequest,
    RankResponse,
    ServiceConfigurationView,
)

# Personalizer has no intent: every rank over this API is decided for this one (safety rules
# and per-intent ε can name it).
INTENT = "personalizer"
MAX_DEPTH = 16  # nesting of a feature object

MODES: dict[Mode, LearningMode] = {
    "online": "Online",
    "apprentice": "Apprentice",
    "logging_only": "LoggingOnly",
    "frozen": "Frozen",
}
MODE_OF: dict[str, Mode] = {v: k for k, v in MODES.items()}
AGGREGATIONS: dict[Aggregation, str] = {
    "earliest": "earliest",
    "mean": "average",
    "sum": "sum",
    "last": "last",
}
AGGREGATION_OF: dict[str, Aggregation] = {v: k for k, v in AGGREGATIONS.items()}


# -- features -------------------------------------------------------------------------------


def flatten(objects: Sequence[Mapping[str, Any]], where: str) -> dict[str, FeatureValue]:
    """Personalizer's list of feature objects → one flat map: nested objects become dotted
    names. InvalidArgument names the path of a value that is no feature."""
    out: dict[str, FeatureValue] = {}
    for i, obj in enumerate(objects):
        _flatten_into(out, obj, "", f"{where}[{i}]", 0)
    return out


def _flatten_into(
    out: dict[str, FeatureValue], obj: Mapping[str, Any], prefix: str, path: str, depth: int
) -> None:
    if depth >= MAX_DEPTH:
        raise InvalidArgument(f"objects nested deeper than {MAX_DEPTH} levels", path)
    for key, value in obj.items():
        name = f"{prefix}{key}"
        at = f"{path}.{key}"
        if isinstance(value, dict):
            _flatten_into(out, value, f"{name}.", at, depth + 1)
            continue
        feature: FeatureValue
        if isinstance(value, bool | str):
            feature = value
        elif isinstance(value, int | float):
            feature = float(value)
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            feature = list(value)
        else:
            raise InvalidArgument(
                "a feature is a number, a string, a boolean, a list of strings or an object "
                f"of these, not {_kind(value)}",
                at,
            )
        if name in out:
            raise InvalidArgument(f"the feature {name!r} is given twice", at)
        out[name] = feature


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return "a list of other things than strings"
    return type(value).__name__


# -- rank -----------------------------------------------------------------------------------


class RankPlan:
    """A Rank request as the engine's DecideInput, and what is needed to answer it and to
    name the request's own fields in errors.

    The answer holds only the request's actions: an action of the policy's catalog is a
    candidate when the request lists it (with its catalog features), and the others are
    masked; the policy's fallback_action is used only when the request lists it.
    """

    def __init__(self, policy: str, rt: PolicyRuntime, req: RankRequest) -> None:
        self.requested = [a.id for a in req.actions]
        context = flatten(req.contextFeatures or [], "contextFeatures")
        self.inline_index: list[int] = []  # DecideInput.actions[k] is request actions[j]
        inline: list[InlineAction] = []
        candidates: list[str] = []
        for j, action in enumerate(req.actions):
            if action.id in rt.catalog:
                candidates.append(action.id)
            else:
                self.inline_index.append(j)
                inline.append(
                    InlineAction(action.id, flatten(action.features, f"actions[{j}].features"))
                )
        excluded = list(req.excludedActions or [])
        listed = set(self.requested)
        fallback = rt.config.fallback_action
        # The fallback is left out when the request does not list it (an action the caller
        # did not list is never the answer).
        self.fallback_left_out = fallback if fallback is not None and fallback not in listed else ""
        if candidates:
            if self.fallback_left_out:
                excluded.append(self.fallback_left_out)
        else:
            excluded.extend(a for a in rt.catalog if a not in listed)
        shut = set(req.excludedActions or [])
        baseline = next((a for a in self.requested if a not in shut), "")
        self.input = DecideInput(
            policy=policy,
            intent=INTENT,
            context=context,
            candidate_action_ids=candidates,
            actions=inline,
            excluded_action_ids=excluded,
            event_id=req.eventId or "",
            baseline_action_id=baseline,
            defer_activation=bool(req.deferActivation),
        )

    def field(self, name: str) -> str:
        """An engine field name (``actions[2].features['x']``) as the request's own."""
        match = re.match(r"actions\[(\d+)\](.*)", name, re.S)
        if match is not None:
            k = int(match.group(1))
            j = self.inline_index[k] if k < len(self.inline_index) else k
            return f"actions[{j}]{match.group(2)}"
        match = re.match(r"excluded_action_ids\[(\d+)\](.*)", name, re.S)
        if match is not None:
            return f"excludedActions[{match.group(1)}]{match.group(2)}"
        return field_name(name)

    def refused(self, exc: DecisionError) -> DecisionError:
        """The engine's refusal, in the request's terms."""
        left_out = self.fallback_left_out
        said = f"the fallback_action {left_out!r} is excluded"
        if isinstance(exc, FailedPrecondition) and left_out and said in exc.detail:
            detail = exc.detail.replace(
                said, f"the policy's fallback_action {left_out!r} is not among the actions"
            )
            return FailedPrecondition(detail, self.field(exc.field))
        return type(exc)(exc.detail, self.field(exc.field))

    def response(self, event: Event) -> RankResponse:
        order = sorted(range(len(event.eligible)), key=lambda i: (-event.pmf[i], -event.scores[i]))
        ranking = [
            RankedAction(id=event.eligible[i].id, probability=_probability(event.pmf[i]))
            for i in order
        ]
        ranked = {r.id for r in ranking}
        ranking += [RankedAction(id=a, probability=0.0) for a in self.requested if a not in ranked]
        return RankResponse(ranking=ranking, eventId=event.event_id, rewardActionId=event.action_id)


def _probability(p: float) -> float:
    return min(max(p, 0.0), 1.0)


_FIELDS = {
    "context": "contextFeatures",
    "event_id": "eventId",
    "excluded_action_ids": "excludedActions",
    "candidate_action_ids": "actions",
    "baseline_action_id": "actions",
    "defer_activation": "deferActivation",
    "epsilon": "explorationPercentage",
    "mode": "learningMode",
}


def field_name(name: str) -> str:
    """An engine or control-plane field name as Personalizer's."""
    for ours, theirs in _FIELDS.items():
        if name == ours or name.startswith((f"{ours}[", f"{ours} ", f"{ours}.")):
            return theirs + name[len(ours) :]
    return name


def message(exc: DecisionError, field: str | None = None) -> str:
    """The error's message with the field at fault named as the request names it."""
    name = field if field is not None else field_name(exc.field)
    return f"{name}: {exc.detail}" if name else exc.detail


# -- configuration --------------------------------------------------------------------------

_DURATION = re.compile(
    r"^P(?:(?P<d>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


def iso_duration(seconds: float) -> str:
    """Seconds → ISO 8601 (600 → PT10M, 0.5 → PT0.5S, 90000 → PT25H)."""
    if seconds <= 0:
        return "PT0S"
    whole = int(seconds)
    fraction = round(seconds - whole, 6)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = "PT"
    if hours:
        text += f"{hours}H"
    if minutes:
        text += f"{minutes}M"
    if secs or fraction:
        number = secs + fraction
        text += f"{number:g}S" if fraction else f"{secs}S"
    return text if text != "PT" else "PT0S"


def parse_duration(text: str, where: str) -> float:
    """ISO 8601 duration (days, hours, minutes, seconds) → seconds; also .NET's
    ``d.hh:mm:ss`` / ``hh:mm:ss`` as older SDKs sent it."""
    match = _DURATION.match(text.strip())
    if match is not None and text.strip() not in ("P", "PT") and not text.strip().endswith("T"):
        parts = {k: float(v) for k, v in match.groupdict().items() if v is not None}
        return (
            parts.get("d", 0.0) * 86400
            + parts.get("h", 0.0) * 3600
            + parts.get("m", 0.0) * 60
            + parts.get("s", 0.0)
        )
    clock = re.match(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2}(?:\.\d+)?)$", text.strip())
    if clock is not None:
        days, hours, minutes, secs = clock.groups()
        return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(secs)
    raise InvalidArgument(f"{text[:64]!r} is not an ISO 8601 duration (e.g. PT10M)", where)


def service_configuration(rt: PolicyRuntime, retention_days: int) -> ServiceConfigurationView:
    config = rt.config
    edits = [o.set_at for o in rt.overrides.values()]
    edited = (
        datetime.fromtimestamp(max(edits), UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if edits else None
    )
    return ServiceConfigurationView(
        rewardWaitTime=iso_duration(config.reward.wait),
        defaultReward=config.reward.default,
        rewardAggregation=AGGREGATIONS[config.reward.aggregation],
        explorationPercentage=config.exploration.epsilon_for(INTENT),
        learningMode=MODES[config.mode],
        modelExportFrequency="PT0S",
        logRetentionDays=retention_days,
        modelRetrainDays=0,
        isAutoOptimizationEnabled=False,
        lastConfigurationEditDate=edited,
    )


def policy_contract(rt: PolicyRuntime) -> PolicyContract:
    return PolicyContract(name=rt.name, arguments=rt.config.vw_args)


def read_only(
    rt: PolicyRuntime,
    wait: str | None,
    default: float | None,
    aggregation: str | None,
) -> None:
    """Refuse a change of the reward settings: they are the policy file's, not live
    overrides (the same values are accepted, so a GET's answer can be PUT back)."""
    spec = rt.config.reward
    how = "edit the policy file and reload it (SIGHUP or `nextbest admin reload`)"
    if wait is not None and not math.isclose(
        parse_duration(wait, "rewardWaitTime"), spec.wait, rel_tol=1e-9, abs_tol=1e-3
    ):
        raise InvalidArgument(
            f"cannot be changed live: it is the policy's reward.wait "
            f"({iso_duration(spec.wait)}); {how}",
            "rewardWaitTime",
        )
    if default is not None and not math.isclose(default, spec.default, abs_tol=1e-12):
        raise InvalidArgument(
            f"cannot be changed live: it is the policy's reward.default ({spec.default}); {how}",
            "defaultReward",
        )
    if aggregation is not None:
        ours = AGGREGATION_OF.get(aggregation.lower())
        if ours is None:
            raise InvalidArgument(
                f"{aggregation[:64]!r} is not an aggregation: use {', '.join(AGGREGATION_OF)}",
                "rewardAggregation",
            )
        if ours != spec.aggregation:
            raise InvalidArgument(
                "cannot be changed live: it is the policy's reward.aggregation "
                f"({AGGREGATIONS[spec.aggregation]}); {how}",
                "rewardAggregation",
            )
