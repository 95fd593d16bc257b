"""Prometheus metrics. The names are a contract: deploy/ dashboards and alerts use them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from nextbest.observability.logging import get_logger
from nextbest.policy.engine import EXCLUDED, NOT_A_CANDIDATE
from nextbest.policy.events import Event, JoinStatus, RewardStatus

_LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)
_CALLER_MASKS = {EXCLUDED: "caller:excluded", NOT_A_CANDIDATE: "caller:not_candidate"}
_REWARD_BUCKETS = (-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0)


class _EngineState(Collector):
    """Gauges read from the engine at scrape time, so they are never stale."""

    def __init__(
        self, pending: Callable[[], dict[str, int]], versions: Callable[[], dict[str, str]]
    ) -> None:
        self._pending = pending
        self._versions = versions

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pending = GaugeMetricFamily(
            "nextbest_pending_events", "Events waiting for their reward window", labels=["policy"]
        )
        for policy, n in sorted(self._pending().items()):
            pending.add_metric([policy], n)
        yield pending
        info = GaugeMetricFamily(
            "nextbest_model_version_info",
            "Version of the model serving each policy (always 1)",
            labels=["policy", "version"],
        )
        for policy, version in sorted(self._versions().items()):
            info.add_metric([policy, version], 1)
        yield info


class Metrics:
    """Owns a registry (one per server, so tests can run several in one process)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.decisions = Counter(
            "nextbest_decisions",
            "Decisions made",
            ["policy", "action", "explored", "fallback"],
            registry=r,
        )
        self.decide_latency = Histogram(
            "nextbest_decide_latency_seconds",
            "Time to serve one Decide, in seconds",
            ["policy"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.masked = Counter(
            "nextbest_masked",
            "Actions masked from decisions",
            ["policy", "action", "rule"],
            registry=r,
        )
        self.rewards = Counter(
            "nextbest_rewards", "Rewards received", ["policy", "status"], registry=r
        )
        self.reward_value = Histogram(
            "nextbest_reward_value",
            "Reward values received",
            ["policy"],
            buckets=_REWARD_BUCKETS,
            registry=r,
        )
        self.learned = Counter(
            "nextbest_learned_events", "Events learned by the model", ["policy"], registry=r
        )
        self.skipped = Counter(
            "nextbest_skipped_events",
            "Joined events not learned (deferred and never "
            "activated, or a mode that does not learn)",
            ["policy"],
            registry=r,
        )
        self.epsilon = Gauge(
            "nextbest_exploration_epsilon",
            "Exploration ε in force ('*': intents without an override)",
            ["policy", "intent"],
            registry=r,
        )
        self.apprentice = Counter(
            "nextbest_apprentice_decisions",
            "Apprentice-mode decisions, by whether the model's "
            "greedy choice agreed with the baseline",
            ["policy", "agree"],
            registry=r,
        )
        self._children: dict[tuple[Any, ...], Any] = {}

    def watch(
        self, pending: Callable[[], dict[str, int]], versions: Callable[[], dict[str, str]]
    ) -> None:
        """Export the engine's pending joins and model versions, read at scrape time."""
        self.registry.register(_EngineState(pending, versions))

    def child(self, metric: Any, *labels: str) -> Any:
        """Labelled children cached: `.labels()` costs a lock and a dict build per call."""
        key = (id(metric), *labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found


class Telemetry:
    """The engine's listener: metrics plus one JSON log line per decision, reward and join."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.log = get_logger("nextbest")

    def decided(self, event: Event) -> None:
        m = self.metrics
        action = event.action_id
        m.child(
            m.decisions, event.policy, action, _flag(event.explored), _flag(event.fallback)
        ).inc()
        for masked in event.masked:
            rule = masked.rule or _CALLER_MASKS.get(masked.reason, "caller")
            m.child(m.masked, event.policy, masked.action_id, rule).inc()
        if event.mode == "apprentice":
            agree = event.eligible[event.greedy].id == action
            m.child(m.apprentice, event.policy, _flag(agree)).inc()
        self.log.info(
            "decision",
            event_id=event.event_id,
            policy=event.policy,
            intent=event.intent,
            action=action,
            probability=event.probability,
            explored=event.explored,
            fallback=event.fallback,
            masked=len(event.masked),
            model_version=event.model_version,
        )

    def rewarded(self, event: Event, status: RewardStatus, value: float) -> None:
        m = self.metrics
        m.child(m.rewards, event.policy, status.value).inc()
        m.child(m.reward_value, event.policy).observe(value)
        self.log.info(
            "reward",
            event_id=event.event_id,
            policy=event.policy,
            status=status.value,
            value=value,
        )

    def joined(self, event: Event) -> None:
        m = self.metrics
        learned = event.join_status is JoinStatus.LEARNED
        m.child(m.learned if learned else m.skipped, event.policy).inc()
        self.log.info(
            "join",
            event_id=event.event_id,
            policy=event.policy,
            status=event.join_status.value,
            reward=event.joined_reward,
        )

    def epsilons(self, policy: str, values: Iterable[tuple[str, float]]) -> None:
        for intent, eps in values:
            self.metrics.epsilon.labels(policy, intent).set(eps)


def _flag(value: bool) -> str:
    return "true" if value else "false"
