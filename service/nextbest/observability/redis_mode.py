"""Metrics of Redis mode: whether this process reaches Redis, how far the learner is
behind, and a serving replica's spool (what it holds while Redis is unreachable, and what
became of it). Registered only in Redis mode, so that embedded mode exports no Redis gauge
stuck at 0, and the spool's only where there is one (the serving roles)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from nextbest.observability.metrics import Metrics
from nextbest.policy.errors import DecisionError


class RedisTelemetry:
    """Every Redis-mode process: Redis reachable, the learner's lag (label values: the
    config's policies)."""

    def __init__(self, metrics: Metrics) -> None:
        r = metrics.registry
        self.reachable = Gauge(
            "nextbest_redis_reachable",
            "1 while this process reaches Redis (0: a serving replica spools)",
            registry=r,
            multiprocess_mode="livemin",
        )
        self.learner_lag = Gauge(
            "nextbest_learner_lag_events",
            "Joined events on the policy's stream in Redis that the learner has not read yet",
            ["policy"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.reachable.set(1)

    def lags(self, lags: dict[str, int]) -> None:
        for policy, lag in lags.items():
            self.learner_lag.labels(policy).set(lag)

    def redis_reachable(self, reachable: bool) -> None:
        self.reachable.set(1 if reachable else 0)


class SpoolTelemetry:
    """The :class:`~nextbest.store.redis.spool.SpoolWatcher` of a serving process (it
    also says whether Redis is reachable, as its calls go). Label values are fixed sets:
    kind (decision, reward), reason (an error class name)."""

    def __init__(self, metrics: Metrics, redis: RedisTelemetry) -> None:
        self.metrics = metrics
        self.redis = redis
        r = metrics.registry
        self.records = Gauge(
            "nextbest_spool_records",
            "Decisions and queued rewards this replica holds for Redis (its spool)",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.size = Gauge(
            "nextbest_spool_bytes",
            "Bytes of this replica's spool on disk",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.full = Gauge(
            "nextbest_spool_full",
            "1 while the spool is full: the replica refuses calls and says NOT_SERVING",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.spooled_total = Counter(
            "nextbest_spooled",
            "Decisions and rewards kept in the spool while Redis was unreachable",
            ["kind"],
            registry=r,
        )
        self.replayed_total = Counter(
            "nextbest_spool_replayed",
            "Spooled decisions and queued rewards handed over to Redis",
            ["kind"],
            registry=r,
        )
        self.dropped_total = Counter(
            "nextbest_spool_dropped",
            "Spooled decisions and queued rewards Redis refused at replay (e.g. an event id "
            "another replica used meanwhile, a reward for an unknown event)",
            ["kind", "reason"],
            registry=r,
        )
        for kind in ("decision", "reward"):  # at 0 from the start: increase() sees the first
            self.spooled_total.labels(kind)
            self.replayed_total.labels(kind)

    def spooled(self, kind: str) -> None:
        self.metrics.child(self.spooled_total, kind).inc()

    def replayed(self, kind: str) -> None:
        self.metrics.child(self.replayed_total, kind).inc()

    def dropped(self, kind: str, reason: DecisionError) -> None:
        self.metrics.child(self.dropped_total, kind, type(reason).__name__).inc()

    def state(self, reachable: bool, records: int, size: int, full: bool) -> None:
        self.redis.redis_reachable(reachable)
        self.records.set(records)
        self.size.set(size)
        self.full.set(1 if full else 0)
