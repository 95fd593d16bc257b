"""The decision and reward semantics, on the engine with a fake clock (no network)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from nextbest.policy.config import Config
from nextbest.policy.engine import EXCLUDED, NOT_A_CANDIDATE, Engine
from nextbest.policy.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
)
from nextbest.policy.events import ActivationStatus, Event, JoinStatus, RewardStatus
from nextbest.policy.ports import NullListener, run_now
from nextbest.policy.requests import DecideInput, InlineAction, Limits, RewardInput
from nextbest.store.memory import MemoryStore
from tests.conftest import make_config, support_policy

OK_REFUND = {"account_age_days": 400.0, "amount": 50.0}
NEW_ACCOUNT = {"account_age_days": 3.0, "amount": 50.0}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def engine_for(config: Config) -> tuple[Engine, Clock]:
    clock = Clock()
    return Engine(config, MemoryStore(), NullListener(), clock), clock


@pytest.fixture
def engine(support_config: Config) -> Engine:
    return engine_for(support_config)[0]


def decide(engine: Engine, **kw: Any) -> Any:
    kw.setdefault("policy", "support.next_step")
    kw.setdefault("intent", "billing_dispute")
    kw.setdefault("context", dict(OK_REFUND))
    return run_now(engine.decide(DecideInput(**kw)))


def test_a_decision_carries_pmf_probability_and_versions(engine: Engine) -> None:
    event = decide(engine, event_id="e1")
    assert event.action_id in {"ask_details", "offer_refund", "transfer_billing", "escalate_human"}
    assert sum(event.pmf) == pytest.approx(1.0)
    assert event.probability == event.pmf[event.chosen]
    assert event.epsilon == 0.2  # the billing_dispute override
    assert event.model_version == "0"
    assert event.config_version == engine.policies["support.next_step"].version
    assert run_now(engine.explain(event.event_id)).join_status is JoinStatus.PENDING


def test_safety_rule_masks_and_reports(engine: Engine) -> None:
    for i in range(200):
        event = decide(engine, event_id=f"e{i}", context=dict(NEW_ACCOUNT))
        assert event.action_id != "offer_refund"
        assert [(m.action_id, m.rule) for m in event.masked] == [("offer_refund", "refund_limits")]


def test_caller_exclusions_and_candidates_are_masked_with_reasons(engine: Engine) -> None:
    event = decide(
        engine,
        candidate_action_ids=["ask_details", "offer_refund", "transfer_billing"],
        excluded_action_ids=["transfer_billing"],
    )
    reasons = {m.action_id: m.reason for m in event.masked}
    assert reasons == {"escalate_human": NOT_A_CANDIDATE, "transfer_billing": EXCLUDED}
    assert {a.id for a in event.eligible} == {"ask_details", "offer_refund"}


def test_all_masked_returns_the_fallback(engine: Engine) -> None:
    event = decide(
        engine,
        context=dict(NEW_ACCOUNT),
        candidate_action_ids=["offer_refund", "ask_details"],
        excluded_action_ids=["ask_details"],
    )
    assert event.fallback
    assert event.action_id == "escalate_human"
    assert event.probability == 1.0


def test_all_masked_and_fallback_excluded_fails_naming_the_rules(engine: Engine) -> None:
    with pytest.raises(
        FailedPrecondition,
        match=r"rules: refund_limits.*fallback_action "
        r"'escalate_human' is excluded",
    ):
        decide(
            engine,
            context=dict(NEW_ACCOUNT),
            candidate_action_ids=["offer_refund"],
            excluded_action_ids=["escalate_human"],
        )


def test_no_fallback_configured_fails() -> None:
    engine, _ = engine_for(make_config(p=support_policy(fallback_action=None)))
    with pytest.raises(FailedPrecondition, match="has no fallback_action"):
        decide(engine, policy="p", context=dict(NEW_ACCOUNT), candidate_action_ids=["offer_refund"])


def test_fallback_masked_by_a_rule_fails() -> None:
    rules = [
        *support_policy()["safety"],
        {"name": "no_humans", "actions": ["escalate_human"], "deny_when": "true", "reason": "x"},
    ]
    engine, _ = engine_for(make_config(p=support_policy(safety=rules)))
    with pytest.raises(FailedPrecondition, match="masked by rule 'no_humans'"):
        decide(engine, policy="p", context=dict(NEW_ACCOUNT), candidate_action_ids=["offer_refund"])


def test_exploration_is_bounded_and_skips_no_explore_actions(engine: Engine) -> None:
    # Untrained: all scores tie, so ask_details (first) is greedy; offer_refund must never
    # be explored, and the non-greedy share must stay near ε = 0.1 for other intents.
    counts: Counter[str] = Counter()
    n = 4000
    for i in range(n):
        event = decide(engine, event_id=f"x{i}", intent="other")
        assert event.eligible[event.greedy].id == "ask_details"
        assert sum(p for j, p in enumerate(event.pmf) if j != event.greedy) <= 0.1 + 1e-12
        counts[event.action_id] += 1
    assert counts["offer_refund"] == 0
    explored = n - counts["ask_details"]
    assert 0.07 * n < explored < 0.13 * n


def test_same_event_id_returns_the_same_decision(engine: Engine) -> None:
    first = decide(engine, event_id="same")
    again = decide(engine, event_id="same")
    assert again == first
    with pytest.raises(AlreadyExists):
        run_now(engine.decide(DecideInput(policy="other", intent="x", event_id="same")))


def test_a_used_event_id_with_another_request_is_refused_not_replayed(engine: Engine) -> None:
    """Agents that use a conversation id as the event id must not get a stored refund."""
    first = decide(engine, event_id="conv-1", candidate_action_ids=["offer_refund"])
    assert first.action_id == "offer_refund"
    for change in (
        {"context": NEW_ACCOUNT},
        {"intent": "something else"},
        {"excluded_action_ids": ["ask_details"]},
        {"candidate_action_ids": ["offer_refund", "ask_details"]},
        {"actions": [InlineAction("new_tool")]},
    ):
        kw = {"event_id": "conv-1", "candidate_action_ids": ["offer_refund"], **change}
        with pytest.raises(AlreadyExists, match="another request") as info:
            decide(engine, **kw)
        assert info.value.field == "event_id"
    retry = decide(engine, event_id="conv-1", candidate_action_ids=["offer_refund"])
    assert retry == first


def test_same_event_id_reproduces_the_choice_across_engines(support_config: Config) -> None:
    a, _ = engine_for(support_config)
    b, _ = engine_for(support_config)
    for i in range(100):
        assert decide(a, event_id=f"r{i}").action_id == decide(b, event_id=f"r{i}").action_id


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"policy": ""}, "policy"),
        ({"intent": ""}, "intent"),
        ({"context": {"x": float("nan")}}, "context['x']"),
        ({"context": {"x": float("inf")}}, "context['x']"),
        ({"context": {"x": 1e300}}, "context['x']"),
        ({"context": {"": 1.0}}, "context key"),
        ({"context": {f"k{i}": 1.0 for i in range(300)}}, "context"),
        ({"context": {"t": "x" * 5000}}, "context['t']"),
        ({"candidate_action_ids": ["ghost"]}, "candidate_action_ids[0]"),
        ({"excluded_action_ids": ["ask_details", "ghost"]}, "excluded_action_ids[1]"),
        ({"baseline_action_id": "ghost"}, "baseline_action_id"),
        ({"actions": [InlineAction("ask_details")]}, "actions[0].id"),
        ({"actions": [InlineAction("a"), InlineAction("a")]}, "actions[1].id"),
        ({"actions": [InlineAction(f"a{i}") for i in range(300)]}, "actions"),
        ({"event_id": "has space"}, "event_id"),
        ({"event_id": "e" * 200}, "event_id"),
    ],
)
def test_bad_requests_name_the_field(engine: Engine, kw: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        decide(engine, **kw)
    assert err.value.field == field


def test_unknown_policy_is_not_found(engine: Engine) -> None:
    with pytest.raises(NotFound) as err:
        decide(engine, policy="nope")
    assert err.value.field == "policy"


def test_inline_actions_are_scored_and_can_be_chosen() -> None:
    engine, _ = engine_for(
        make_config(tools=support_policy(actions=[], fallback_action=None, safety=[]))
    )
    chosen = set()
    for i in range(300):
        event = decide(
            engine,
            policy="tools",
            event_id=f"t{i}",
            actions=[InlineAction("search", {"cost": 1.0}), InlineAction("calc", {"cost": 2.0})],
        )
        chosen.add(event.action_id)
    assert chosen == {"search", "calc"}


# -- rewards and joins --------------------------------------------------------------------


def test_reward_signals_are_computed_and_kept(engine: Engine) -> None:
    event = decide(engine)
    outcome = run_now(
        engine.reward(RewardInput(event.event_id, signals={"csat": 5, "resolved": 1}))
    )
    assert outcome.status is RewardStatus.ACCEPTED
    assert outcome.value == 1.0  # 0.5 + 1.0 clipped
    assert run_now(engine.explain(event.event_id)).rewards[0].signals == {"csat": 5, "resolved": 1}


def test_earliest_learns_on_the_first_reward(engine: Engine) -> None:
    event = decide(engine)
    run_now(engine.reward(RewardInput(event.event_id, value=0.7)))
    assert run_now(engine.explain(event.event_id)).join_status is JoinStatus.LEARNED
    assert run_now(engine.explain(event.event_id)).joined_reward == 0.7
    assert engine.policies["support.next_step"].model.version == "1"
    late = run_now(engine.reward(RewardInput(event.event_id, value=1.0)))
    assert late.status is RewardStatus.LATE
    assert engine.policies["support.next_step"].model.version == "1"


@pytest.mark.parametrize(
    ("aggregation", "joined"), [("sum", 0.7), ("mean", 0.7 / 3), ("last", 0.6)]
)
def test_other_aggregations_wait_for_the_window(aggregation: str, joined: float) -> None:
    reward = {**support_policy()["reward"], "aggregation": aggregation, "wait": "1m"}
    engine, clock = engine_for(make_config(p=support_policy(reward=reward)))
    event = decide(engine, policy="p")
    for v in (0.5, -0.4, 0.6, 0.9):
        if v == 0.9:
            clock.now += 61
        status = run_now(engine.reward(RewardInput(event.event_id, value=v))).status
        assert status is (RewardStatus.LATE if v == 0.9 else RewardStatus.ACCEPTED)
    assert run_now(engine.explain(event.event_id)).join_status is JoinStatus.PENDING
    assert run_now(engine.settle_due()) == 1
    assert run_now(engine.explain(event.event_id)).join_status is JoinStatus.LEARNED
    assert run_now(engine.explain(event.event_id)).joined_reward == pytest.approx(joined)


def test_no_reward_by_the_window_end_learns_the_default(engine: Engine) -> None:
    event = decide(engine)
    assert run_now(engine.settle_due(now=event.deadline - 1)) == 0
    assert run_now(engine.settle_due(now=event.deadline)) == 1
    assert run_now(engine.explain(event.event_id)).join_status is JoinStatus.LEARNED
    assert run_now(engine.explain(event.event_id)).joined_reward == 0.0


def test_duplicate_reward_id_is_not_applied_twice() -> None:
    reward = {**support_policy()["reward"], "aggregation": "sum"}
    engine, clock = engine_for(make_config(p=support_policy(reward=reward)))
    event = decide(engine, policy="p")
    assert run_now(
        engine.reward(RewardInput(event.event_id, value=0.4, reward_id="r1"))
    ).status is (RewardStatus.ACCEPTED)
    dup = run_now(engine.reward(RewardInput(event.event_id, value=0.9, reward_id="r1")))
    assert (dup.status, dup.value) == (RewardStatus.DUPLICATE, 0.4)
    clock.now = event.deadline
    run_now(engine.settle_due())
    assert run_now(engine.explain(event.event_id)).joined_reward == 0.4


def test_unknown_event_is_not_found(engine: Engine) -> None:
    with pytest.raises(NotFound):
        run_now(engine.reward(RewardInput("nope", value=1.0)))


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"event_id": ""}, "event_id"),
        ({"event_id": "e"}, "value"),
        ({"event_id": "e", "value": 1.0, "signals": {"resolved": 1.0}}, "signals"),
        ({"event_id": "e", "value": float("nan")}, "value"),
        ({"event_id": "e", "signals": {"resolved": float("inf")}}, "signals['resolved']"),
    ],
)
def test_bad_rewards_name_the_field(engine: Engine, kw: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        run_now(engine.reward(RewardInput(**kw)))
    assert err.value.field == field


def test_deferred_event_is_learned_only_when_activated(engine: Engine) -> None:
    never = decide(engine, defer_activation=True)
    run_now(engine.reward(RewardInput(never.event_id, value=1.0)))
    assert (
        run_now(engine.explain(never.event_id)).join_status is JoinStatus.PENDING
    )  # held until activation or the window's end
    run_now(engine.settle_due(now=never.deadline))
    assert run_now(engine.explain(never.event_id)).join_status is JoinStatus.SKIPPED
    assert run_now(engine.activate(never.event_id)) is ActivationStatus.LATE

    active = decide(engine, defer_activation=True)
    run_now(engine.reward(RewardInput(active.event_id, value=1.0)))
    assert run_now(engine.activate(active.event_id)) is ActivationStatus.ACTIVATED
    assert run_now(engine.explain(active.event_id)).join_status is JoinStatus.LEARNED
    assert run_now(engine.activate(active.event_id)) is ActivationStatus.ALREADY_ACTIVE


def test_apprentice_returns_the_baseline_and_learns_it() -> None:
    engine, _ = engine_for(make_config(p=support_policy(mode="apprentice")))
    event = decide(engine, policy="p", baseline_action_id="transfer_billing")
    assert (event.action_id, event.probability, event.explored) == ("transfer_billing", 1.0, False)
    run_now(engine.reward(RewardInput(event.event_id, value=1.0)))
    assert run_now(engine.explain(event.event_id)).join_status is JoinStatus.LEARNED


def test_apprentice_never_returns_a_masked_baseline() -> None:
    engine, _ = engine_for(make_config(p=support_policy(mode="apprentice")))
    event = decide(engine, policy="p", baseline_action_id="offer_refund", context=NEW_ACCOUNT)
    assert event.action_id != "offer_refund"


def test_frozen_exploits_and_does_not_learn() -> None:
    engine, _ = engine_for(make_config(p=support_policy(mode="frozen")))
    for i in range(50):
        event = decide(engine, policy="p", event_id=f"f{i}")
        assert (event.probability, event.explored) == (1.0, False)
        run_now(engine.reward(RewardInput(event.event_id, value=1.0)))
        assert run_now(engine.explain(event.event_id)).join_status is JoinStatus.SKIPPED
    assert engine.policies["p"].model.version == "0"


def test_logging_only_explores_but_does_not_learn() -> None:
    engine, _ = engine_for(make_config(p=support_policy(mode="logging_only")))
    explored = 0
    for i in range(300):
        event = decide(engine, policy="p", event_id=f"l{i}")
        explored += event.explored
        run_now(engine.reward(RewardInput(event.event_id, value=1.0)))
        assert run_now(engine.explain(event.event_id)).join_status is JoinStatus.SKIPPED
    assert explored > 0


def test_the_model_learns_the_best_action(engine: Engine) -> None:
    """offer_refund pays for billing disputes, ask_details for login problems."""
    best = {"billing_dispute": "offer_refund", "login_problem": "ask_details"}
    for i in range(1500):
        intent = "billing_dispute" if i % 2 else "login_problem"
        event = decide(engine, intent=intent, event_id=f"L{i}")
        run_now(
            engine.reward(
                RewardInput(event.event_id, value=1.0 if event.action_id == best[intent] else 0.0)
            )
        )
    for intent, action in best.items():
        event = decide(engine, intent=intent, event_id=f"probe-{intent}")
        assert event.eligible[event.greedy].id == action


def test_reload_keeps_the_model_when_vw_args_are_unchanged(engine: Engine) -> None:
    event = decide(engine)
    run_now(engine.reward(RewardInput(event.event_id, value=1.0)))
    engine.reload(make_config(support__next_step=support_policy(exploration={"epsilon": 0.05})))
    runtime = engine.policies["support.next_step"]
    assert runtime.model.version == "1"
    assert decide(engine, intent="x").epsilon == 0.05


# -- hostile input and faults -------------------------------------------------------------


def test_a_feature_bomb_is_refused_before_vw_builds_it(engine: Engine) -> None:
    """Within every per-field limit, but crossed by -q ca --cubic ica it is ~10^9 features."""
    texts = [f"t{j}" for j in range(64)]
    context: dict[str, Any] = {f"k{i}": list(texts) for i in range(256)}
    actions = [InlineAction(f"x{i}", {f"f{j}": list(texts) for j in range(4)}) for i in range(4)]
    limits = Limits(max_request_chars=10**9)
    bomb = Engine(engine.config, MemoryStore(), NullListener(), Clock(), limits)
    with pytest.raises(InvalidArgument, match="at most 4096 allowed") as info:
        decide(bomb, context=context, actions=actions)
    assert info.value.field == "context"
    wide = Engine(
        engine.config,
        MemoryStore(),
        NullListener(),
        Clock(),
        Limits(max_request_chars=10**9, max_example_features=10**6),
    )
    with pytest.raises(InvalidArgument, match="interaction features") as info:
        decide(wide, context=context, actions=actions)


def test_a_request_too_large_in_bytes_is_refused(engine: Engine) -> None:
    context: dict[str, Any] = {f"k{i}": "v" * 1000 for i in range(100)}
    with pytest.raises(InvalidArgument, match="characters") as info:
        decide(engine, context=context)
    assert info.value.field == "context"


def test_rewards_per_event_are_capped() -> None:
    reward = {**support_policy()["reward"], "aggregation": "sum"}
    config = make_config(p=support_policy(reward=reward))
    engine = Engine(config, MemoryStore(), NullListener(), Clock(), Limits(max_rewards_per_event=3))
    event = decide(engine, policy="p")
    for i in range(3):
        run_now(engine.reward(RewardInput(event.event_id, value=0.1, reward_id=f"r{i}")))
    dup = run_now(engine.reward(RewardInput(event.event_id, value=0.1, reward_id="r0")))
    assert dup.status is RewardStatus.DUPLICATE  # a retry of a kept reward still answers
    with pytest.raises(ResourceExhausted, match="at most 3") as info:
        run_now(engine.reward(RewardInput(event.event_id, value=0.1, reward_id="r3")))
    assert info.value.field == "event_id"


def test_a_reward_that_computes_to_no_number_is_refused() -> None:
    reward = {
        **support_policy()["reward"],
        "signals": {"up": {"weight": 2.0}, "down": {"weight": -2.0}},
    }
    engine, _ = engine_for(make_config(p=support_policy(reward=reward)))
    event = decide(engine, policy="p")
    with pytest.raises(InvalidArgument, match="finite") as info:
        run_now(engine.reward(RewardInput(event.event_id, signals={"up": 1e308, "down": 1e308})))
    assert info.value.field == "signals"
    assert run_now(engine.explain(event.event_id)).rewards == []


def test_ids_are_checked_before_they_are_echoed(engine: Engine) -> None:
    huge = "x" * 10_000
    for call in (engine.explain, engine.activate):
        with pytest.raises(InvalidArgument, match="at most 128") as info:
            run_now(call(huge))
        assert huge not in str(info.value)


class FlakyStore(MemoryStore):
    """A store whose settle fails for chosen events, the way a bug or a full disk would."""

    def __init__(self) -> None:
        super().__init__()
        self.broken: set[str] = set()

    def settle_now(self, event: Event) -> None:
        if event.event_id in self.broken:
            raise RuntimeError("cannot settle")
        super().settle_now(event)


def test_one_failing_settle_does_not_strand_the_others(support_config: Config) -> None:
    store, clock = FlakyStore(), Clock()
    engine = Engine(support_config, store, NullListener(), clock)
    events = [decide(engine, event_id=f"e{i}") for i in range(6)]
    store.broken.add("e2")
    clock.now = events[-1].deadline
    assert run_now(engine.settle_due()) == 6
    statuses = {e.event_id: run_now(engine.explain(e.event_id)).join_status for e in events}
    assert statuses.pop("e2") is JoinStatus.PENDING
    assert set(statuses.values()) == {JoinStatus.LEARNED}
    model = engine.policies["support.next_step"].model
    assert model.learned == 5  # the failed one was not learned
    store.broken.clear()
    assert run_now(engine.settle_due()) == 0  # retried later, not at once
    clock.now += 1.0
    assert run_now(engine.settle_due()) == 1
    assert run_now(engine.explain("e2")).join_status is JoinStatus.LEARNED
    assert model.learned == 6


def test_learning_follows_the_mode_the_event_was_decided_in() -> None:
    engine, _ = engine_for(make_config(p=support_policy(mode="online")))
    online = decide(engine, policy="p", event_id="online")
    engine.reload(make_config(p=support_policy(mode="frozen")))
    frozen = decide(engine, policy="p", event_id="frozen")
    engine.reload(make_config(p=support_policy(mode="online")))
    run_now(engine.reward(RewardInput(online.event_id, value=1.0)))
    run_now(engine.reward(RewardInput(frozen.event_id, value=1.0)))
    assert (
        run_now(engine.explain("online")).join_status is JoinStatus.LEARNED
    )  # paid-for exploration
    assert run_now(engine.explain("frozen")).join_status is JoinStatus.SKIPPED  # logged with p = 1


def test_a_retry_gets_its_decision_even_when_its_request_can_no_longer_be_decided() -> None:
    """The store checks a caller's event_id as it keeps the event; a retry that fails
    before that (its policy removed by a reload) still gets the decision kept for it, and
    a used id is still refused as the store would refuse it."""
    engine, _ = engine_for(make_config(p=support_policy(), q=support_policy()))
    first = decide(engine, policy="p", event_id="kept")
    engine.reload(make_config(q=support_policy()))
    assert decide(engine, policy="p", event_id="kept") == first
    with pytest.raises(NotFound, match="unknown policy 'p'"):
        decide(engine, policy="p", event_id="new")
    with pytest.raises(AlreadyExists, match="belongs to policy 'p'") as info:
        decide(engine, policy="gone", event_id="kept")
    assert info.value.field == "event_id"
    with pytest.raises(AlreadyExists, match="another request"):
        decide(engine, policy="p", event_id="kept", context=dict(NEW_ACCOUNT))
