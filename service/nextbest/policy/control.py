"""Ops control of a running service: live overrides, reloads and rollbacks, all audited.

Every change is checked before anything moves, made durable (overrides survive a restart
and a reload: the file stays the base, overrides stay on top until cleared), put in force
at once (the next Decide uses it; the model is never reset), and audited: one record with
the time, the caller, the policy, old → new and the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from nextbest.policy.engine import Engine, PolicyRuntime
from nextbest.policy.errors import InvalidArgument, NotFound
from nextbest.policy.model import Model
from nextbest.policy.overrides import (
    EPSILON,
    MAX_PER_INTENT,
    MODE,
    PER_INTENT,
    Override,
    Overrides,
    apply,
    check_epsilon,
    check_intent,
    check_mode,
)

MAX_REASON_LENGTH = 1024
SYNC_CALLER = "redis"  # the caller of a change followed from another replica (Redis mode)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    at: float
    caller: str
    policy: str  # "*" for a reload of the whole file
    kind: str  # exploration, mode, clear, reload, rollback
    old: Mapping[str, Any]
    new: Mapping[str, Any]
    reason: str
    config_version: str = ""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A saved model a policy can be rolled back to."""

    version: str  # the model_version decisions reported when it was saved
    learned: int
    created_at: float
    vw_args: str


@dataclass(slots=True)
class ReloadVerdict:
    applied: bool
    error: str = ""
    config_versions: dict[str, str] = field(default_factory=dict)


class ControlStore(Protocol):
    """Where overrides, the audit trail and model checkpoints are kept. Each method makes
    its change durable or raises Unavailable."""

    def save_overrides(self, overrides: Mapping[str, Overrides]) -> None:
        """Replace every policy's overrides."""

    def audit(self, record: AuditRecord) -> None:
        """Append one audit record."""

    def checkpoints(self, policy: str) -> list[Checkpoint]:
        """The policy's saved models, newest first."""

    def load(self, policy: str, version: str, vw_args: str) -> Model:
        """The saved model of that version, made with these vw_args (NotFound otherwise)."""

    def keep(self, policy: str, model: Model) -> None:
        """Save `model` as the policy's newest checkpoint: a restart serves it."""


class Told(Protocol):
    """Who hears of a change besides the audit trail: metrics and logs."""

    def changed(self, record: AuditRecord) -> None: ...


class Control:
    """The operations AdminService offers, on one engine."""

    def __init__(
        self, engine: Engine, store: ControlStore, clock: Callable[[], float], told: Told
    ) -> None:
        self.engine = engine
        self.store = store
        self.clock = clock
        self.told = told

    # -- overrides -----------------------------------------------------------------------------

    def set_exploration(
        self,
        policy: str,
        epsilon: float | None,
        per_intent: Mapping[str, float],
        reason: str,
        caller: str,
    ) -> PolicyRuntime:
        rt = self.engine.policy(policy)
        _check_reason(reason)
        if epsilon is None and not per_intent:
            raise InvalidArgument("set epsilon or per_intent", "epsilon")
        changes: dict[str, float | str] = {}
        if epsilon is not None:
            check_epsilon(rt.file_config, epsilon, "epsilon")
            changes[EPSILON] = epsilon
        for intent, value in per_intent.items():
            where = f"per_intent[{intent[:64]!r}]"
            check_intent(intent, where)
            check_epsilon(rt.file_config, value, where)
            changes[PER_INTENT + intent] = value
        intents = {s for s in [*rt.overrides, *changes] if s.startswith(PER_INTENT)}
        if len(intents) > MAX_PER_INTENT:
            raise InvalidArgument(
                f"would override ε for {len(intents)} intents, at most {MAX_PER_INTENT} "
                "per policy: clear the overrides, or set the intents in the policy file",
                "per_intent",
            )
        return self._override(rt, "exploration", changes, reason, caller)

    def set_mode(self, policy: str, mode: str, reason: str, caller: str) -> PolicyRuntime:
        rt = self.engine.policy(policy)
        _check_reason(reason)
        check_mode(mode)
        return self._override(rt, "mode", {MODE: mode}, reason, caller)

    def clear(self, policy: str, reason: str, caller: str) -> PolicyRuntime:
        rt = self.engine.policy(policy)
        _check_reason(reason)
        return self._put(rt, {}, "clear", reason, caller)

    def _override(
        self,
        rt: PolicyRuntime,
        kind: str,
        changes: Mapping[str, float | str],
        reason: str,
        caller: str,
    ) -> PolicyRuntime:
        now = self.clock()
        overrides = dict(rt.overrides)
        for setting, value in changes.items():
            overrides[setting] = Override(setting, value, caller, now, reason)
        return self._put(rt, overrides, kind, reason, caller)

    def _put(
        self, rt: PolicyRuntime, overrides: Overrides, kind: str, reason: str, caller: str
    ) -> PolicyRuntime:
        """Check, keep, apply, audit: in that order, so a change that cannot be kept is
        never in force, and one in force is always audited (an audit that cannot be
        written undoes the change)."""
        apply(rt.file_config, overrides)  # refused here, before anything is kept
        before = dict(self.engine.overrides)
        self.store.save_overrides(_kept({**before, rt.name: overrides}))
        fresh = self.engine.set_overrides(rt.name, overrides, kind)
        try:
            self._audit(
                rt.name, kind, _values(rt.overrides), _values(overrides), reason, caller, fresh
            )
        except Exception:
            self.store.save_overrides(_kept(before))
            self.engine.set_overrides(rt.name, rt.overrides, kind)
            raise
        return fresh

    def follow(self, policy: str, overrides: Overrides, kind: str) -> bool:
        """Put in force a policy's overrides made on another replica (Redis mode): kept,
        applied, not audited (the replica where ops made the change audited it). False
        when nothing changed or the policy is not configured here; InvalidArgument when
        they do not fit this replica's file."""
        rt = self.engine.policies.get(policy)
        if rt is None or rt.overrides == overrides:
            return False
        apply(rt.file_config, overrides)
        self.store.save_overrides(_kept({**self.engine.overrides, policy: overrides}))
        self.engine.set_overrides(policy, overrides, kind)
        return True

    # -- reloads and models --------------------------------------------------------------------

    def record_reload(
        self, before: Mapping[str, str], verdict: ReloadVerdict, reason: str, caller: str
    ) -> None:
        """Audit a reload of the policy file (SIGHUP or ReloadConfig), applied or not;
        `before`: the config versions in force before it."""
        new: dict[str, Any] = (
            dict(verdict.config_versions) if verdict.applied else {"rejected": verdict.error}
        )
        record = AuditRecord(self.clock(), caller, "*", "reload", dict(before), new, reason)
        self.store.audit(record)
        self.told.changed(record)

    def checkpoints(self, policy: str) -> list[Checkpoint]:
        self.engine.policy(policy)
        return self.store.checkpoints(policy)

    def rollback(self, policy: str, version: str, reason: str, caller: str) -> PolicyRuntime:
        rt = self.engine.policy(policy)
        _check_reason(reason)
        if not version:
            raise InvalidArgument("must not be empty", "version")
        known = [c.version for c in self.store.checkpoints(policy)]
        if version not in known:
            raise NotFound(
                f"policy {policy!r} has no checkpoint of version {version[:64]!r} "
                f"(kept: {', '.join(known) or 'none'})",
                "version",
            )
        model = self.store.load(policy, version, rt.config.vw_args)
        try:
            self.store.keep(policy, model)
        except Exception:
            model.close()
            raise
        old_version = rt.model.version
        fresh = self.engine.replace_model(policy, model)
        self._audit(
            policy,
            "rollback",
            {"model_version": old_version},
            {"model_version": model.version},
            reason,
            caller,
            fresh,
        )
        return fresh

    def _audit(
        self,
        policy: str,
        kind: str,
        old: Mapping[str, Any],
        new: Mapping[str, Any],
        reason: str,
        caller: str,
        rt: PolicyRuntime,
    ) -> None:
        record = AuditRecord(self.clock(), caller, policy, kind, old, new, reason, rt.version)
        self.store.audit(record)
        self.told.changed(record)


def _kept(every: Mapping[str, Overrides]) -> dict[str, Overrides]:
    return {policy: o for policy, o in every.items() if o}


def _values(overrides: Overrides) -> dict[str, float | str]:
    return {setting: o.value for setting, o in sorted(overrides.items())}


def _check_reason(reason: str) -> None:
    if not reason.strip():
        raise InvalidArgument("say why: the audit trail keeps it", "reason")
    if len(reason) > MAX_REASON_LENGTH:
        raise InvalidArgument(
            f"is {len(reason)} characters, at most {MAX_REASON_LENGTH} allowed", "reason"
        )
