"""The customer-support scenario: an agent picks the next step of a support conversation.

The customer: an intent (what the LLM understood) and a context the agent sends as it is —
tenure (``account_age_days`` and its band ``tenure``), ``plan``, the ``amount`` at stake
(and its band ``amount_band``), ``sentiment``, ``channel`` and ``prior_contacts``. Numbers
are what safety rules need; the bands are what an agent's extraction step would add, and
what a linear model can learn thresholds from.

The hidden truth is a resolution probability per (situation, action): a base rate per intent
and action, shifted by each context feature (angry customers hate being asked for details,
KB articles work by email and fail on the phone, enterprise accounts want billing and not a
discount, loyal customers who want to cancel stay for a discount, repeat contacts need a
human, …), clipped to [0.02, 0.95]. The feedback an agent would see:

- ``resolved`` (0/1), drawn from that probability;
- ``escalated`` (0/1): an unresolved customer escalates with a probability that grows with
  anger, and handing over to a human (``escalate_human``) always counts as one: a person's
  time is the cost the reward spec charges with a negative weight;
- ``csat``: a 1–5 rating that 40 % of customers leave, noisy around "resolved → 4-5,
  unresolved → 1-2".

The reward is 0.7·resolved − 0.5·escalated + 0.3·(csat − 1)/4, in [−0.5, 1], so it is never
clipped and its mean is exact. The safety rule: no refund for accounts younger than 30 days
or for more than 200 — and new accounts are exactly where a refund "resolves" most often
(refund abuse), so a learner without the mask would learn to hand them out.

The rule baseline is what a team writes on day one: angry → human, billing → billing team,
refund → refund when allowed, login and technical → KB article, cancellation → discount.
It is sensible and blind to channel, plan, tenure and repeat contacts.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import Any

from nextbest.simulate.scenario import Exploring, Luck, Outcome, Scenario, Situation

ASK, REFUND, DISCOUNT, KB, BILLING, HUMAN = (
    "ask_details",
    "offer_refund",
    "offer_discount",
    "send_kb_article",
    "transfer_billing",
    "escalate_human",
)
ACTIONS = (ASK, REFUND, DISCOUNT, KB, BILLING, HUMAN)
ACTION_KIND = {ASK: "info", REFUND: "money", DISCOUNT: "money", KB: "self_serve"}
ACTION_KIND |= {BILLING: "human", HUMAN: "human"}

INTENTS = {  # intent → share of conversations
    "billing_dispute": 0.25,
    "refund_request": 0.20,
    "login_problem": 0.20,
    "cancel_subscription": 0.15,
    "technical_issue": 0.20,
}
PLANS = {"free": 0.35, "pro": 0.35, "business": 0.20, "enterprise": 0.10}
MONTHLY_PRICE = {"free": 0.0, "pro": 29.0, "business": 99.0, "enterprise": 499.0}
SENTIMENTS = {"angry": 0.25, "neutral": 0.55, "happy": 0.20}
CHANNELS = {"chat": 0.50, "email": 0.30, "phone": 0.20}
MONEY_INTENTS = frozenset({"billing_dispute", "refund_request"})


# Resolution probability: base[intent][action] …
# fmt: off
BASE_TABLE = {  # columns: ask, refund, discount, kb, billing, human (ACTIONS' order)
    "billing_dispute":     (0.45, 0.55, 0.25, 0.15, 0.60, 0.75),
    "refund_request":      (0.30, 0.80, 0.35, 0.10, 0.50, 0.70),
    "login_problem":       (0.60, 0.05, 0.05, 0.55, 0.10, 0.80),
    "cancel_subscription": (0.25, 0.25, 0.50, 0.10, 0.30, 0.60),
    "technical_issue":     (0.45, 0.05, 0.10, 0.60, 0.05, 0.80),
}
# fmt: on
BASE = {intent: dict(zip(ACTIONS, row, strict=True)) for intent, row in BASE_TABLE.items()}
# … shifted by each text feature's value …
SHIFT: dict[str, dict[str, dict[str, float]]] = {
    "sentiment": {
        "angry": {ASK: -0.15, KB: -0.20, DISCOUNT: 0.05, REFUND: 0.05, HUMAN: 0.10},
        "happy": {ASK: 0.05, KB: 0.10},
    },
    "channel": {
        "email": {KB: 0.15, ASK: -0.15},
        "phone": {ASK: 0.15, KB: -0.25, BILLING: 0.05},
    },
    "plan": {
        "free": {DISCOUNT: -0.15, BILLING: -0.10},
        "enterprise": {DISCOUNT: -0.25, BILLING: 0.15, HUMAN: 0.05, KB: -0.10},
    },
    "tenure": {
        "new": {REFUND: 0.15, DISCOUNT: -0.10},  # refund abuse: why the safety rule exists
        "loyal": {DISCOUNT: 0.15, ASK: 0.05},
    },
    "amount_band": {
        "small": {REFUND: 0.10, BILLING: -0.15},
        "large": {BILLING: 0.15, ASK: -0.10},
    },
}
# … by each earlier contact about the same issue …
PER_PRIOR_CONTACT = {HUMAN: 0.04, ASK: -0.05, KB: -0.05}
# … and by a few intent-specific effects.
INTENT_SHIFT = {
    ("cancel_subscription", "tenure", "loyal"): {DISCOUNT: 0.15},
    ("login_problem", "channel", "phone"): {ASK: 0.10},
}
LOW, HIGH = 0.02, 0.95

ESCALATE_IF_UNRESOLVED = {"angry": 0.5, "neutral": 0.2, "happy": 0.05}
RATED = 0.4
# P(rating = 1..5 | resolved or not): noisy, overlapping, as human ratings are.
RATING_IF_RESOLVED = (0.02, 0.03, 0.10, 0.35, 0.50)
RATING_IF_UNRESOLVED = (0.35, 0.30, 0.20, 0.10, 0.05)
W_RESOLVED, W_ESCALATED, W_CSAT = 0.7, -0.5, 0.3

# Luck: which uniform decides what.
U_RESOLVE, U_ESCALATE, U_RATED, U_RATING = range(4)

# SquareCB under a 0.2 cap with γ = 50·√t, and VW's default decaying learning rate from 0.5
# (the world here does not drift): tuned on seeds 0-3, where it learned fastest.
EXPLORATION = {"gamma_scale": 50.0, "gamma_exponent": 0.5}
VW_ARGS = "--cb_explore_adf -q ia -q ca --cubic ica -l 0.5"

REFUND_MIN_AGE_DAYS = 30
REFUND_MAX_AMOUNT = 200.0
SAFETY_RULE = {
    "name": "refund_limits",
    "actions": [REFUND],
    "deny_when": "context.account_age_days < 30.0 || context.amount > 200.0",
    "reason": "refunds need 30 days of tenure and at most 200",
}


def _pick(rng: random.Random, weights: Mapping[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _number(situation: Situation, name: str) -> float:
    value = situation.context[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"context[{name!r}] is {value!r}, not a number")
    return float(value)


def _scaled_rating_mean(distribution: tuple[float, ...]) -> float:
    return sum(p * (i / 4) for i, p in enumerate(distribution))


def _rating(distribution: tuple[float, ...], u: float) -> int:
    total = 0.0
    for i, p in enumerate(distribution):
        total += p
        if u < total:
            return i + 1
    return len(distribution)


class SupportScenario(Scenario):
    name = "support"
    policy = "simulate.support"
    actions = ACTIONS
    fallback = HUMAN
    default_rounds = 10000
    default_delay = 20
    default_exploring = Exploring("squarecb", 0.2)
    luck_size = 4

    def situation(self, rng: random.Random) -> Situation:
        intent = _pick(rng, INTENTS)
        plan = _pick(rng, PLANS)
        if rng.random() < 0.15:
            age = float(rng.randint(1, REFUND_MIN_AGE_DAYS - 1))
        else:
            age = float(round(math.exp(rng.uniform(math.log(30), math.log(2500)))))
        if intent in MONEY_INTENTS:
            amount = round(math.exp(rng.uniform(math.log(5), math.log(600))), 2)
        else:
            amount = MONTHLY_PRICE[plan]
        context = {
            "account_age_days": age,
            "tenure": "new" if age < 30 else "regular" if age <= 365 else "loyal",
            "plan": plan,
            "amount": amount,
            "amount_band": "small" if amount < 50 else "medium" if amount <= 200 else "large",
            "sentiment": _pick(rng, SENTIMENTS),
            "channel": _pick(rng, CHANNELS),
            "prior_contacts": float(min(int(rng.expovariate(1.2)), 5)),
        }
        return Situation(intent, context)

    def allowed(self, situation: Situation, action: str) -> bool:
        if action != REFUND:
            return True
        age = _number(situation, "account_age_days")
        amount = _number(situation, "amount")
        return age >= REFUND_MIN_AGE_DAYS and amount <= REFUND_MAX_AMOUNT

    def resolve_probability(self, situation: Situation, action: str) -> float:
        ctx = situation.context
        p = BASE[situation.intent][action]
        for feature, shifts in SHIFT.items():
            p += shifts.get(str(ctx[feature]), {}).get(action, 0.0)
        p += PER_PRIOR_CONTACT.get(action, 0.0) * _number(situation, "prior_contacts")
        for (intent, feature, value), shift in INTENT_SHIFT.items():
            if situation.intent == intent and ctx[feature] == value:
                p += shift.get(action, 0.0)
        return min(max(p, LOW), HIGH)

    def _escalation_probability(self, situation: Situation, action: str, resolved: float) -> float:
        if action == HUMAN:
            return 1.0
        return (1.0 - resolved) * ESCALATE_IF_UNRESOLVED[str(situation.context["sentiment"])]

    def expected_reward(self, situation: Situation, action: str) -> float:
        p = self.resolve_probability(situation, action)
        rating = p * _scaled_rating_mean(RATING_IF_RESOLVED)
        rating += (1 - p) * _scaled_rating_mean(RATING_IF_UNRESOLVED)
        return (
            W_RESOLVED * p
            + W_ESCALATED * self._escalation_probability(situation, action, p)
            + W_CSAT * RATED * rating
        )

    def outcome(self, situation: Situation, action: str, luck: Luck) -> Outcome:
        u = luck.values
        resolved = u[U_RESOLVE] < self.resolve_probability(situation, action)
        escalated = u[U_ESCALATE] < self._escalation_probability(situation, action, resolved)
        signals = {"resolved": float(resolved), "escalated": float(escalated)}
        reward = W_RESOLVED * resolved + W_ESCALATED * escalated
        if u[U_RATED] < RATED:
            dist = RATING_IF_RESOLVED if resolved else RATING_IF_UNRESOLVED
            csat = _rating(dist, u[U_RATING])
            signals["csat"] = float(csat)
            reward += W_CSAT * (csat - 1) / 4
        return Outcome(reward, signals=signals)

    def rule(self, situation: Situation) -> str:
        if situation.context["sentiment"] == "angry":
            return HUMAN
        return {
            "billing_dispute": BILLING,
            "refund_request": REFUND if self.allowed(situation, REFUND) else BILLING,
            "login_problem": KB,
            "cancel_subscription": DISCOUNT,
            "technical_issue": KB,
        }[situation.intent]

    def policy_config(self, exploring: Exploring) -> dict[str, Any]:
        return {
            "actions": [{"id": a, "features": {"kind": ACTION_KIND[a]}} for a in ACTIONS],
            "fallback_action": HUMAN,
            "exploration": {
                "algorithm": exploring.algorithm,
                "epsilon": exploring.epsilon,
                "max_epsilon": exploring.epsilon,
                **EXPLORATION,
            },
            "safety": [SAFETY_RULE],
            "reward": {
                "wait": "10m",
                "default": 0.0,
                "aggregation": "earliest",
                "clip": [-1, 1],
                "signals": {
                    "resolved": {"weight": W_RESOLVED},
                    "escalated": {"weight": W_ESCALATED},
                    "csat": {"weight": W_CSAT, "range": [1, 5]},
                },
            },
            "vw_args": VW_ARGS,
            "mode": "online",
            "seed": 0,
        }
