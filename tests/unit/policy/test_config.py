"""A policy file is validated whole; errors name the policy and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from nextbest.policy.config import load_config, parse_duration
from nextbest.policy.errors import ConfigError
from tests.conftest import EXAMPLE, make_config, support_policy


def test_the_example_file_loads() -> None:
    config = load_config(EXAMPLE)
    policy = config.policies["support.next_step"]
    assert [a.id for a in policy.actions][:2] == ["ask_details", "offer_refund"]
    assert policy.reward.wait == 600.0
    assert policy.exploration.epsilon_for("billing_dispute") == 0.2
    assert policy.exploration.epsilon_for("other") == 0.1


@pytest.mark.parametrize(
    ("text", "seconds"), [("500ms", 0.5), ("2s", 2.0), ("10m", 600.0), ("1h", 3600.0), (3, 3.0)]
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["10", "10 minutes", "-1s", "0s", "s"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            {"safety": [{"name": "r", "deny_when": "context.x <", "reason": "x"}]},
            r"support\.next_step\.safety\.0\.deny_when: invalid CEL",
        ),
        (
            {"exploration": {"epsilon": 0.5, "max_epsilon": 0.3}},
            r"support\.next_step\.exploration: epsilon 0.5 exceeds max_epsilon 0.3",
        ),
        (
            {"exploration": {"epsilon": 0.1, "max_epsilon": 0.3, "per_intent": {"x": 0.4}}},
            r"per_intent\['x'\] 0.4 exceeds max_epsilon",
        ),
        ({"fallback_action": "nope"}, r"support\.next_step: .*fallback_action 'nope' is not in"),
        (
            {"safety": [{"name": "r", "actions": ["ghost"], "deny_when": "true", "reason": "x"}]},
            r"support\.next_step: .*safety\[0\] \(r\)\.actions: unknown actions \['ghost'\]",
        ),
        ({"vw_args": "--cb_explore_adf --epsilon 0.2"}, r"vw_args: .*--epsilon is not allowed"),
        ({"vw_args": "--cb_explore_adf -f model.vw"}, r"vw_args: .*-f is not allowed"),
        ({"vw_args": "-q ::"}, r"vw_args: .*must contain --cb_explore_adf"),
        ({"mode": "greedy"}, r"support\.next_step\.mode"),
        ({"reward": {"default": 5}}, r"default 5.0 lies outside clip"),
        ({"colour": "blue"}, r"support\.next_step\.colour: Extra inputs"),
    ],
)
def test_invalid_policies_are_rejected_naming_policy_and_key(
    override: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        make_config(support__next_step=support_policy(**override))


def test_bad_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("policies: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")


def test_config_version_changes_exactly_when_the_policy_does() -> None:
    a = make_config(p=support_policy()).policies["p"]
    b = make_config(p=support_policy()).policies["p"]
    c = make_config(p=support_policy(mode="frozen")).policies["p"]
    assert a.version() == b.version() != c.version()


def test_operator_mistakes_in_the_file_are_config_errors(tmp_path: Path) -> None:
    """Not tracebacks: a non-UTF-8 file and YAML nested too deep to parse."""
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("policies:\n  caf\xe9: {}\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="UTF-8"):
        load_config(latin1)
    deep = tmp_path / "deep.yaml"
    deep.write_text("policies: " + "[" * 20_000 + "]" * 20_000 + "\n")
    with pytest.raises(ConfigError, match="deep"):
        load_config(deep)


def test_rules_are_bounded_in_size_and_cost() -> None:
    def rule(expression: str) -> dict[str, object]:
        return support_policy(safety=[{"name": "r", "deny_when": expression, "reason": "because"}])

    with pytest.raises(ConfigError, match=r"safety\.0\.deny_when.*at most 4096"):
        make_config(support=rule(" || ".join(["context.a == 1"] * 1000)))
    nested = "context.xs.exists(a, context.xs.exists(b, a == b))"
    with pytest.raises(ConfigError, match="nested"):
        make_config(support=rule(nested))
    make_config(support=rule("context.xs.exists(a, a == 'x') || context.ys.all(b, b != '')"))
    # A macro name inside a string literal is text, not a comprehension.
    make_config(support=rule("context.xs.exists(a, a == '.exists(')"))
