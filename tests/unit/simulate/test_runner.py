"""The runner's checks and its reward queue, against a scripted stand-in for the service."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import pytest

from nextbest.simulate.news import NewsScenario
from nextbest.simulate.runner import Runner, non_greedy_mass
from nextbest.simulate.scenario import Scenario
from nextbest.simulate.support import SupportScenario
from nextbest_proto.v1 import decision_pb2 as pb
from nextbest_proto.v1 import decision_pb2_grpc as rpc

Answer = Callable[[pb.DecideRequest], pb.DecideResponse]


def answer(action: str, *ranking: tuple[str, float, float], epsilon: float = 0.2) -> Answer:
    """A Decide answer: `ranking` as (action, probability, score)."""

    def respond(request: pb.DecideRequest) -> pb.DecideResponse:
        return pb.DecideResponse(
            event_id=request.event_id,
            action_id=action,
            ranking=[pb.RankedAction(action_id=a, probability=p, score=s) for a, p, s in ranking],
            epsilon=epsilon,
        )

    return respond


class FakeService:
    """Records every call in order; answers Decide with `decide` and Reward as told."""

    def __init__(self, decide: Answer, reward_value: Callable[[pb.RewardRequest], float]) -> None:
        self.calls: list[str] = []
        self.rewards: list[pb.RewardRequest] = []
        self.decide = decide
        self.reward_value = reward_value
        self.status = pb.REWARD_STATUS_ACCEPTED

    def Decide(self, request: pb.DecideRequest, **_: Any) -> pb.DecideResponse:
        self.calls.append(f"D{request.event_id.rsplit('-', 1)[1]}")
        return self.decide(request)

    def Reward(self, request: pb.RewardRequest, **_: Any) -> pb.RewardResponse:
        self.calls.append(f"R{request.event_id.rsplit('-', 1)[1]}")
        self.rewards.append(request)
        return pb.RewardResponse(status=self.status, value=self.reward_value(request))


def runner(service: FakeService, scenario: Scenario, **kwargs: Any) -> Runner:
    return Runner(cast(rpc.DecisionServiceStub, service), scenario, run_id="t", **kwargs)


def news_value(request: pb.RewardRequest) -> float:
    return request.value


GREEDY_POLITICS = answer("politics", ("politics", 0.9, 1.0), ("music", 0.1, 0.0))


@pytest.mark.parametrize(
    ("delay", "order"),
    [
        (0, ["D0", "R0", "D1", "R1", "D2", "R2", "D3", "R3"]),
        (2, ["D0", "D1", "D2", "R0", "D3", "R1", "R2", "R3"]),
        (9, ["D0", "D1", "D2", "D3", "R0", "R1", "R2", "R3"]),
    ],
)
def test_rewards_arrive_delay_decisions_late_and_the_rest_at_the_end(
    delay: int, order: list[str]
) -> None:
    scenario = NewsScenario()
    service = FakeService(GREEDY_POLITICS, news_value)
    rewards = runner(service, scenario, delay=delay).play(scenario.stream(0, 4))
    assert service.calls == order
    assert len(rewards) == 4


def test_each_round_is_scored_by_the_scenarios_truth_and_reported_as_it_would_be() -> None:
    scenario = NewsScenario()
    service = FakeService(GREEDY_POLITICS, news_value)
    stream = scenario.stream(0, 50)
    rewards = runner(service, scenario).play(stream)
    expected = [scenario.expected_reward(r.situation, "politics") for r in stream]
    assert rewards == expected
    assert [r.value for r in service.rewards] == expected
    assert 0 < sum(expected) < 50


def test_support_feedback_goes_as_named_signals() -> None:
    scenario = SupportScenario()
    service = FakeService(answer("ask_details", ("ask_details", 1.0, 0.0)), lambda r: 0.0)
    stream = scenario.stream(0, 30)
    run = runner(service, scenario)
    run.play(stream)
    for r, sent in zip(stream, service.rewards, strict=True):
        assert not sent.HasField("value")
        assert dict(sent.signals) == dict(
            scenario.outcome(r.situation, "ask_details", r.luck).signals
        )


def test_an_action_the_scenario_forbids_counts_as_a_violation_whatever_the_server_says() -> None:
    scenario = SupportScenario()
    rounds = scenario.stream(0, 200)
    forbidden = next(r for r in rounds if not scenario.allowed(r.situation, "offer_refund"))
    allowed = next(r for r in rounds if scenario.allowed(r.situation, "offer_refund"))
    service = FakeService(answer("offer_refund", ("offer_refund", 1.0, 0.0)), lambda r: 0.0)
    run = runner(service, scenario)
    run.play([forbidden, allowed])
    assert run.stats.violations == 1


def test_non_greedy_mass_is_read_off_the_greedy_action_not_the_most_probable() -> None:
    # ε = 0.6 lets an explored action carry more mass than the greedy one
    response = answer("a", ("a", 0.6, 0.1), ("b", 0.4, 0.9), epsilon=0.6)(pb.DecideRequest())
    assert non_greedy_mass(response) == pytest.approx(0.6)
    # equal scores: the greedy one is the one holding the 1 − ε share
    tied = answer("a", ("a", 0.8, 0.0), ("b", 0.1, 0.0), ("c", 0.1, 0.0))(pb.DecideRequest())
    assert non_greedy_mass(tied) == pytest.approx(0.2)


@pytest.mark.parametrize(
    ("ranking", "epsilon", "cap", "over"),
    [
        ((("politics", 0.8, 1.0), ("music", 0.2, 0.0)), 0.2, 0.2, 0),
        ((("politics", 0.7, 1.0), ("music", 0.3, 0.0)), 0.2, None, 1),  # over the answer's ε
        ((("politics", 0.7, 1.0), ("music", 0.3, 0.0)), 0.3, 0.2, 1),  # over the configured cap
    ],
)
def test_answers_over_their_cap_are_counted(
    ranking: tuple[tuple[str, float, float], ...], epsilon: float, cap: float | None, over: int
) -> None:
    scenario = NewsScenario()
    service = FakeService(answer("politics", *ranking, epsilon=epsilon), news_value)
    run = runner(service, scenario, cap=cap)
    run.play(scenario.stream(0, 1))
    assert run.stats.over_cap == over
    assert run.stats.non_greedy_max == pytest.approx(ranking[1][1])


def test_rewards_the_server_refuses_or_values_otherwise_are_counted() -> None:
    scenario = NewsScenario()
    service = FakeService(GREEDY_POLITICS, lambda r: r.value + 0.5)
    service.status = pb.REWARD_STATUS_LATE
    run = runner(service, scenario)
    run.play(scenario.stream(0, 3))
    assert run.stats.rewards_sent == 3
    assert run.stats.rewards_not_accepted == 3
    assert run.stats.reward_mismatches == 3


def test_explored_answers_are_counted() -> None:
    scenario = NewsScenario()
    explored = iter([True, False, True, False])

    def decide(request: pb.DecideRequest) -> pb.DecideResponse:
        response = GREEDY_POLITICS(request)
        response.explored = next(explored)
        return response

    run = runner(FakeService(decide, news_value), scenario)
    run.play(scenario.stream(0, 4))
    assert run.stats.explore_rate == 0.5
    assert run.stats.non_greedy_mean == pytest.approx(0.1)


def test_a_negative_delay_is_refused() -> None:
    with pytest.raises(ValueError, match="delay"):
        runner(FakeService(GREEDY_POLITICS, news_value), NewsScenario(), delay=-1)
