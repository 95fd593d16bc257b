"""Shared fixtures: policy configs built in code, so each test shows the policy it relies on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nextbest.policy.config import Config, parse_config

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "support.yaml"


def support_policy(**overrides: Any) -> dict[str, Any]:
    """The README's support policy as a dict; override any top-level key."""
    policy: dict[str, Any] = {
        "actions": [
            {"id": "ask_details", "features": {"kind": "info"}},
            {"id": "offer_refund", "features": {"kind": "money"}, "explore": False},
            {"id": "transfer_billing", "features": {"kind": "human"}},
            {"id": "escalate_human", "features": {"kind": "human"}},
        ],
        "fallback_action": "escalate_human",
        "exploration": {
            "epsilon": 0.1,
            "max_epsilon": 0.3,
            "per_intent": {"billing_dispute": 0.2},
        },
        "safety": [
            {
                "name": "refund_limits",
                "actions": ["offer_refund"],
                "deny_when": "context.account_age_days < 30 || context.amount > 200.0",
                "reason": "refunds need 30 days of tenure and at most 200",
            }
        ],
        "reward": {
            "wait": "10m",
            "default": 0.0,
            "aggregation": "earliest",
            "clip": [-1, 1],
            "signals": {
                "resolved": {"weight": 1.0},
                "escalated": {"weight": -0.5},
                "csat": {"weight": 0.5, "range": [1, 5]},
            },
        },
    }
    policy.update(overrides)
    return policy


def make_config(**policies: dict[str, Any]) -> Config:
    """Config with the given policies; `support` names map to support.next_step."""
    return parse_config({"policies": {k.replace("__", "."): v for k, v in policies.items()}})


@pytest.fixture
def support_config() -> Config:
    return make_config(support__next_step=support_policy())


pytest_plugins = ["tests.redis_server"]
