"""Prometheus metrics. The names are a contract: deploy/ dashboards and alerts use them.

Label values come from the config or from fixed sets, never from callers (each new value
is a new series, kept forever): an inline action is counted as INLINE_ACTION.

Multiprocess mode (`nextbest serve --workers N`): the parent sets PROMETHEUS_MULTIPROC_DIR
for its children, so prometheus-client keeps each child's values in files there and the
parent serves them all, merged (counters and histograms summed; each gauge as its
`multiprocess_mode` says). The scrape-time collector of pending counts and model versions
cannot reach into the children: there, each child sets them as gauges every second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary, values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from nextbest.observability.logging import get_logger, held_lines
from nextbest.policy.engine import EXCLUDED, NOT_A_CANDIDATE
from nextbest.policy.events import Event, JoinStatus, RewardStatus
from nextbest.policy.requests import RewardInput

_LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)
_CALLER_MASKS = {EXCLUDED: "caller:excluded", NOT_A_CANDIDATE: "caller:not_candidate"}
_REWARD_BUCKETS = (-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0)
# From a reward that settles at once (`earliest`) to a window's end (`reward.wait`, 10m default)
_JOIN_DELAY_BUCKETS = (0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600)
INLINE_ACTION = "(inline)"  # the action label of every action a request brought
CONFIG_RELOAD = "reload"  # the kind of config change a SIGHUP makes
# Kinds exported at 0 from a policy's start, so that `increase()` sees their first change
# (others, if any, appear at their first change).
CONFIG_KINDS = (CONFIG_RELOAD, "exploration", "mode", "clear", "rollback")
STATE_EVERY = 1.0  # multiprocess mode: seconds between settings of the engine-state gauges
_PENDING_HELP = "Events waiting for their reward window"
_VERSION_HELP = "Version of the model serving each policy: the number of events it learned"


def multiprocess() -> bool:
    """Whether prometheus-client keeps values in PROMETHEUS_MULTIPROC_DIR (decided when it
    was first imported: the variable must be set before)."""
    return bool(getattr(values.ValueClass, "_multiprocess", False))


class _EngineState(Collector):
    """Gauges read from the engine at scrape time, so they are never stale."""

    def __init__(
        self, pending: Callable[[], dict[str, int]], versions: Callable[[], dict[str, str]]
    ) -> None:
        self._pending = pending
        self._versions = versions

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pending = GaugeMetricFamily("nextbest_pending_events", _PENDING_HELP, labels=["policy"])
        for policy, n in sorted(self._pending().items()):
            pending.add_metric([policy], n)
        yield pending
        version = GaugeMetricFamily("nextbest_model_version", _VERSION_HELP, labels=["policy"])
        for policy, value in sorted(self._versions().items()):
            version.add_metric([policy], float(value))
        yield version


class _SharedEngineState:
    """Multiprocess mode: the same gauges as `_EngineState`, set every `STATE_EVERY` seconds
    by a thread (as the scrape-time collector, it reads the engine off the loop).

    Redis mode shares pending events, so every worker reads the same counts: the parent
    shows the largest (`livemax`), not their sum. A model version is the oldest any live
    worker serves (`livemin`): one worker left behind shows. Multiprocess gauges cannot drop
    a label: the pending count of a policy removed by a reload turns 0."""

    def __init__(
        self,
        registry: CollectorRegistry,
        pending: Callable[[], dict[str, int]],
        versions: Callable[[], dict[str, str]],
    ) -> None:
        self._pending = pending
        self._versions = versions
        self._pending_gauge = Gauge(
            "nextbest_pending_events",
            _PENDING_HELP,
            ["policy"],
            registry=registry,
            multiprocess_mode="livemax",
        )
        self._version_gauge = Gauge(
            "nextbest_model_version",
            _VERSION_HELP,
            ["policy"],
            registry=registry,
            multiprocess_mode="livemin",
        )
        self._shown: set[str] = set()
        self.refresh()
        self._thread = threading.Thread(target=self._run, daemon=True, name="nextbest-state")
        self._thread.start()

    def refresh(self) -> None:
        pending = self._pending()
        for policy in self._shown - pending.keys():
            self._pending_gauge.labels(policy).set(0)
        for policy, n in pending.items():
            self._pending_gauge.labels(policy).set(n)
        self._shown = set(pending)
        for policy, version in self._versions().items():
            self._version_gauge.labels(policy).set(float(version))

    def _run(self) -> None:
        log = get_logger("nextbest")
        while True:  # a daemon thread: it ends with the process
            time.sleep(STATE_EVERY)
            try:
                self.refresh()
            except Exception:  # a bug: logged; the last values stay until the next second
                log.exception("metrics_refresh_failed")


class Metrics:
    """Owns a registry (one per server, so tests can run several in one process)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.multiprocess = multiprocess()
        self._shared_state: _SharedEngineState | None = None
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
            multiprocess_mode="livemostrecent",
        )
        self.apprentice = Counter(
            "nextbest_apprentice_decisions",
            "Apprentice-mode decisions, by whether the model's "
            "greedy choice agreed with the baseline",
            ["policy", "agree"],
            registry=r,
        )
        self.join_failures = Counter(
            "nextbest_join_failures",
            "Joins that could not be closed (logged); each is retried",
            ["policy"],
            registry=r,
        )
        self.errors = Counter(
            "nextbest_errors",
            "Error statuses answered, by method and gRPC code (DecideBatch: also each failed item)",
            ["method", "code"],
            registry=r,
        )
        self.join_delay = Histogram(
            "nextbest_join_delay_seconds",
            "Time from a decision to the close of its join, in seconds",
            ["policy"],
            buckets=_JOIN_DELAY_BUCKETS,
            registry=r,
        )
        # A summary (sum and count), not a histogram: a histogram with negative buckets has
        # no _sum, and the mean is what shows learning; the values' spread is reward_value's.
        self.joined_reward = Summary(
            "nextbest_joined_reward",
            "Reward each closed join settled on (the policy's default when none came)",
            ["policy"],
            registry=r,
        )
        self.default_rewards = Counter(
            "nextbest_default_rewards",
            "Joins closed with no accepted reward (learned, if at all, with reward.default)",
            ["policy"],
            registry=r,
        )
        self.model_updated = Gauge(
            "nextbest_model_last_update_timestamp_seconds",
            "Unix time the policy's model last learned an event (until the first since this "
            "process started or the policy was added: that time)",
            ["policy"],
            registry=r,
            multiprocess_mode="max",
        )
        self.config_changes = Counter(
            "nextbest_config_changes",
            "Config changes of a policy, by kind (reload: SIGHUP or ReloadConfig; exploration, "
            "mode, clear: live overrides; rollback: a model rollback)",
            ["policy", "kind"],
            registry=r,
        )
        self._children: dict[tuple[Any, ...], Any] = {}

    def watch(
        self, pending: Callable[[], dict[str, int]], versions: Callable[[], dict[str, str]]
    ) -> None:
        """Export the engine's pending joins and model versions (learned counts, as
        strings), read at scrape time (multiprocess mode: set every `STATE_EVERY` seconds)."""
        if self.multiprocess:
            self._shared_state = _SharedEngineState(self.registry, pending, versions)
            return
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

    def __init__(
        self,
        metrics: Metrics,
        catalog: Callable[[str], Container[str]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`catalog(policy)`: the policy's catalog action ids, the only ids used as labels
        (None: every id is, for tools whose requests bring no inline actions). `clock`: the
        engine's, in Unix seconds (join delays, the time of the last model update)."""
        self.metrics = metrics
        self.catalog = catalog
        self.clock = clock
        self.log = get_logger("nextbest")
        self._config_versions: dict[str, str] = {}

    def _action_label(self, policy: str, action_id: str) -> str:
        if self.catalog is None or action_id in self.catalog(policy):
            return action_id
        return INLINE_ACTION

    def decided(self, events: Sequence[Event]) -> None:
        """Counted per label set, once per call (a DecideBatch chunk counts its decisions
        in a few increments); one log line per decision, a chunk's flushed together."""
        if len(events) == 1:
            counts = self._decisions(events)
        else:
            with held_lines():
                counts = self._decisions(events)
        m = self.metrics
        for (metric, *labels), n in counts.items():
            m.child(metric, *labels).inc(n)

    def _decisions(self, events: Sequence[Event]) -> dict[tuple[Any, ...], int]:
        """Log each decision; its counts by metric and labels."""
        m = self.metrics
        counts: dict[tuple[Any, ...], int] = {}
        for event in events:
            action = event.action_id
            policy = event.policy
            label = self._action_label(policy, action)
            key: tuple[Any, ...] = (
                m.decisions,
                policy,
                label,
                _flag(event.explored),
                _flag(event.fallback),
            )
            counts[key] = counts.get(key, 0) + 1
            for masked in event.masked:
                rule = masked.rule or _CALLER_MASKS.get(masked.reason, "caller")
                key = (m.masked, policy, self._action_label(policy, masked.action_id), rule)
                counts[key] = counts.get(key, 0) + 1
            if event.mode == "apprentice":
                agree = event.eligible[event.greedy].id == action
                key = (m.apprentice, policy, _flag(agree))
                counts[key] = counts.get(key, 0) + 1
            self.log.info(
                "decision",
                event_id=event.event_id,
                policy=policy,
                intent=event.intent,
                action=action,
                probability=event.probability,
                explored=event.explored,
                fallback=event.fallback,
                masked=len(event.masked),
                model_version=event.model_version,
            )
        return counts

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

    def queued(self, req: RewardInput) -> None:
        self.log.info("reward_queued", event_id=req.event_id, reward_id=req.reward_id)

    def joined(self, event: Event) -> None:
        m = self.metrics
        policy = event.policy
        learned = event.join_status is JoinStatus.LEARNED
        m.child(m.learned if learned else m.skipped, policy).inc()
        now = self.clock()
        m.child(m.join_delay, policy).observe(max(now - event.decided_at, 0.0))
        if event.joined_reward is not None:  # None: its policy was removed by a reload
            m.child(m.joined_reward, policy).observe(event.joined_reward)
            if not event.accepted_values():
                m.child(m.default_rewards, policy).inc()
        if learned:
            m.child(m.model_updated, policy).set(now)
        self.log.info(
            "join",
            event_id=event.event_id,
            policy=event.policy,
            status=event.join_status.value,
            reward=event.joined_reward,
        )

    def join_failed(self, event: Event, reason: str) -> None:
        self.metrics.child(self.metrics.join_failures, event.policy).inc()
        self.log.warning("join_failed", event_id=event.event_id, policy=event.policy, reason=reason)

    def epsilons(self, policy: str, values: Iterable[tuple[str, float]]) -> None:
        for intent, eps in values:
            self.metrics.epsilon.labels(policy, intent).set(eps)

    def configured(self, policy: str, version: str, kind: str = CONFIG_RELOAD) -> None:
        """Count a change of the policy's config version. A policy seen for the first time
        (at start, or added by a reload) starts its series at 0, so that `increase()` sees
        its first change, and its model's last update at now."""
        m = self.metrics
        previous = self._config_versions.get(policy)
        self._config_versions[policy] = version
        changes = m.child(m.config_changes, policy, kind)
        if previous is None:
            for known in CONFIG_KINDS:
                m.child(m.config_changes, policy, known)
            m.child(m.model_updated, policy).set(self.clock())
        elif previous != version:
            changes.inc()


def _flag(value: bool) -> str:
    return "true" if value else "false"
