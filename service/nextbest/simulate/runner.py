"""Drive a nextbest service over gRPC with a scenario's rounds, as an agent would.

Each round: Decide with the situation's intent and context, score the returned action with
the ground truth, and queue its feedback. Rewards are sent ``delay`` rounds after their
decision (a queue, not wall-clock sleeps): the model meanwhile decides without them, as it
does when outcomes arrive later in production, and a run stays fast and reproducible.

Everything checked here is checked from the answers and the scenario's own truth, not from
the server's word: a returned action the scenario's safety rule forbids is a violation
whatever the server's mask said, and the non-greedy mass is read off the ranking.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from nextbest.simulate.scenario import Outcome, Round, Scenario
from nextbest_proto.v1 import decision_pb2 as pb
from nextbest_proto.v1 import decision_pb2_grpc as rpc
from nextbest_proto.values import to_features

TOLERANCE = 1e-9  # float slack for "mass ≤ cap" and "server reward = scenario reward"


@dataclass(slots=True)
class DecisionStats:
    """What nextbest's answers showed over a run."""

    decisions: int = 0
    explored: int = 0  # answers flagged `explored` (chosen ≠ greedy)
    non_greedy_sum: float = 0.0  # Σ (1 − the greedy action's probability)
    non_greedy_max: float = 0.0
    epsilon_max: float = 0.0  # the largest ε the server said it explored with
    over_cap: int = 0  # answers whose non-greedy mass exceeded their ε or the cap
    violations: int = 0  # answers with an action the scenario's safety rule forbids
    masked_by_rules: int = 0  # answers where a safety rule of the server masked something
    fallbacks: int = 0
    rewards_sent: int = 0
    rewards_not_accepted: int = 0  # LATE or DUPLICATE: none expected
    reward_mismatches: int = 0  # the server's reward value ≠ the scenario's

    @property
    def explore_rate(self) -> float:
        return self.explored / self.decisions if self.decisions else 0.0

    @property
    def non_greedy_mean(self) -> float:
        return self.non_greedy_sum / self.decisions if self.decisions else 0.0


def non_greedy_mass(response: pb.DecideResponse) -> float:
    """1 − the greedy action's probability: the mass the answer put on exploring.

    The greedy action is the one with the best score (ties: the one with more probability,
    as ties go to the greedy action's 1 − ε share) — not simply the most probable action.
    """
    if not response.ranking:
        return 0.0
    greedy = max(response.ranking, key=lambda r: (r.score, r.probability))
    return max(0.0, 1.0 - greedy.probability)


def _request(scenario: Scenario, r: Round, event_id: str) -> pb.DecideRequest:
    return pb.DecideRequest(
        policy=scenario.policy,
        intent=r.situation.intent,
        context=to_features(r.situation.context, "context"),
        event_id=event_id,
    )


def _reward(event_id: str, outcome: Outcome) -> pb.RewardRequest:
    if outcome.value is not None:
        return pb.RewardRequest(event_id=event_id, value=outcome.value)
    return pb.RewardRequest(event_id=event_id, signals=dict(outcome.signals))


class Runner:
    """Plays rounds against one DecisionService stub; collects rewards and checks."""

    def __init__(
        self,
        stub: rpc.DecisionServiceStub,
        scenario: Scenario,
        *,
        run_id: str,
        delay: int = 0,
        cap: float | None = None,
        timeout: float = 30.0,
    ) -> None:
        if delay < 0:
            raise ValueError("delay must be ≥ 0 rounds")
        self.stub = stub
        self.scenario = scenario
        self.run_id = run_id
        self.delay = delay
        self.cap = cap
        self.timeout = timeout
        self.stats = DecisionStats()
        self.rewards: list[float] = []
        self._queue: deque[tuple[int, str, Outcome]] = deque()

    def play(
        self, rounds: Sequence[Round], on_round: Callable[[int, float], None] | None = None
    ) -> list[float]:
        """Play every round, then send the rewards still queued; returns per-round rewards."""
        for r in rounds:
            reward = self.step(r)
            if on_round is not None:
                on_round(r.index, reward)
        self.flush()
        return self.rewards

    def step(self, r: Round) -> float:
        event_id = f"sim-{self.run_id}-{r.index}"
        response = self.stub.Decide(_request(self.scenario, r, event_id), timeout=self.timeout)
        self._check(r, response)
        outcome = self.scenario.outcome(r.situation, response.action_id, r.luck)
        self.rewards.append(outcome.reward)
        self._queue.append((r.index + self.delay, response.event_id, outcome))
        while self._queue and self._queue[0][0] <= r.index:
            self._send(*self._queue.popleft()[1:])
        return outcome.reward

    def flush(self) -> None:
        """The run is over: what is still queued arrives now."""
        while self._queue:
            self._send(*self._queue.popleft()[1:])

    def _check(self, r: Round, response: pb.DecideResponse) -> None:
        s = self.stats
        s.decisions += 1
        s.explored += response.explored
        s.fallbacks += response.fallback
        s.masked_by_rules += any(m.rule for m in response.masked)
        if not self.scenario.allowed(r.situation, response.action_id):
            s.violations += 1
        mass = non_greedy_mass(response)
        s.non_greedy_sum += mass
        s.non_greedy_max = max(s.non_greedy_max, mass)
        s.epsilon_max = max(s.epsilon_max, response.epsilon)
        bound = response.epsilon if self.cap is None else min(response.epsilon, self.cap)
        if mass > bound + TOLERANCE:
            s.over_cap += 1

    def _send(self, event_id: str, outcome: Outcome) -> None:
        answer = self.stub.Reward(_reward(event_id, outcome), timeout=self.timeout)
        self.stats.rewards_sent += 1
        if answer.status != pb.REWARD_STATUS_ACCEPTED:
            self.stats.rewards_not_accepted += 1
        if abs(answer.value - outcome.reward) > TOLERANCE:
            self.stats.reward_mismatches += 1
