"""The engine: runs a decision and a reward, and closes joins when their window ends.

One engine serves every configured policy. It is not thread-safe: a transport calls it from
one thread (the gRPC server's event loop), which also keeps each VW model single-threaded.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from nextbest.policy import exploration, rewards
from nextbest.policy.config import Config, PolicyConfig
from nextbest.policy.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from nextbest.policy.events import (
    ActivationStatus,
    EligibleAction,
    Event,
    JoinStatus,
    ReceivedReward,
    RewardStatus,
)
from nextbest.policy.features import FeatureValue, action_line, shared_line
from nextbest.policy.model import Model
from nextbest.policy.ports import EventStore, Listener
from nextbest.policy.requests import DecideInput, Limits, RewardInput, check_decide, check_reward
from nextbest.policy.safety import CandidateView, Masked, SafetyRules

NOT_A_CANDIDATE = "not among the request's candidate_action_ids"
EXCLUDED = "excluded by the caller"
LEARNING_MODES = frozenset({"online", "apprentice"})
DEFAULT_INTENT_LABEL = "*"
RETRY_CLOSE_AFTER = 1.0  # seconds before a join that could not be logged is tried again


class PolicyRuntime:
    """A policy ready to serve: config, encoded catalog, compiled rules, model."""

    def __init__(self, name: str, config: PolicyConfig, model: Model | None = None) -> None:
        self.name = name
        self.config = config
        self.version = config.version()
        self.catalog: dict[str, EligibleAction] = {
            a.id: _eligible(a.id, dict(a.features), a.explore) for a in config.actions
        }
        self.rules = SafetyRules(config.safety)
        self.model = model if model is not None else Model(config.vw_args)


def _eligible(action_id: str, features: dict[str, FeatureValue], explore: bool) -> EligibleAction:
    return EligibleAction(action_id, features, explore, action_line(action_id, features))


@dataclass(frozen=True, slots=True)
class RewardOutcome:
    status: RewardStatus
    value: float


class Engine:
    """Decide, Reward, Activate, Explain, and the join clock, for every policy."""

    def __init__(
        self,
        config: Config,
        store: EventStore,
        listener: Listener,
        clock: Callable[[], float],
        limits: Limits | None = None,
        models: dict[str, Model] | None = None,
    ) -> None:
        """`models`: recovered models to serve (by policy), instead of empty ones."""
        self.store = store
        self.listener = listener
        self.clock = clock
        self.limits = limits or Limits()
        self.policies: dict[str, PolicyRuntime] = {}
        self.reload(config, models)

    # -- configuration -------------------------------------------------------------------

    def reload(self, config: Config, models: dict[str, Model] | None = None) -> None:
        """Swap in a new configuration, keeping each model whose vw_args did not change
        (policies without a model get `models[name]`, if given, or an empty one).

        Everything is built before anything is swapped: a config that fails (e.g. VW refuses
        its arguments) raises ConfigError and the running configuration stays.
        """
        fresh: dict[str, PolicyRuntime] = {}
        kept: set[int] = set()
        try:
            for name, policy in config.policies.items():
                old = self.policies.get(name)
                same = old is not None and old.config.vw_args == policy.vw_args
                model = old.model if old is not None and same else (models or {}).get(name)
                if model is not None:
                    kept.add(id(model))
                fresh[name] = PolicyRuntime(name, policy, model)
        except Exception:
            for runtime in fresh.values():
                if id(runtime.model) not in kept:
                    runtime.model.close()
            raise
        replaced = [rt.model for rt in self.policies.values() if id(rt.model) not in kept]
        self.policies = fresh
        self.config = config
        for model in replaced:
            model.close()
        for name, runtime in fresh.items():
            exp = runtime.config.exploration
            values = [(DEFAULT_INTENT_LABEL, exp.epsilon_for(""))]
            values += [(intent, exp.epsilon_for(intent)) for intent in exp.per_intent]
            self.listener.epsilons(name, values)

    def policy(self, name: str, where: str = "policy") -> PolicyRuntime:
        runtime = self.policies.get(name)
        if runtime is None:
            raise NotFound(f"unknown policy {name!r}", where)
        return runtime

    # -- Decide ----------------------------------------------------------------------------

    def decide(self, req: DecideInput) -> Event:
        """Validate, mask, score, explore, sample; keep the event pending for its join."""
        check_decide(req, self.limits)
        if req.event_id:
            existing = self.store.get(req.event_id)
            if existing is not None:
                if existing.policy != req.policy:
                    raise AlreadyExists(
                        f"event {req.event_id!r} belongs to policy {existing.policy!r}",
                        "event_id",
                    )
                return existing  # a retried call: the same decision, not a second event
        rt = self.policy(req.policy)
        candidates, masked = self._candidates(rt, req)
        views = [CandidateView(a.id, a.features) for a in candidates]
        masked_by_rules = rt.rules.mask(req.intent, req.context, views)
        masked.extend(masked_by_rules)
        denied = {m.action_id for m in masked_by_rules}
        eligible = [a for a in candidates if a.id not in denied]
        fallback = False
        if not eligible:
            eligible = [self._fallback(rt, req, masked)]
            fallback = True
        return self._choose(rt, req, eligible, masked, fallback)

    def _candidates(
        self, rt: PolicyRuntime, req: DecideInput
    ) -> tuple[list[EligibleAction], list[Masked]]:
        """The actions this request may get, in catalog-then-request order, and those masked."""
        inline: dict[str, EligibleAction] = {}
        for i, action in enumerate(req.actions):
            if action.id in rt.catalog:
                raise InvalidArgument(
                    f"{action.id!r} is a catalog action of {rt.name!r}; inline actions are new",
                    f"actions[{i}].id",
                )
            inline[action.id] = _eligible(action.id, action.features, True)
        known = rt.catalog.keys() | inline.keys()
        for field_name, ids in (
            ("candidate_action_ids", req.candidate_action_ids),
            ("excluded_action_ids", req.excluded_action_ids),
        ):
            for i, action_id in enumerate(ids):
                if action_id not in known:
                    raise InvalidArgument(f"unknown action {action_id!r}", f"{field_name}[{i}]")
        if req.baseline_action_id and req.baseline_action_id not in known:
            raise InvalidArgument(
                f"unknown action {req.baseline_action_id!r}", "baseline_action_id"
            )
        masked: list[Masked] = []
        everything = [*rt.catalog.values(), *inline.values()]
        if req.candidate_action_ids:
            wanted = set(req.candidate_action_ids) | inline.keys()
            for a in everything:
                if a.id not in wanted:
                    masked.append(Masked(a.id, NOT_A_CANDIDATE))
            everything = [a for a in everything if a.id in wanted]
        if req.excluded_action_ids:
            excluded = set(req.excluded_action_ids)
            masked.extend(Masked(a.id, EXCLUDED) for a in everything if a.id in excluded)
            everything = [a for a in everything if a.id not in excluded]
        return everything, masked

    def _fallback(
        self, rt: PolicyRuntime, req: DecideInput, masked: list[Masked]
    ) -> EligibleAction:
        """Every candidate is masked: the fallback, unless a rule or the caller forbids it."""
        rules = sorted({m.rule for m in masked if m.rule})
        summary = f"every candidate action is masked (rules: {', '.join(rules) or 'none'})"
        name = rt.config.fallback_action
        if name is None:
            raise FailedPrecondition(f"{summary} and policy {rt.name!r} has no fallback_action")
        if name in req.excluded_action_ids:
            raise FailedPrecondition(f"{summary} and the fallback_action {name!r} is excluded")
        for m in masked:
            if m.action_id == name and m.rule:
                raise FailedPrecondition(
                    f"{summary} and the fallback_action {name!r} is masked by rule {m.rule!r}"
                )
        action = rt.catalog[name]
        if any(m.action_id == name for m in masked):  # only "not a candidate": check the rules
            denied = rt.rules.mask(
                req.intent, req.context, [CandidateView(action.id, action.features)]
            )
            if denied:
                raise FailedPrecondition(
                    f"{summary} and the fallback_action {name!r} is masked by rule "
                    f"{denied[0].rule!r}"
                )
        return action

    def _choose(
        self,
        rt: PolicyRuntime,
        req: DecideInput,
        eligible: list[EligibleAction],
        masked: list[Masked],
        fallback: bool,
    ) -> Event:
        shared = shared_line(req.intent, req.context)
        costs = rt.model.costs([shared, *(a.line for a in eligible)])
        greedy = exploration.greedy_index(costs)
        event_id = req.event_id or uuid.uuid4().hex
        mode = rt.config.mode
        epsilon = 0.0
        if fallback:
            chosen = 0
            pmf = [1.0]
        elif mode == "apprentice":
            ids = [a.id for a in eligible]
            chosen = ids.index(req.baseline_action_id) if req.baseline_action_id in ids else 0
            pmf = [0.0] * len(eligible)
            pmf[chosen] = 1.0
        elif mode == "frozen":
            chosen = greedy
            pmf = exploration.epsilon_greedy(greedy, [False] * len(eligible), 0.0)
        else:
            spec = rt.config.exploration
            epsilon = spec.epsilon_for(req.intent)
            explorable = [a.explore for a in eligible]
            if spec.algorithm == "squarecb":
                gamma = exploration.squarecb_gamma(
                    spec.gamma_scale, spec.gamma_exponent, rt.model.learned
                )
                pmf = exploration.squarecb(costs, greedy, explorable, epsilon, gamma)
            else:
                pmf = exploration.epsilon_greedy(greedy, explorable, epsilon)
            u = exploration.draw(rt.config.seed, rt.name, event_id)
            chosen = exploration.sample(pmf, u)
        now = self.clock()
        event = Event(
            event_id=event_id,
            policy=rt.name,
            intent=req.intent,
            context=req.context,
            shared=shared,
            eligible=eligible,
            pmf=pmf,
            scores=[-c for c in costs],
            chosen=chosen,
            greedy=greedy,
            explored=chosen != greedy and mode != "apprentice",
            fallback=fallback,
            masked=masked,
            epsilon=epsilon,
            mode=mode,
            model_version=rt.model.version,
            config_version=rt.version,
            decided_at=now,
            deadline=now + rt.config.reward.wait,
            baseline_action_id=req.baseline_action_id,
            defer_activation=req.defer_activation,
        )
        self.store.add(event)
        self.listener.decided(event)
        return event

    # -- Reward, Activate, Explain -----------------------------------------------------------

    def _event(self, event_id: str) -> Event:
        event = self.store.get(event_id)
        if event is None:
            raise NotFound(
                f"unknown event {event_id!r} (never decided, or past retention)", "event_id"
            )
        return event

    def reward(self, req: RewardInput) -> RewardOutcome:
        """Join a reward to its event; learn at once when the join can no longer change."""
        check_reward(req, self.limits)
        event = self._event(req.event_id)
        rt = self.policies.get(event.policy)
        if rt is None:
            raise FailedPrecondition(f"policy {event.policy!r} is no longer configured", "event_id")
        spec = rt.config.reward
        if req.reward_id:
            for previous in event.rewards:
                if previous.reward_id == req.reward_id:
                    return RewardOutcome(RewardStatus.DUPLICATE, previous.value)
        if req.value is not None:
            value = rewards.clip(spec, req.value)
        else:
            value = rewards.from_signals(spec, req.signals)
        now = self.clock()
        pending = event.join_status is JoinStatus.PENDING and now <= event.deadline
        status = RewardStatus.ACCEPTED if pending else RewardStatus.LATE
        received = ReceivedReward(req.reward_id, value, dict(req.signals), status, now)
        self.store.add_reward(event, received)
        self.listener.rewarded(event, status, value)
        if status is RewardStatus.ACCEPTED and self._settled(rt, event):
            self._close_now(event)
        return RewardOutcome(status, value)

    def activate(self, event_id: str) -> ActivationStatus:
        """Mark a deferred event as acted on, so that its join is learned."""
        if not event_id:
            raise InvalidArgument("must not be empty", "event_id")
        event = self._event(event_id)
        if not event.defer_activation or event.activated:
            return ActivationStatus.ALREADY_ACTIVE
        if event.join_status is not JoinStatus.PENDING or self.clock() > event.deadline:
            return ActivationStatus.LATE
        self.store.activate(event)
        rt = self.policies.get(event.policy)
        if rt is not None and event.accepted_values() and self._settled(rt, event):
            self._close_now(event)
        return ActivationStatus.ACTIVATED

    def explain(self, event_id: str) -> Event:
        if not event_id:
            raise InvalidArgument("must not be empty", "event_id")
        return self._event(event_id)

    # -- joins ---------------------------------------------------------------------------------

    @staticmethod
    def _settled(rt: PolicyRuntime, event: Event) -> bool:
        """With `earliest`, the first accepted reward is final: no need to wait for the window."""
        return rt.config.reward.aggregation == "earliest" and (
            not event.defer_activation or event.activated
        )

    def close_due(self, now: float | None = None, limit: int = 1000) -> int:
        """Close the joins whose window has ended; returns how many were handled."""
        now = self.clock() if now is None else now
        due = self.store.due(now, limit)
        for event in due:
            self._close_now(event, now)
        return len(due)

    def _close_now(self, event: Event, now: float | None = None) -> None:
        """Close a join; if that cannot be logged now, it stays pending and the join clock
        tries again soon (what settled it, a reward or an activation, is already kept)."""
        try:
            self._close(event)
        except Unavailable:
            now = self.clock() if now is None else now
            self.store.reschedule(event, now + RETRY_CLOSE_AFTER)

    def _close(self, event: Event) -> None:
        """Join: aggregate, log the joined event, then learn it (log first, so a crash in
        between is repaired by replaying the log, never by learning an event twice)."""
        rt = self.policies.get(event.policy)
        learn = False
        if rt is None:  # the policy was removed by a reload: nothing left to learn into
            event.join_status = JoinStatus.SKIPPED
        else:
            spec = rt.config.reward
            values = event.accepted_values()
            joined = (
                rewards.clip(spec, rewards.aggregate(spec.aggregation, values))
                if values
                else spec.default
            )
            event.joined_reward = joined
            learn = rt.config.mode in LEARNING_MODES and (
                not event.defer_activation or event.activated
            )
            event.join_status = JoinStatus.LEARNED if learn else JoinStatus.SKIPPED
        try:
            self.store.close(event)
        except Unavailable:
            event.join_status, event.joined_reward = JoinStatus.PENDING, None
            raise
        if learn and rt is not None:
            rt.model.learn(event.vw_lines(), event.chosen, -joined, event.probability)
        self.listener.joined(event)

    def models(self) -> dict[str, Model]:
        return {name: rt.model for name, rt in self.policies.items()}

    def pending_counts(self) -> dict[str, int]:
        return self.store.pending_counts()

    def close(self) -> None:
        for runtime in self.policies.values():
            runtime.model.close()
