"""What callers send, as plain data, and the checks every transport gets for free.

Limits keep one request from costing the service more than a bounded amount of memory and
time; each violation names the field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from nextbest.policy.errors import InvalidArgument
from nextbest.policy.features import MAX_MAGNITUDE, FeatureValue


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-request bounds, so that no request costs more than a bounded amount of memory
    and time. The per-field ones alone would still let one request carry megabytes and
    millions of crossed features, so the totals are bounded as well. A request past a bound
    is refused with InvalidArgument naming the field (the reward count: ResourceExhausted).

    Attributes:
        max_name_length: Characters of a policy name, an intent, a feature name or a signal
            name; default 256.
        max_text_length: Characters of a text feature value, or of one item of a list of
            texts; default 1024.
        max_features: Features of a context, or of one inline action; default 256.
        max_texts: Items of one list-of-texts feature value; default 64.
        max_actions: Inline actions of a request, and ids of its candidates and of its
            exclusions (each list); default 256.
        max_id_length: Characters of an action id (candidate, excluded, inline, baseline);
            default 256.
        max_event_id_length: Characters of an event id or a reward id; default 128.
        max_signals: Signals of one reward; default 64.
        max_batch: Requests of one DecideBatch; default 1000.
        max_request_chars: Characters of every name, text and id of one Decide in all (what
            an event costs to keep); default 65536.
        max_example_features: Features of the VW example one Decide builds (the intent, the
            context and every eligible action); default 4096.
        max_interaction_features: Features the policy's interactions (``-q``, ``--cubic``,
            ``--interactions``) make of the example's, which scoring time grows with
            (≈ 1–2 ns each: 2M ≈ a few ms); default 2,000,000.
        max_rewards_per_event: Rewards kept per event; one more is refused (a repeated
            reward id still answers duplicate); default 100.
    """

    max_name_length: int = 256
    max_text_length: int = 1024
    max_features: int = 256  # per context or per action
    max_texts: int = 64
    max_actions: int = 256
    max_id_length: int = 256
    max_event_id_length: int = 128
    max_signals: int = 64
    max_batch: int = 1000
    # Totals per Decide: characters of every name, text and id (what an event costs to
    # keep); VW features of the whole example (shared + every action); and the features
    # the policy's interactions (-q, --cubic, --interactions) make of them, which is what
    # scoring time grows with (≈ 1–2 ns each: 2M ≈ a few ms).
    max_request_chars: int = 64 * 1024
    max_example_features: int = 4096
    max_interaction_features: int = 2_000_000
    max_rewards_per_event: int = 100


@dataclass(slots=True)
class InlineAction:
    id: str
    features: dict[str, FeatureValue] = field(default_factory=dict)


@dataclass(slots=True)
class DecideInput:
    policy: str
    intent: str
    context: dict[str, FeatureValue] = field(default_factory=dict)
    candidate_action_ids: list[str] = field(default_factory=list)
    actions: list[InlineAction] = field(default_factory=list)
    excluded_action_ids: list[str] = field(default_factory=list)
    event_id: str = ""
    baseline_action_id: str = ""
    defer_activation: bool = False


@dataclass(slots=True)
class RewardInput:
    event_id: str
    value: float | None = None
    signals: dict[str, float] = field(default_factory=dict)
    reward_id: str = ""


def require_text(value: str, where: str, limit: int) -> None:
    if not value:
        raise InvalidArgument("must not be empty", where)
    if len(value) > limit:
        raise InvalidArgument(f"is {len(value)} characters, at most {limit} allowed", where)


def require_finite(value: float, where: str) -> None:
    if not math.isfinite(value):
        raise InvalidArgument(f"must be a finite number, got {value}", where)


def require_feature_number(value: float, where: str) -> None:
    require_finite(value, where)
    if abs(value) > MAX_MAGNITUDE:
        raise InvalidArgument(
            f"{value} is too large to learn from (|x| ≤ {MAX_MAGNITUDE:g})", where
        )


def check_features(features: Mapping[str, FeatureValue], where: str, limits: Limits) -> int:
    """Check one feature map; returns the characters it holds (names and texts).

    Runs for every feature of every request: the common cases (a short name, a short
    text, a finite number) take one type check and one comparison each, and the
    field is only spelled out for an error."""
    if len(features) > limits.max_features:
        raise InvalidArgument(
            f"has {len(features)} features, at most {limits.max_features} allowed", where
        )
    chars = 0
    max_name = limits.max_name_length
    max_text = limits.max_text_length
    for name, value in features.items():
        if not name or len(name) > max_name:
            require_text(name, f"{where} key", max_name)
        chars += len(name)
        if isinstance(value, str):
            chars += len(value)
            if len(value) > max_text:
                _too_long(value, f"{where}[{name!r}]", max_text)
        elif isinstance(value, bool):
            continue
        elif isinstance(value, float):
            if not -MAX_MAGNITUDE <= value <= MAX_MAGNITUDE:  # also NaN
                require_feature_number(value, f"{where}[{name!r}]")
        elif isinstance(value, int):  # from Python callers; the wire sends floats
            require_feature_number(float(value), f"{where}[{name!r}]")
        else:
            chars += _check_texts(value, f"{where}[{name!r}]", limits)
    return chars


def _too_long(text: str, where: str, limit: int) -> None:
    raise InvalidArgument(f"is {len(text)} characters, at most {limit} allowed", where)


def _check_texts(value: list[str], at: str, limits: Limits) -> int:
    """A list of texts; returns the characters it holds."""
    if len(value) > limits.max_texts:
        raise InvalidArgument(f"has {len(value)} texts, at most {limits.max_texts} allowed", at)
    chars = 0
    for i, item in enumerate(value):
        chars += len(item)
        if len(item) > limits.max_text_length:
            _too_long(item, f"{at}[{i}]", limits.max_text_length)
    return chars


def check_ids(ids: list[str], where: str, limits: Limits) -> int:
    """Check a list of action ids; returns the characters they hold."""
    if len(ids) > limits.max_actions:
        raise InvalidArgument(f"has {len(ids)} ids, at most {limits.max_actions} allowed", where)
    chars = 0
    for i, action_id in enumerate(ids):
        require_text(action_id, f"{where}[{i}]", limits.max_id_length)
        chars += len(action_id)
    return chars


def check_event_id(event_id: str, where: str, limits: Limits) -> None:
    """Event ids are echoed in answers, logs and errors: short, printable, no whitespace."""
    if not event_id:
        raise InvalidArgument("must not be empty", where)
    if len(event_id) > limits.max_event_id_length:
        raise InvalidArgument(
            f"is {len(event_id)} characters, at most {limits.max_event_id_length} allowed", where
        )
    if any(not c.isprintable() or c.isspace() for c in event_id):
        raise InvalidArgument("must not contain whitespace or control characters", where)


def check_decide(req: DecideInput, limits: Limits) -> None:
    """Sizes, names and numbers of a Decide request; ids are checked against the policy later."""
    require_text(req.policy, "policy", limits.max_name_length)
    require_text(req.intent, "intent", limits.max_name_length)
    chars = len(req.intent) + check_features(req.context, "context", limits)
    chars += check_ids(req.candidate_action_ids, "candidate_action_ids", limits)
    chars += check_ids(req.excluded_action_ids, "excluded_action_ids", limits)
    if len(req.actions) > limits.max_actions:
        raise InvalidArgument(
            f"has {len(req.actions)} actions, at most {limits.max_actions} allowed", "actions"
        )
    seen: set[str] = set()
    for i, action in enumerate(req.actions):
        require_text(action.id, f"actions[{i}].id", limits.max_id_length)
        if action.id in seen:
            raise InvalidArgument(f"{action.id!r} is given twice", f"actions[{i}].id")
        seen.add(action.id)
        chars += len(action.id) + check_features(action.features, f"actions[{i}].features", limits)
        if chars > limits.max_request_chars:
            break
    if chars > limits.max_request_chars:
        raise InvalidArgument(
            f"the request holds more than {limits.max_request_chars} characters of names, "
            "texts and ids in all",
            "context" if not req.actions else "actions",
        )
    if req.event_id:
        check_event_id(req.event_id, "event_id", limits)
    if req.baseline_action_id:
        require_text(req.baseline_action_id, "baseline_action_id", limits.max_id_length)


def check_reward(req: RewardInput, limits: Limits) -> None:
    check_event_id(req.event_id, "event_id", limits)
    if len(req.reward_id) > limits.max_event_id_length:
        raise InvalidArgument(
            f"is {len(req.reward_id)} characters, at most {limits.max_event_id_length} allowed",
            "reward_id",
        )
    if req.value is None and not req.signals:
        raise InvalidArgument("give either value or signals", "value")
    if req.value is not None and req.signals:
        raise InvalidArgument("give either value or signals, not both", "signals")
    if req.value is not None:
        require_finite(req.value, "value")
    if len(req.signals) > limits.max_signals:
        raise InvalidArgument(
            f"has {len(req.signals)} signals, at most {limits.max_signals} allowed", "signals"
        )
    for name, value in req.signals.items():
        require_text(name, "signals key", limits.max_name_length)
        require_finite(value, f"signals[{name!r}]")


def check_batch(size: int, limits: Limits) -> None:
    if size > limits.max_batch:
        raise InvalidArgument(
            f"has {size} requests, at most {limits.max_batch} allowed", "requests"
        )
