"""Policy configuration: the YAML file ops edit, validated before anything runs.

A bad file is refused as a whole with a message naming the policy and the key, so that a
reload can keep the running configuration instead of serving half of a new one.
"""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import cel
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)

from nextbest.policy.errors import ConfigError
from nextbest.policy.vw_args import DEFAULT_VW_ARGS, check_vw_args

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
POLICY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
# A rule runs for every decision (per action when it reads `action`): its cost is bounded
# by its size and by how many list comprehensions it runs, none nested (lists hold at most
# 64 texts, so one comprehension is at most 64 steps).
MAX_RULE_LENGTH = 4096
MAX_COMPREHENSIONS = 4
_STRING = re.compile(  # CEL string literals: triple-quoted, then single-line (escapes)
    r"[rRbB]*(?:'''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\\n])*'|\"(?:\\.|[^\"\\\n])*\")",
    re.S,
)
_MACRO = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\($")


def parse_duration(value: Any) -> float:
    """`500ms`, `2s`, `10m`, `1h` (or a plain number of seconds) → seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number with a unit: 500ms, 2s, 10m, 1h")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"{value!r} is not a duration: use 500ms, 2s, 10m or 1h")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
FeatureValue = StrictBool | float | str | list[str]
Mode = Literal["online", "apprentice", "frozen", "logging_only"]
Aggregation = Literal["earliest", "sum", "mean", "last"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ActionSpec(_Strict):
    """A catalog action: its id, its features, and whether exploration may pick it."""

    id: str = Field(min_length=1, max_length=256)
    features: dict[str, FeatureValue] = Field(default_factory=dict)
    explore: bool = True


class Exploration(_Strict):
    """At most ε of probability mass off the greedy action, whatever the algorithm."""

    algorithm: Literal["epsilon_greedy", "squarecb"] = "epsilon_greedy"
    gamma_scale: float = Field(10.0, gt=0, description="squarecb: γ = scale · t^exponent")
    gamma_exponent: float = Field(0.5, ge=0, le=1)
    epsilon: float = Field(0.1, ge=0.0, le=1.0)
    max_epsilon: float = Field(0.3, ge=0.0, le=1.0)
    per_intent: dict[str, Annotated[float, Field(ge=0.0, le=1.0)]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _bounded(self) -> Exploration:
        if self.epsilon > self.max_epsilon:
            raise ValueError(f"epsilon {self.epsilon} exceeds max_epsilon {self.max_epsilon}")
        for intent, eps in self.per_intent.items():
            if eps > self.max_epsilon:
                raise ValueError(
                    f"per_intent[{intent!r}] {eps} exceeds max_epsilon {self.max_epsilon}"
                )
        return self

    def epsilon_for(self, intent: str) -> float:
        """The ε a decision for this intent explores with, never above max_epsilon."""
        return min(self.per_intent.get(intent, self.epsilon), self.max_epsilon)


class SafetyRule(_Strict):
    """A CEL expression over {intent, context, action}: true means the action is denied."""

    name: str = Field(min_length=1, max_length=128)
    deny_when: str = Field(min_length=1)
    reason: str = Field(min_length=1, max_length=512)
    actions: list[str] = Field(default_factory=list, description="empty: every action")

    @field_validator("deny_when")
    @classmethod
    def _compiles(cls, expression: str) -> str:
        if len(expression) > MAX_RULE_LENGTH:
            raise ValueError(f"is {len(expression)} characters, at most {MAX_RULE_LENGTH} allowed")
        _check_comprehensions(expression)
        try:
            cel.compile(expression)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # the CEL library can also panic (a pyo3 BaseException)
            raise ValueError(f"invalid CEL expression: {str(exc)[:300]}") from None
        return expression


def _check_comprehensions(expression: str) -> None:
    """At most MAX_COMPREHENSIONS macros (all, exists, exists_one, map, filter), none inside
    another: nested ones multiply (64 × 64 × … steps per decision)."""
    code = _STRING.sub('""', expression)
    stack: list[bool] = []  # per open parenthesis: does it open a comprehension?
    count = 0
    for i, char in enumerate(code):
        if char == "(":
            macro = bool(_MACRO.search(code[max(0, i - 32) : i + 1]))
            if macro:
                count += 1
                if any(stack):
                    raise ValueError("nested comprehensions are not allowed (cost grows as n^k)")
            stack.append(macro)
        elif char == ")" and stack:
            stack.pop()
    if count > MAX_COMPREHENSIONS:
        raise ValueError(f"has {count} comprehensions, at most {MAX_COMPREHENSIONS} allowed")


class SignalSpec(_Strict):
    """How one named signal contributes: weight × value, the value first scaled from range."""

    weight: float
    range: tuple[float, float] | None = None

    @model_validator(mode="after")
    def _range_ordered(self) -> SignalSpec:
        if self.range is not None and not self.range[0] < self.range[1]:
            raise ValueError(f"range {list(self.range)} must be [low, high] with low < high")
        return self


class RewardSpec(_Strict):
    """How rewards become the one number an event is learned with."""

    wait: Duration = 600.0
    default: float = 0.0
    aggregation: Aggregation = "earliest"
    clip: tuple[float, float] = (-1.0, 1.0)
    signals: dict[str, SignalSpec] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> RewardSpec:
        low, high = self.clip
        if not low < high:
            raise ValueError(f"clip {list(self.clip)} must be [low, high] with low < high")
        if not low <= self.default <= high:
            raise ValueError(f"default {self.default} lies outside clip {list(self.clip)}")
        return self


class PolicyConfig(_Strict):
    """One decision point: catalog, exploration, safety, reward, model and learning mode."""

    actions: list[ActionSpec] = Field(default_factory=list)
    fallback_action: str | None = None
    exploration: Exploration = Field(default_factory=Exploration)
    safety: list[SafetyRule] = Field(default_factory=list)
    reward: RewardSpec = Field(default_factory=RewardSpec)
    vw_args: str = DEFAULT_VW_ARGS
    mode: Mode = "online"
    seed: int = Field(0, ge=0, description="with the event id, seeds the draw of the action")

    @field_validator("vw_args")
    @classmethod
    def _vw_args(cls, value: str) -> str:
        check_vw_args(value)
        return value

    @model_validator(mode="after")
    def _references(self) -> PolicyConfig:
        ids = [a.id for a in self.actions]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"actions: duplicate action ids {duplicates}")
        known = set(ids)
        if self.fallback_action is not None and self.fallback_action not in known:
            raise ValueError(f"fallback_action {self.fallback_action!r} is not in actions")
        names = [r.name for r in self.safety]
        for i, rule in enumerate(self.safety):
            if names.count(rule.name) > 1:
                raise ValueError(f"safety[{i}].name {rule.name!r} is used twice")
            unknown = [a for a in rule.actions if a not in known]
            if unknown:
                raise ValueError(f"safety[{i}] ({rule.name}).actions: unknown actions {unknown}")
        return self

    def version(self) -> str:
        """A short content hash: changes exactly when the policy's configuration does."""
        digest = hashlib.sha256(self.model_dump_json().encode()).hexdigest()
        return digest[:12]


class Config(_Strict):
    """The whole file: named policies."""

    policies: dict[str, PolicyConfig]

    @field_validator("policies")
    @classmethod
    def _names(cls, policies: dict[str, PolicyConfig]) -> dict[str, PolicyConfig]:
        if not policies:
            raise ValueError("at least one policy is required")
        for name in policies:
            if not POLICY_NAME.match(name):
                raise ValueError(
                    f"policy name {name!r}: use letters, digits and _ . : - (at most 128)"
                )
        return policies


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "config"
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: {message}")
    return "; ".join(lines)


def parse_config(data: Any, source: str = "config") -> Config:
    """Validate already-parsed YAML/JSON data; ConfigError names the policy and key."""
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_describe(exc)}") from None


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML policy file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}): {exc.reason}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid YAML: nested too deep") from None
    try:
        return parse_config(data, str(path))
    except RecursionError:
        raise ConfigError(f"{path}: nested too deep") from None
