"""Proto messages ↔ domain records. No decisions are made here."""

from __future__ import annotations

from nextbest.policy.errors import InvalidArgument
from nextbest.policy.events import (
    ActivationStatus,
    Event,
    JoinStatus,
    RewardStatus,
)
from nextbest.policy.requests import DecideInput, InlineAction, RewardInput
from nextbest.policy.safety import Masked
from nextbest_proto import records
from nextbest_proto.v1 import decision_pb2 as pb
from nextbest_proto.values import InvalidValue, from_features, to_features

# The domain's statuses → the wire's, through the contract's one name → enum table: a domain
# status the contract does not name fails here, at import.
REWARD_STATUS = {s: records.REWARD_STATUSES[s.value] for s in RewardStatus}
ACTIVATION_STATUS = {s: records.ACTIVATION_STATUSES[s.value] for s in ActivationStatus}
JOIN_STATUS = {s: records.JOIN_STATUSES[s.value] for s in JoinStatus}


def decide_input(req: pb.DecideRequest) -> DecideInput:
    """A value without a kind is INVALID_ARGUMENT, naming it (the contract's codec)."""
    try:
        return DecideInput(
            policy=req.policy,
            intent=req.intent,
            context=from_features(req.context, "context"),
            candidate_action_ids=list(req.candidate_action_ids),
            actions=[
                InlineAction(a.id, from_features(a.features, f"actions[{i}].features"))
                for i, a in enumerate(req.actions)
            ],
            excluded_action_ids=list(req.excluded_action_ids),
            event_id=req.event_id,
            baseline_action_id=req.baseline_action_id,
            defer_activation=req.defer_activation,
        )
    except InvalidValue as exc:
        raise InvalidArgument(exc.detail, exc.field) from None


def _masked(masked: list[Masked]) -> list[pb.MaskedAction]:
    return [pb.MaskedAction(action_id=m.action_id, reason=m.reason, rule=m.rule) for m in masked]


def decide_response(event: Event) -> pb.DecideResponse:
    return fill_decision(pb.DecideResponse(), event)


def fill_decision(out: pb.DecideResponse, event: Event) -> pb.DecideResponse:
    """Write a decision into `out` (a DecideBatch item's own message, or a new one): field
    by field, which takes half the time of building it from keyword arguments, and a batch
    item filled in place is not copied again."""
    pmf, scores, eligible = event.pmf, event.scores, event.eligible
    chosen = event.chosen
    out.event_id = event.event_id
    out.action_id = eligible[chosen].id
    out.probability = pmf[chosen]
    out.explored = event.explored
    out.fallback = event.fallback
    add = out.ranking.add
    for i in sorted(range(len(eligible)), key=lambda i: (-pmf[i], -scores[i])):
        add(action_id=eligible[i].id, probability=pmf[i], score=scores[i])
    masked = out.masked.add
    for m in event.masked:
        masked(action_id=m.action_id, reason=m.reason, rule=m.rule)
    out.model_version = event.model_version
    out.config_version = event.config_version
    out.epsilon = event.epsilon
    return out


def reward_input(req: pb.RewardRequest) -> RewardInput:
    return RewardInput(
        event_id=req.event_id,
        value=req.value if req.HasField("value") else None,
        signals=dict(req.signals),
        reward_id=req.reward_id,
    )


def explain_response(event: Event) -> pb.ExplainResponse:
    resp = pb.ExplainResponse(
        event_id=event.event_id,
        policy=event.policy,
        intent=event.intent,
        context=to_features(event.context, "context"),
        eligible=[
            records.eligible_message(
                records.EligibleAction(a.id, a.features, event.pmf[i], event.scores[i], a.explore)
            )
            for i, a in enumerate(event.eligible)
        ],
        action_id=event.action_id,
        probability=event.probability,
        explored=event.explored,
        fallback=event.fallback,
        masked=_masked(event.masked),
        epsilon=event.epsilon,
        model_version=event.model_version,
        config_version=event.config_version,
        mode=event.mode,
        baseline_action_id=event.baseline_action_id,
        greedy_action_id=event.eligible[event.greedy].id,
        defer_activation=event.defer_activation,
        activated=event.activated,
        rewards=[
            pb.ReceivedReward(
                reward_id=r.reward_id,
                value=r.value,
                signals=r.signals,
                status=REWARD_STATUS[r.status],
                received_at=r.received_at,
            )
            for r in event.rewards
        ],
        join_status=JOIN_STATUS[event.join_status],
        decided_at=event.decided_at,
        join_deadline=event.deadline,
        vw_example=event.vw_lines(),
    )
    if event.joined_reward is not None:
        resp.joined_reward = event.joined_reward
    return resp
