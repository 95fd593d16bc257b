"""What the engine needs from the outside: a place for events, and someone to tell.

Stores (``nextbest.store``) and observability (``nextbest.observability``) implement these;
the engine never imports them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from nextbest.policy.events import Event, RewardStatus


class EventStore(Protocol):
    """Events by id: the pending ones ordered by join deadline, closed ones kept a while."""

    def get(self, event_id: str) -> Event | None: ...

    def add(self, event: Event) -> None:
        """Keep a new pending event."""

    def update(self, event: Event) -> None:
        """Persist changes made to an event (rewards, activation)."""

    def close(self, event: Event) -> None:
        """The event's join is over: it leaves the pending set but stays readable."""

    def due(self, now: float, limit: int) -> list[Event]:
        """Pending events whose deadline is at or before now, earliest first."""

    def pending_counts(self) -> dict[str, int]:
        """Pending events per policy."""


class Listener(Protocol):
    """Told what happens, for metrics and logs. Must be cheap: it runs on the hot path."""

    def decided(self, event: Event) -> None: ...

    def rewarded(self, event: Event, status: RewardStatus, value: float) -> None: ...

    def joined(self, event: Event) -> None: ...

    def epsilons(self, policy: str, values: Iterable[tuple[str, float]]) -> None: ...


class NullListener:
    """Tells no one: for tests and tools that need no metrics."""

    def decided(self, event: Event) -> None:
        pass

    def rewarded(self, event: Event, status: RewardStatus, value: float) -> None:
        pass

    def joined(self, event: Event) -> None:
        pass

    def epsilons(self, policy: str, values: Iterable[tuple[str, float]]) -> None:
        pass
