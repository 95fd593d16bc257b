"""Live overrides: what ops set at 3 am on top of the policy file, without editing it.

The file stays the base; an override replaces one setting (ε, one intent's ε, the mode)
and remembers who set it, when and why. Applying overrides to a file's policy gives the
configuration in force, validated like the file itself, so an override can never push ε
above the file's ``max_epsilon``: a request to do so is refused, and when a reloaded file
lowers ``max_epsilon`` under an override, the override is capped to it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, get_args

from nextbest.policy.config import Mode, PolicyConfig
from nextbest.policy.errors import InvalidArgument

EPSILON = "exploration.epsilon"
PER_INTENT = "exploration.per_intent."  # + the intent
MODE = "mode"
MODES: tuple[str, ...] = get_args(Mode)
MAX_INTENT_LENGTH = 256
# Per policy. Each per-intent ε is a metric series (nextbest_exploration_epsilon{intent}) and
# an entry of the kept overrides: bounded, whoever asks.
MAX_PER_INTENT = 256


@dataclass(frozen=True, slots=True)
class Override:
    """One setting's live value, with its provenance."""

    setting: str
    value: float | str
    set_by: str
    set_at: float
    reason: str


Overrides = Mapping[str, Override]  # setting → override, for one policy


def override_from(setting: str, fields: Mapping[str, Any]) -> Override:
    """An override read back from where it was kept; ValueError says what is wrong with it
    (an unknown setting, a value of the wrong kind, provenance of the wrong type)."""
    if set(fields) != {"value", "set_by", "set_at", "reason"}:
        raise ValueError(f"{setting}: keys must be value, set_by, set_at, reason")
    raw, set_by, set_at, reason = (fields[k] for k in ("value", "set_by", "set_at", "reason"))
    value: float | str
    if setting == MODE and raw in MODES:
        value = raw
    elif setting == EPSILON or setting.startswith(PER_INTENT):
        if not _number(raw) or not 0.0 <= raw <= 1.0:
            raise ValueError(f"{setting}: {raw!r} is not an ε from 0 to 1")
        intent = setting.removeprefix(PER_INTENT)
        if setting != EPSILON and not 0 < len(intent) <= MAX_INTENT_LENGTH:
            raise ValueError(f"{setting}: not an intent")
        value = float(raw)
    else:
        raise ValueError(f"{setting!r} = {raw!r} is not an override")
    if not isinstance(set_by, str) or not isinstance(reason, str) or not _number(set_at):
        raise ValueError(f"{setting}: set_by and reason must be texts, set_at a number")
    return Override(setting, value, set_by, float(set_at), reason)


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def file_value(config: PolicyConfig, setting: str) -> float | str | None:
    """What the file says for a setting (None: nothing, e.g. an intent without its own ε)."""
    if setting == EPSILON:
        return config.exploration.epsilon
    if setting == MODE:
        return config.mode
    if setting.startswith(PER_INTENT):
        return config.exploration.per_intent.get(setting.removeprefix(PER_INTENT))
    return None


def check_epsilon(config: PolicyConfig, value: float, field: str) -> None:
    """Refuse an ε the file's bounds do not allow; the message names the field."""
    cap = config.exploration.max_epsilon
    if not math.isfinite(value) or value < 0.0:
        raise InvalidArgument(f"must be a number from 0 to max_epsilon ({cap}), got {value}", field)
    if value > cap:
        raise InvalidArgument(f"{value} exceeds the policy's max_epsilon {cap}", field)


def check_intent(intent: str, field: str) -> None:
    if not intent or len(intent) > MAX_INTENT_LENGTH:
        raise InvalidArgument(f"an intent of 1 to {MAX_INTENT_LENGTH} characters", field)
    if any(not c.isprintable() for c in intent):
        raise InvalidArgument("an intent must not contain control characters", field)


def check_mode(mode: str, field: str = "mode") -> None:
    if mode not in MODES:
        raise InvalidArgument(f"{mode!r} is not a mode: use {', '.join(MODES)}", field)


def apply(config: PolicyConfig, overrides: Overrides) -> PolicyConfig:
    """The policy in force: the file's `config` with `overrides` on top; InvalidArgument
    when the two do not make a valid policy."""
    if not overrides:
        return config
    exploration: dict[str, Any] = config.exploration.model_dump()
    cap = config.exploration.max_epsilon
    update: dict[str, Any] = {}
    for setting, override in overrides.items():
        if setting == MODE:
            update["mode"] = override.value
        elif setting == EPSILON:
            exploration["epsilon"] = min(float(override.value), cap)
        elif setting.startswith(PER_INTENT):
            intent = setting.removeprefix(PER_INTENT)
            exploration["per_intent"] = {
                **exploration["per_intent"],
                intent: min(float(override.value), cap),
            }
    try:
        update["exploration"] = type(config.exploration).model_validate(exploration)
    except ValueError as exc:  # pydantic's ValidationError
        raise InvalidArgument(str(exc).splitlines()[0], "overrides") from None
    return config.model_copy(update=update)
