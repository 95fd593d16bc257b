"""Live overrides over the file: bounded by it, kept, audited, undone when not audited."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from nextbest.policy.control import AuditRecord, Checkpoint, Control
from nextbest.policy.engine import Engine
from nextbest.policy.errors import InvalidArgument, Unavailable
from nextbest.policy.model import Model
from nextbest.policy.overrides import EPSILON, MAX_PER_INTENT, Override, Overrides, apply
from nextbest.policy.ports import NullListener, run_now
from nextbest.policy.requests import DecideInput
from nextbest.store.memory import MemoryStore
from tests.conftest import make_config, support_policy


class Kept:
    """The control port in memory: what was kept and audited, and a switch to fail audits."""

    def __init__(self) -> None:
        self.overrides: dict[str, Overrides] = {}
        self.records: list[AuditRecord] = []
        self.audit_fails = False

    def save_overrides(self, overrides: Mapping[str, Overrides]) -> None:
        self.overrides = dict(overrides)

    def audit(self, record: AuditRecord) -> None:
        if self.audit_fails:
            raise Unavailable("cannot write the audit trail: disk full")
        self.records.append(record)

    def checkpoints(self, policy: str) -> list[Checkpoint]:
        return []

    def load(self, policy: str, version: str, vw_args: str) -> Model:
        raise AssertionError("not used")

    def keep(self, policy: str, model: Model) -> None:
        raise AssertionError("not used")


class Quiet:
    def changed(self, record: AuditRecord) -> None:
        pass


def control() -> tuple[Control, Kept]:
    engine = Engine(make_config(p=support_policy()), MemoryStore(), NullListener(), lambda: 5.0)
    kept = Kept()
    return Control(engine, kept, lambda: 5.0, Quiet()), kept


def epsilon_of(c: Control, intent: str = "x") -> float:
    return run_now(c.engine.decide(DecideInput(policy="p", intent=intent))).epsilon


def test_an_override_is_kept_applied_and_audited() -> None:
    c, kept = control()
    rt = c.set_exploration("p", 0.02, {"billing_dispute": 0.05}, "incident", "ops")
    assert (rt.config.exploration.epsilon, rt.file_config.exploration.epsilon) == (0.02, 0.1)
    assert epsilon_of(c) == 0.02
    assert epsilon_of(c, "billing_dispute") == 0.05
    assert kept.overrides["p"][EPSILON] == Override(EPSILON, 0.02, "ops", 5.0, "incident")
    (record,) = kept.records
    assert (record.kind, record.caller, record.old, record.config_version) == (
        "exploration",
        "ops",
        {},
        rt.version,
    )


def test_an_override_the_audit_cannot_record_is_undone() -> None:
    c, kept = control()
    kept.audit_fails = True
    with pytest.raises(Unavailable):
        c.set_mode("p", "frozen", "try", "ops")
    assert c.engine.policies["p"].config.mode == "online"
    assert kept.overrides == {}


def test_overrides_never_exceed_the_files_bound() -> None:
    c, _ = control()
    with pytest.raises(InvalidArgument, match=r"max_epsilon 0\.3") as info:
        c.set_exploration("p", 0.31, {}, "r", "ops")
    assert info.value.field == "epsilon"
    # A file that lowers max_epsilon under an override caps the override.
    lowered = make_config(p=support_policy(exploration={"epsilon": 0.005, "max_epsilon": 0.01}))
    override = {EPSILON: Override(EPSILON, 0.2, "ops", 1.0, "r")}
    assert apply(lowered.policies["p"], override).exploration.epsilon == 0.01


def test_a_reload_keeps_the_overrides_on_top_of_the_new_file() -> None:
    c, _ = control()
    c.set_mode("p", "frozen", "hold", "ops")
    c.engine.reload(make_config(p=support_policy(seed=7)))
    rt = c.engine.policies["p"]
    assert (rt.config.mode, rt.config.seed, rt.file_config.mode) == ("frozen", 7, "online")
    c.clear("p", "done", "ops")
    assert c.engine.policies["p"].config.mode == "online"


def test_a_reload_prepared_off_the_loop_keeps_what_changed_meanwhile() -> None:
    """SetExploration and a rollback that land while a reload is being prepared win."""
    c, _ = control()
    prepared = c.engine.prepare(make_config(p=support_policy(seed=3)))
    c.set_exploration("p", 0.01, {}, "meanwhile", "ops")
    rolled_back = Model(c.engine.policies["p"].config.vw_args, learned=0)
    c.engine.replace_model("p", rolled_back)
    c.engine.install(prepared)
    rt = c.engine.policies["p"]
    assert (rt.config.seed, rt.config.exploration.epsilon) == (3, 0.01)
    assert rt.model is rolled_back
    assert epsilon_of(c) == 0.01  # and it serves


def test_per_intent_overrides_are_bounded() -> None:
    """Each per-intent ε is a metric series and a line of overrides.json: a caller with the
    admin scope cannot grow them without bound."""
    c, kept = control()
    many = {f"intent-{i}": 0.05 for i in range(MAX_PER_INTENT)}
    c.set_exploration("p", None, many, "many intents", "ops")
    with pytest.raises(InvalidArgument, match=f"at most {MAX_PER_INTENT}") as info:
        c.set_exploration("p", None, {"one-more": 0.05}, "one more", "ops")
    assert info.value.field == "per_intent"
    assert len(kept.overrides["p"]) == MAX_PER_INTENT
    c.set_exploration("p", None, {"intent-0": 0.01}, "an intent already overridden", "ops")
