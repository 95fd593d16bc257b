"""The embedded store: events in process memory.

Pending events sit in a dict and a deadline heap; closed events stay readable (Explain,
idempotent Decide, late rewards) in an insertion-ordered dict bounded by ``retain_closed``,
oldest dropped first.
"""

from __future__ import annotations

import heapq
from collections import Counter, OrderedDict

from nextbest.policy.events import Event, JoinStatus


class MemoryStore:
    def __init__(self, retain_closed: int = 100_000) -> None:
        self._pending: dict[str, Event] = {}
        self._deadlines: list[tuple[float, str]] = []
        self._closed: OrderedDict[str, Event] = OrderedDict()
        self._retain_closed = retain_closed
        self._per_policy: Counter[str] = Counter()

    def get(self, event_id: str) -> Event | None:
        event = self._pending.get(event_id)
        return event if event is not None else self._closed.get(event_id)

    def add(self, event: Event) -> None:
        self._pending[event.event_id] = event
        heapq.heappush(self._deadlines, (event.deadline, event.event_id))
        self._per_policy[event.policy] += 1

    def update(self, event: Event) -> None:
        """Events are mutated in place here; nothing to write."""

    def close(self, event: Event) -> None:
        if self._pending.pop(event.event_id, None) is not None:
            self._per_policy[event.policy] -= 1
        self._closed[event.event_id] = event
        while len(self._closed) > self._retain_closed:
            self._closed.popitem(last=False)

    def due(self, now: float, limit: int) -> list[Event]:
        out: list[Event] = []
        while self._deadlines and len(out) < limit and self._deadlines[0][0] <= now:
            _, event_id = heapq.heappop(self._deadlines)
            event = self._pending.get(event_id)
            if event is not None and event.join_status is JoinStatus.PENDING:
                out.append(event)
        return out

    def pending_counts(self) -> dict[str, int]:
        return dict(self._per_policy)
