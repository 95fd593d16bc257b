"""Rules mask actions before scoring; a rule that cannot be evaluated denies."""

from __future__ import annotations

import cel

from nextbest.policy.config import SafetyRule
from nextbest.policy.safety import CandidateView, SafetyRules, context_fields

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


def test_a_rule_is_given_only_the_context_keys_it_reads() -> None:
    """Reading `context.name` only: the rule gets those keys; any other use, the whole map."""
    assert context_fields("context.amount > 2.0 || !context.vip") == {"amount", "vip"}
    assert context_fields("has(context.amount) && context . tier == 'gold'") == {
        "amount",
        "tier",
    }
    assert context_fields("context.tags.exists(t, t == 'vip')") == {"tags"}
    assert context_fields("intent == 'x'") == frozenset()
    for whole in [
        "'vip' in context",
        "context['amount'] > 2.0",
        "context.size() > 3",
        "context.exists(k, k == 'vip')",
        "[context][0].amount > 1.0",
    ]:
        assert context_fields(whole) is None, whole
    # in string literals and comments `context` is not read
    assert context_fields("intent == 'context' // context['x']\n") == frozenset()
    assert context_fields('intent == "a \\" context" && context.b') == {"b"}


def test_the_shortcut_never_changes_a_verdict() -> None:
    """Every verdict on the keys a rule reads is the verdict on the whole context, errors
    and their reasons included."""
    context = {"amount": 250.0, "vip": True, "tier": "gold", "tags": ["a", "b"], "n": 0.0}
    expressions = [
        "context.amount > 200.0 || !context.vip",
        "has(context.missing)",
        "!has(context.missing) && context.tier == 'gold'",
        "context.missing > 1.0",
        "context.tags.exists(t, t == 'b')",
        "context.tier > 1",
        "'vip' in context && context.vip",
        "1 / int(context.n) > 0",
        "context.amount",
    ]
    for expression in expressions:
        rule = SafetyRule(name="r", deny_when=expression, reason="because")
        fast = SafetyRules([rule]).mask("billing", context, ACTIONS)
        compiled = cel.compile(expression)
        try:
            expected = compiled.execute({"intent": "billing", "context": context})
        except BaseException:  # any error denies
            expected = "error"
        denied = [m.action_id for m in fast]
        if expected is False:
            assert denied == [], expression
        else:
            assert denied == ["ask_details", "offer_refund"], expression
            assert (fast[0].reason == "because") == (expected is True), expression
