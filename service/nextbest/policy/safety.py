"""Safety rules: CEL expressions that remove actions before the model scores them.

A rule is compiled once at load. It sees ``intent``, ``context`` (the request's map) and
``action`` (``action.id``, ``action.features``). A rule that cannot be evaluated for a
request — it reads a context key the request lacks, compares values of the wrong types,
indexes past a list's end, divides by zero, overflows, or the CEL library itself fails —
denies: for a safety rule, "could not check" must not mean "allowed". The reason then says
why, so callers learn which key to send.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cel

from nextbest.policy.config import SafetyRule


@dataclass(frozen=True, slots=True)
class Masked:
    """One action removed from a decision, and why."""

    action_id: str
    reason: str
    rule: str = ""


@dataclass(frozen=True, slots=True)
class CandidateView:
    """What a rule sees of an action."""

    id: str
    features: Mapping[str, Any]


class _Compiled:
    __slots__ = ("actions", "program", "reads_action", "rule")

    def __init__(self, rule: SafetyRule) -> None:
        self.rule = rule
        self.program = cel.compile(rule.deny_when)
        self.actions = frozenset(rule.actions)
        # A rule that does not read `action` has one verdict for every action of a decision.
        self.reads_action = "action" in self.program.variables()

    def applies_to(self, action_id: str) -> bool:
        return not self.actions or action_id in self.actions

    def verdict(self, variables: dict[str, Any]) -> tuple[bool, str]:
        """(denied, reason). Errors deny, with the cause in the reason."""
        try:
            result = self.program.execute(variables)
        except KeyError as exc:
            return True, f"{self.rule.reason} (denied: no value for {exc.args[0]!r})"
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # the CEL library can also panic (a pyo3 BaseException)
            cause = str(exc)[:200] or type(exc).__name__
            return True, f"{self.rule.reason} (denied: rule could not be evaluated: {cause})"
        if not isinstance(result, bool):
            return True, f"{self.rule.reason} (denied: rule gave {result!r}, not a bool)"
        return result, self.rule.reason


class SafetyRules:
    """A policy's compiled rules."""

    def __init__(self, rules: Sequence[SafetyRule]) -> None:
        self._rules = [_Compiled(r) for r in rules]

    def __len__(self) -> int:
        return len(self._rules)

    def mask(
        self, intent: str, context: Mapping[str, Any], candidates: Sequence[CandidateView]
    ) -> list[Masked]:
        """The candidates that some rule denies, each with the first denying rule's reason."""
        if not self._rules:
            return []
        masked: list[Masked] = []
        denied: set[str] = set()
        base: dict[str, Any] = {"intent": intent, "context": context}
        for compiled in self._rules:
            targets = [c for c in candidates if c.id not in denied and compiled.applies_to(c.id)]
            if not targets:
                continue
            if not compiled.reads_action:
                deny, reason = compiled.verdict(base)
                if deny:
                    for c in targets:
                        denied.add(c.id)
                        masked.append(Masked(c.id, reason, compiled.rule.name))
                continue
            for c in targets:
                variables = {**base, "action": {"id": c.id, "features": c.features}}
                deny, reason = compiled.verdict(variables)
                if deny:
                    denied.add(c.id)
                    masked.append(Masked(c.id, reason, compiled.rule.name))
        return masked
