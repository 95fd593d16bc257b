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


@dataclass(frozen=True, slots=True)
class Override:
    """One setting's live value, with its provenance."""

    setting: str
    value: float | str
    set_by: str
    set_at: float
    reason: str


Overrides = Mapping[str, Override]  # setting → override, for one policy


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
    """The policy in force: the file's `config` with `overrides` on top."""
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
    update["exploration"] = type(config.exploration).model_validate(exploration)
    return config.model_copy(update=update)
