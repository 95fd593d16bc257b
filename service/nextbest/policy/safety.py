"""Safety rules: CEL expressions that remove actions before the model scores them.

A rule is compiled once at load. It sees ``intent``, ``context`` (the request's map) and
``action`` (``action.id``, ``action.features``). A rule that cannot be evaluated for a
request — it reads a context key the request lacks, compares values of the wrong types,
indexes past a list's end, divides by zero, overflows, or the CEL library itself fails —
denies: for a safety rule, "could not check" must not mean "allowed". The reason then says
why, so callers learn which key to send.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import cel

from nextbest.policy.config import SafetyRule


@dataclass(frozen=True, slots=True)
class Masked:
    """One action removed from a decision, and why."""

    action_id: str
    reason: str
    rule: str = ""


class Candidate(Protocol):
    """What a rule sees of an action (the engine hands its eligible actions as they are)."""

    @property
    def id(self) -> str: ...

    @property
    def features(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True, slots=True)
class CandidateView:
    """A Candidate made up of its two parts."""

    id: str
    features: Mapping[str, Any]


# String literals (any quoting, raw or bytes) and comments: no variable is read inside them.
_LITERALS = re.compile(
    r'[rRbB]{0,2}(?:"""[\s\S]*?"""'
    r"|'''[\s\S]*?'''"
    r'|"(?:\\.|[^"\\\n])*"'
    r"|'(?:\\.|[^'\\\n])*')"
    r"|//[^\n]*"
)
_CONTEXT = re.compile(r"(?<![\w.])context\b(\s*\.\s*([A-Za-z_]\w*)\b(?!\s*\())?")


def context_fields(expression: str) -> frozenset[str] | None:
    """The context keys an expression reads, when it reads them only as ``context.name``;
    None when it uses `context` otherwise (``'k' in context``, ``context['k']``,
    ``context.size()``): then it needs the whole map.

    Why: the CEL library converts every value it is handed, so giving a 10-feature context
    to a rule that reads two of them costs 5× the rule itself."""
    code = _LITERALS.sub(" ", expression)
    fields: set[str] = set()
    for match in _CONTEXT.finditer(code):
        if match.group(2) is None:
            return None
        fields.add(match.group(2))
    return frozenset(fields)


class _Compiled:
    __slots__ = ("actions", "fields", "program", "reads_action", "rule")

    def __init__(self, rule: SafetyRule) -> None:
        self.rule = rule
        self.program = cel.compile(rule.deny_when)
        self.actions = frozenset(rule.actions)
        # A rule that does not read `action` has one verdict for every action of a decision.
        self.reads_action = "action" in self.program.variables()
        self.fields = context_fields(rule.deny_when)

    def context(self, context: Mapping[str, Any]) -> Mapping[str, Any]:
        """What of the request's context this rule is given (see `context_fields`)."""
        if self.fields is None:
            return context
        return {name: context[name] for name in self.fields if name in context}

    def verdict(self, variables: dict[str, Any], context: Mapping[str, Any]) -> tuple[bool, str]:
        """(denied, reason). `variables` hold ``self.context(context)``: a rule that fails
        on it is run again on the whole `context`, so the shortcut can only ever save time,
        never change a verdict. Errors deny, with the cause in the reason."""
        try:
            result = self.program.execute(variables)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:  # the CEL library can also panic (a pyo3 BaseException)
            return self._checked({**variables, "context": context})
        if not isinstance(result, bool):
            return self._checked({**variables, "context": context})
        return result, self.rule.reason

    def _checked(self, variables: dict[str, Any]) -> tuple[bool, str]:
        """The verdict on the whole context, errors included."""
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
        self, intent: str, context: Mapping[str, Any], candidates: Sequence[Candidate]
    ) -> list[Masked]:
        """The candidates that some rule denies, each with the first denying rule's reason."""
        if not self._rules:
            return []
        masked: list[Masked] = []
        denied: set[str] = set()
        for compiled in self._rules:
            only = compiled.actions
            targets = [c for c in candidates if (not only or c.id in only) and c.id not in denied]
            if not targets:
                continue
            base: dict[str, Any] = {"intent": intent, "context": compiled.context(context)}
            if not compiled.reads_action:
                deny, reason = compiled.verdict(base, context)
                if deny:
                    for c in targets:
                        denied.add(c.id)
                        masked.append(Masked(c.id, reason, compiled.rule.name))
                continue
            for c in targets:
                variables = {**base, "action": {"id": c.id, "features": c.features}}
                deny, reason = compiled.verdict(variables, context)
                if deny:
                    denied.add(c.id)
                    masked.append(Masked(c.id, reason, compiled.rule.name))
        return masked
