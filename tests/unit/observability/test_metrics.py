"""Telemetry: bounded labels, and a line plus a count for each failed join."""

from __future__ import annotations

from structlog.testing import capture_logs

from nextbest.observability.metrics import INLINE_ACTION, Metrics, Telemetry
from nextbest.policy.engine import Engine
from nextbest.policy.events import Event
from nextbest.policy.ports import NullListener, run_now
from nextbest.policy.requests import DecideInput, InlineAction
from nextbest.store.memory import MemoryStore
from tests.conftest import make_config, support_policy


def decided_events() -> list[Event]:
    engine = Engine(
        make_config(support=support_policy()), MemoryStore(), NullListener(), lambda: 0.0
    )
    inline = DecideInput(
        policy="support",
        intent="x",
        context={},
        candidate_action_ids=["tool-1"],
        actions=[InlineAction("tool-1", {})],
    )
    catalog = DecideInput(policy="support", intent="x", context={})
    return [run_now(engine.decide(inline)), run_now(engine.decide(catalog))]


def value(metrics: Metrics, name: str, labels: dict[str, str]) -> float:
    found = metrics.registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


def test_only_catalog_ids_become_action_labels() -> None:
    metrics = Metrics()
    catalog = {"ask_details", "offer_refund", "transfer_billing", "escalate_human"}
    telemetry = Telemetry(metrics, lambda policy: catalog)
    inline, from_catalog = decided_events()
    telemetry.decided([inline])
    telemetry.decided([from_catalog])
    actions = {
        s.labels["action"]
        for family in metrics.registry.collect()
        if family.name == "nextbest_decisions"
        for s in family.samples
        if s.name.endswith("_total")
    }
    assert actions == {INLINE_ACTION, from_catalog.action_id}
    not_candidate = {"policy": "support", "rule": "caller:not_candidate"}
    assert value(metrics, "nextbest_masked_total", {**not_candidate, "action": "ask_details"}) == 1


def test_a_failed_join_is_counted_and_logged() -> None:
    metrics = Metrics()
    event = decided_events()[1]
    with capture_logs() as logs:
        Telemetry(metrics).join_failed(event, "cannot write the decision log: disk full")
    assert value(metrics, "nextbest_join_failures_total", {"policy": "support"}) == 1
    assert logs == [
        {
            "event": "join_failed",
            "log_level": "warning",
            "event_id": event.event_id,
            "policy": "support",
            "reason": "cannot write the decision log: disk full",
        }
    ]
