"""Rules mask actions before scoring; a rule that cannot be evaluated denies."""

from __future__ import annotations

from nextbest.policy.config import SafetyRule
from nextbest.policy.safety import CandidateView, SafetyRules

REFUND = SafetyRule(
    name="refund_limits",
    actions=["offer_refund"],
    deny_when="context.account_age_days < 30 || context.amount > 200.0",
    reason="refunds need 30 days of tenure and at most 200",
)
ACTIONS = [CandidateView("ask_details", {"kind": "info"}), CandidateView("offer_refund", {})]


def test_a_rule_masks_only_its_actions_when_true() -> None:
    rules = SafetyRules([REFUND])
    masked = rules.mask("billing", {"account_age_days": 10.0, "amount": 5.0}, ACTIONS)
    assert [(m.action_id, m.rule) for m in masked] == [("offer_refund", "refund_limits")]
    assert masked[0].reason == REFUND.reason
    assert rules.mask("billing", {"account_age_days": 40.0, "amount": 5.0}, ACTIONS) == []


def test_a_missing_context_key_denies_and_says_which() -> None:
    masked = SafetyRules([REFUND]).mask("billing", {"account_age_days": 40.0}, ACTIONS)
    assert [m.action_id for m in masked] == ["offer_refund"]
    assert "no value for 'amount'" in masked[0].reason


def test_a_type_mismatch_denies() -> None:
    masked = SafetyRules([REFUND]).mask(
        "billing", {"account_age_days": "old", "amount": 5.0}, ACTIONS
    )
    assert [m.action_id for m in masked] == ["offer_refund"]
    assert "could not be evaluated" in masked[0].reason


def test_rules_see_intent_and_action_features() -> None:
    rule = SafetyRule(
        name="no_humans_for_login",
        deny_when='intent == "login_problem" && action.features.kind == "human"',
        reason="login problems are self-service",
    )
    actions = [CandidateView("a", {"kind": "human"}), CandidateView("b", {"kind": "info"})]
    rules = SafetyRules([rule])
    assert [m.action_id for m in rules.mask("login_problem", {}, actions)] == ["a"]
    assert rules.mask("billing", {}, actions) == []


def test_first_denying_rule_is_reported_once() -> None:
    always = SafetyRule(name="always", deny_when="true", reason="never")
    rules = SafetyRules([always, REFUND])
    masked = rules.mask("x", {"account_age_days": 1.0, "amount": 1.0}, ACTIONS)
    assert [(m.action_id, m.rule) for m in masked] == [
        ("ask_details", "always"),
        ("offer_refund", "always"),
    ]


def test_any_evaluation_error_denies_with_the_cause() -> None:
    """IndexError, ZeroDivisionError, OverflowError: "could not check" never means allowed."""
    cases: list[tuple[str, dict[str, object]]] = [
        ("context.tags[0] == 'blocked'", {"tags": []}),
        ("1 / context.n > 0", {"n": 0}),
        ("context.n * 9223372036854775807 > 0", {"n": 2}),
    ]
    for expression, context in cases:
        rule = SafetyRule(name="r", deny_when=expression, reason="because")
        masked = SafetyRules([rule]).mask("billing", context, ACTIONS)
        assert [m.action_id for m in masked] == ["ask_details", "offer_refund"], expression
        assert "could not be evaluated" in masked[0].reason
