"""The engine: runs a decision and a reward; its joins (`policy.joins`) settle them.

One engine serves every configured policy. It is not thread-safe: a transport calls it from
one thread (the gRPC server's event loop), which also keeps each VW model single-threaded.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import orjson

from nextbest.policy import exploration, rewards
from nextbest.policy.config import Config, PolicyConfig
from nextbest.policy.errors import (
    DecisionError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
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
from nextbest.policy.features import (
    FeatureValue,
    action_line,
    count_features,
    interaction_features,
    shared_line,
)
from nextbest.policy.joins import Joins, settled_by, settles_at_once
from nextbest.policy.model import Model
from nextbest.policy.overrides import Overrides, apply
from nextbest.policy.ports import EventStore, Kept, Listener
from nextbest.policy.requests import (
    DecideInput,
    Limits,
    RewardInput,
    check_decide,
    check_event_id,
    check_reward,
)
from nextbest.policy.reuse import retried, used_before
from nextbest.policy.safety import Masked, SafetyRules
from nextbest.policy.vw_args import interactions

NOT_A_CANDIDATE = "not among the request's candidate_action_ids"
EXCLUDED = "excluded by the caller"
DEFAULT_INTENT_LABEL = "*"


class PolicyRuntime:
    """A policy ready to serve: config in force (the file's `file_config` with the live
    overrides on top), encoded catalog, compiled rules, model."""

    def __init__(
        self,
        name: str,
        config: PolicyConfig,
        model: Model | None = None,
        file_config: PolicyConfig | None = None,
        overrides: Overrides | None = None,
    ) -> None:
        self.name = name
        self.file_config = file_config if file_config is not None else config
        self.overrides: Overrides = dict(overrides or {})
        self.config = config
        self.version = config.version()
        self.catalog: dict[str, EligibleAction] = {
            a.id: _eligible(a.id, dict(a.features), a.explore) for a in config.actions
        }
        # VW features per catalog action (its id and its features), for the cost bound
        self.feature_counts = {a.id: 1 + count_features(a.features) for a in config.actions}
        self.rules = SafetyRules(config.safety)
        self.crossings = interactions(config.vw_args)
        self.model = model if model is not None else Model(config.vw_args)


def _eligible(action_id: str, features: dict[str, FeatureValue], explore: bool) -> EligibleAction:
    return EligibleAction(action_id, features, explore, action_line(action_id, features))


def _draft_of(drafts: Sequence[tuple[Event, bool]], event_id: str) -> int | None:
    """Where a caller's event id was decided earlier in a batch (not yet kept)."""
    if event_id:
        for i, (draft, _) in enumerate(drafts):
            if draft.event_id == event_id:
                return i
    return None


def fingerprint(req: DecideInput) -> str:
    """A digest of everything that shapes a decision: an event id is bound to it, so a
    retry gets the stored decision and another request with a used id is refused (it could
    otherwise get an action its own context forbids)."""
    data = orjson.dumps(
        [
            req.policy,
            req.intent,
            req.context,
            req.candidate_action_ids,
            [[a.id, a.features] for a in req.actions],
            req.excluded_action_ids,
            req.baseline_action_id,
            req.defer_activation,
        ],
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.blake2b(data, digest_size=16).hexdigest()


class PreparedConfig:
    """A configuration built and checked (rules compiled, VW workspaces made), ready to be
    swapped in; building is slow, so a server may do it off its event loop."""

    def __init__(
        self,
        config: Config,
        policies: dict[str, PolicyRuntime],
        kept: set[int],
        taken: dict[str, Model],
    ) -> None:
        self.config = config
        self.policies = policies
        self.kept = kept  # ids of the models it reuses (running or recovered ones)
        self.taken = taken  # policy → the running model it reuses


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
        overrides: Mapping[str, Overrides] | None = None,
        learns: bool = True,
    ) -> None:
        """`models`: recovered models to serve (by policy), instead of empty ones;
        `overrides`: the live overrides kept from before a restart, by policy; `learns`:
        False where another process learns what this one closes (a serving replica in
        Redis mode: its closed joins go to the learner, and its models come from it)."""
        self.store = store
        self.learns = learns
        self.listener = listener
        self.clock = clock
        self.limits = limits or Limits()
        self.policies: dict[str, PolicyRuntime] = {}
        self.joins = Joins(store, listener, clock, lambda: self.policies, learns)
        # policy → live overrides over the file (kept for a policy the file dropped, so
        # they apply again if a later file brings it back)
        self.overrides: dict[str, Overrides] = dict(overrides or {})
        self.reload(config, models)

    # -- configuration -------------------------------------------------------------------

    def reload(self, config: Config, models: dict[str, Model] | None = None) -> None:
        """Swap in a new configuration (see `prepare` and `install`)."""
        self.install(self.prepare(config, models))

    def prepare(self, config: Config, models: dict[str, Model] | None = None) -> PreparedConfig:
        """Build a configuration, keeping each model whose vw_args did not change (policies
        without a model get `models[name]`, if given, or an empty one). Changes nothing: a
        config that fails (e.g. VW refuses its arguments) raises ConfigError.
        """
        fresh: dict[str, PolicyRuntime] = {}
        kept: set[int] = set()
        taken: dict[str, Model] = {}
        current = self.policies
        try:
            for name, policy in config.policies.items():
                old = current.get(name)
                same = old is not None and old.config.vw_args == policy.vw_args
                model = old.model if old is not None and same else (models or {}).get(name)
                if old is not None and same:
                    taken[name] = old.model
                if model is not None:
                    kept.add(id(model))
                overrides = self.overrides.get(name, {})
                fresh[name] = PolicyRuntime(
                    name, apply(policy, overrides), model, policy, overrides
                )
        except Exception:
            for runtime in fresh.values():
                if id(runtime.model) not in kept:
                    runtime.model.close()
            raise
        return PreparedConfig(config, fresh, kept, taken)

    def install(self, prepared: PreparedConfig) -> None:
        """Swap a prepared configuration in; the models it does not keep are closed.

        What changed while it was prepared (off the loop) wins: a rollback's model and the
        overrides set meanwhile are carried into it, never undone by it."""
        fresh = dict(prepared.policies)
        kept = set(prepared.kept)
        for name, rt in fresh.items():
            running = self.policies.get(name)
            model = rt.model
            if name in prepared.taken and running is not None and running.model is not model:
                model = running.model  # replaced (rolled back) since prepare took it
                kept.add(id(model))
            overrides = self.overrides.get(name, {})
            if model is not rt.model or overrides != rt.overrides:
                config = apply(rt.file_config, overrides)
                fresh[name] = PolicyRuntime(name, config, model, rt.file_config, overrides)
        replaced = [rt.model for rt in self.policies.values() if id(rt.model) not in kept]
        self.policies = fresh
        self.config = prepared.config
        for model in replaced:
            model.close()
        for name, runtime in fresh.items():
            self._announce(name, runtime)

    def set_overrides(self, name: str, overrides: Overrides, kind: str) -> PolicyRuntime:
        """Put `overrides` in force for a policy (replacing its previous ones) at once; the
        model is kept. Refused with InvalidArgument when the result is not a valid policy;
        `kind` says what changed them, for the listener (exploration, mode, clear)."""
        old = self.policy(name)
        config = apply(old.file_config, overrides)
        runtime = PolicyRuntime(name, config, old.model, old.file_config, overrides)
        self.policies = {**self.policies, name: runtime}
        self.overrides[name] = dict(overrides)
        self._announce(name, runtime, kind)
        return runtime

    def replace_model(self, name: str, model: Model) -> PolicyRuntime:
        """Serve `model` for a policy from now on (a rollback); the replaced one is closed."""
        old = self.policy(name)
        runtime = PolicyRuntime(name, old.config, model, old.file_config, old.overrides)
        self.policies = {**self.policies, name: runtime}
        if old.model is not model:
            old.model.close()
        return runtime

    def _announce(self, name: str, runtime: PolicyRuntime, kind: str = "reload") -> None:
        exp = runtime.config.exploration
        values = [(DEFAULT_INTENT_LABEL, exp.epsilon_for(""))]
        values += [(intent, exp.epsilon_for(intent)) for intent in exp.per_intent]
        self.listener.epsilons(name, values)
        self.listener.configured(name, runtime.version, kind)

    def policy(self, name: str, where: str = "policy") -> PolicyRuntime:
        runtime = self.policies.get(name)
        if runtime is None:
            raise NotFound(f"unknown policy {name!r}", where)
        return runtime

    # -- Decide ----------------------------------------------------------------------------

    async def decide(self, req: DecideInput) -> Event:
        """Validate, mask, score, explore, sample; keep the event pending for its join.

        A caller's event_id is checked by the store as it keeps the event, in one step (one
        round trip in Redis mode): a retry gets the decision kept under it (not a second
        event), any other request with a used id is refused (AlreadyExists)."""
        [outcome] = await self.decide_many([req])
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def decide_many(self, reqs: Sequence[DecideInput]) -> list[Event | Exception]:
        """Decide each request as `decide` would, and keep them in one store step (one
        journal write, one round trip), and tell the listener once: each one's outcome, in
        order, the event as kept or what refused it. A request fails alone: a DecisionError
        (or an unexpected exception, a bug the caller reports) is its outcome, and when the
        store can keep none of them (Unavailable) that is every decided one's."""
        out: list[Event | Exception] = []
        drafts: list[tuple[Event, bool]] = []
        where: list[int] = []  # each draft's place in `out`
        repeats: list[tuple[int, int]] = []  # (place in `out`, draft) of a retry in the batch
        for req in reqs:
            try:
                check_decide(req, self.limits)
                digest = fingerprint(req)
                try:
                    event = self._decision(req, digest)
                except DecisionError:
                    first = _draft_of(drafts, req.event_id)
                    if first is not None:  # its id decided earlier in the batch
                        out.append(retried(drafts[first][0], req.policy, digest))
                        repeats.append((len(out) - 1, first))
                        continue
                    kept = await self._kept(req, digest)
                    if kept is None:
                        raise
                    out.append(kept)
                    continue
            except Exception as exc:
                out.append(exc)
                continue
            where.append(len(out))
            out.append(event)
            drafts.append((event, not req.event_id))
        if not drafts:
            return out
        try:
            kept_all: list[Kept] = await self.store.add_many(drafts)
        except DecisionError as exc:  # nothing kept
            kept_all = [exc] * len(drafts)
        decided: list[Event] = []
        for i, (event, _), outcome in zip(where, drafts, kept_all, strict=True):
            out[i] = outcome
            if outcome is event:
                decided.append(event)
        for i, first in repeats:
            out[i] = kept_all[first]
        if decided:
            self.listener.decided(decided)
        return out

    def _decision(self, req: DecideInput, digest: str) -> Event:
        rt = self.policy(req.policy)
        candidates, masked = self._candidates(rt, req)
        masked_by_rules = rt.rules.mask(req.intent, req.context, candidates)
        masked.extend(masked_by_rules)
        denied = {m.action_id for m in masked_by_rules}
        eligible = [a for a in candidates if a.id not in denied]
        fallback = False
        if not eligible:
            eligible = [self._fallback(rt, req, masked)]
            fallback = True
        self._check_cost(rt, req, eligible)
        return self._choose(rt, req, eligible, masked, fallback, digest)

    async def _kept(self, req: DecideInput, digest: str) -> Event | None:
        """The decision kept under the request's event_id, for a request that can no
        longer be decided (its policy removed, the config changed since): a retry still
        gets it, and a used id is refused as `store.add` would (AlreadyExists). None
        when the id is free, or the store cannot tell."""
        if not req.event_id:
            return None
        try:
            held = await self.store.get(req.event_id)
            if held is None and await self.store.used(req.event_id):
                # used: maybe by this very request, raced in by another replica meanwhile
                held = await self.store.get(req.event_id)
                if held is None:
                    raise used_before(req.event_id)
        except Unavailable:
            return None
        return None if held is None else retried(held, req.policy, digest)

    def _check_cost(
        self, rt: PolicyRuntime, req: DecideInput, eligible: list[EligibleAction]
    ) -> None:
        """Bound the example VW would build: its features, and what the policy's
        interactions make of them (scoring time grows with the latter, on the event loop)."""
        limits = self.limits
        context = count_features(req.context)
        counts = rt.feature_counts
        actions = [counts.get(a.id) or 1 + count_features(a.features) for a in eligible]
        total = 1 + context + sum(actions)
        if total > limits.max_example_features:
            raise InvalidArgument(
                f"the example would have {total} features (intent, context and every "
                f"eligible action), at most {limits.max_example_features} allowed",
                "context" if context >= total - context else "actions",
            )
        crossed = interaction_features(rt.crossings, 1, context, actions)
        if crossed > limits.max_interaction_features:
            raise InvalidArgument(
                f"policy {rt.name!r} would cross these features into {crossed} interaction "
                f"features (vw_args interactions {rt.crossings}), at most "
                f"{limits.max_interaction_features} allowed: send fewer context features "
                "or actions",
                "context",
            )

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
            denied = rt.rules.mask(req.intent, req.context, [action])
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
        digest: str,
    ) -> Event:
        shared = shared_line(req.intent, req.context)
        costs = rt.model.costs([shared, *(a.line for a in eligible)])
        greedy = exploration.greedy_index(costs)
        event_id = req.event_id or os.urandom(16).hex()  # 32 hex chars, as uuid4().hex, 5× cheaper
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
        return Event(
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
            fingerprint=digest,
        )

    # -- Reward, Activate, Explain -----------------------------------------------------------

    async def _event(self, event_id: str) -> Event:
        event = await self.store.get(event_id)
        if event is None:
            raise NotFound(
                f"unknown event {event_id!r} (never decided, or past retention)", "event_id"
            )
        return event

    async def reward(self, req: RewardInput, received_at: float | None = None) -> RewardOutcome:
        """Join a reward to its event; learn at once when the join can no longer change.

        When the store cannot read the event (its server is unreachable), the store may
        queue the reward (QUEUED) to join it later: then it calls this again with the
        reward's `received_at`, which the join uses instead of the clock (and a store
        still unreachable then raises, rather than queueing it a second time)."""
        check_reward(req, self.limits)
        try:
            event = await self._recent(req.event_id)
        except Unavailable:
            if received_at is not None:
                raise
            await self.store.queue_reward(req, self.clock())
            self.listener.queued(req)
            return RewardOutcome(RewardStatus.QUEUED, 0.0)
        rt = self.policies.get(event.policy)
        if rt is None:
            raise FailedPrecondition(f"policy {event.policy!r} is no longer configured", "event_id")
        spec = rt.config.reward
        if req.reward_id:
            for previous in event.rewards:
                if previous.reward_id == req.reward_id:
                    return RewardOutcome(RewardStatus.DUPLICATE, previous.value)
        if len(event.rewards) >= self.limits.max_rewards_per_event:
            raise ResourceExhausted(
                f"event {req.event_id!r} has {len(event.rewards)} rewards, at most "
                f"{self.limits.max_rewards_per_event} are kept per event",
                "event_id",
            )
        if req.value is not None:
            value = rewards.clip(spec, req.value)
        else:
            value = rewards.from_signals(spec, req.signals)
        now = self.clock() if received_at is None else received_at
        pending = event.join_status is JoinStatus.PENDING and now <= event.deadline
        status = RewardStatus.ACCEPTED if pending else RewardStatus.LATE
        received = ReceivedReward(req.reward_id, value, dict(req.signals), status, now)
        settle_as = self._settle_as(rt, event, received)
        event, kept = await self.store.add_reward(event, received, settle_as=settle_as)
        if kept is None:  # another process kept one with this reward_id first
            first = next(r for r in event.rewards if r.reward_id == req.reward_id)
            return RewardOutcome(RewardStatus.DUPLICATE, first.value)
        status = kept.status  # LATE if the join closed meanwhile
        self.listener.rewarded(event, status, value)
        if status is RewardStatus.ACCEPTED:
            if settle_as is not None and event.join_status is not JoinStatus.PENDING:
                self.listener.joined(event)  # the store settled it with the reward
            elif settles_at_once(rt, event):
                await self.joins.settle(event)
        return RewardOutcome(status, value)

    async def _recent(self, event_id: str) -> Event:
        """The event as the store last knew it here (`EventStore.recent`): the checks made
        on it are either made again by the store's change (duplicate, full, late) or on
        what cannot change since the decision (policy, deadline, defer_activation)."""
        event = await self.store.recent(event_id)
        if event is None:
            raise NotFound(
                f"unknown event {event_id!r} (never decided, or past retention)", "event_id"
            )
        return event

    def _settle_as(self, rt: PolicyRuntime, event: Event, received: ReceivedReward) -> Event | None:
        """The event as `received` settles it, for the store to settle in the same step
        (`EventStore.add_reward`): an `earliest` join that, as read, holds no reward yet
        and is not waiting for its activation. Only where another process learns: an
        engine that learns parses the example before the settled event is kept and
        learns it after (`Joins._settle`), which a store's step cannot do."""
        if self.learns or received.status is not RewardStatus.ACCEPTED or event.rewards:
            return None
        return settled_by(rt, event, received) if settles_at_once(rt, event) else None

    async def activate(self, event_id: str) -> ActivationStatus:
        """Mark a deferred event as acted on, so that its join is learned."""
        check_event_id(event_id, "event_id", self.limits)
        event = await self._event(event_id)
        if not event.defer_activation or event.activated:
            return ActivationStatus.ALREADY_ACTIVE
        if event.join_status is not JoinStatus.PENDING or self.clock() > event.deadline:
            return ActivationStatus.LATE
        event = await self.store.activate(event)
        rt = self.policies.get(event.policy)
        if rt is not None and event.accepted_values() and settles_at_once(rt, event):
            await self.joins.settle(event)
        return ActivationStatus.ACTIVATED

    async def explain(self, event_id: str) -> Event:
        check_event_id(event_id, "event_id", self.limits)
        return await self._event(event_id)

    def models(self) -> dict[str, Model]:
        return {name: rt.model for name, rt in self.policies.items()}

    def pending_counts(self) -> dict[str, int]:
        return self.store.pending_counts()

    async def settle_due(self, now: float | None = None, limit: int = 1000) -> int:
        """Settle the joins whose window has ended (see `Joins.settle_due`)."""
        return await self.joins.settle_due(now, limit)

    def shutdown(self) -> None:
        """Release every policy's model (VW workspaces)."""
        for runtime in self.policies.values():
            runtime.model.close()
