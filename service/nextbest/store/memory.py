"""The in-memory half of every store: events as bytes, pending ones ordered by deadline.

Pending events sit in a dict and a deadline heap; closed events stay readable (Explain,
idempotent Decide, late rewards) in an insertion-ordered dict bounded by ``retain_closed``,
oldest dropped first. Events are kept encoded (see :mod:`nextbest.store.codec`); ``get``
hands out a fresh copy, and changes come back through ``add_reward``, ``activate`` and
``close``.
"""

from __future__ import annotations

import heapq
from collections import Counter, OrderedDict

from nextbest.policy.events import Event, JoinStatus, ReceivedReward
from nextbest.store import codec


class MemoryStore:
    def __init__(self, retain_closed: int = 50_000) -> None:
        self._pending: dict[str, bytes] = {}
        self._deadlines: list[tuple[float, str]] = []
        self._closed: OrderedDict[str, bytes] = OrderedDict()
        self._retain_closed = retain_closed
        self._per_policy: Counter[str] = Counter()

    def get(self, event_id: str) -> Event | None:
        data = self._pending.get(event_id)
        if data is None:
            data = self._closed.get(event_id)
        return None if data is None else codec.decode(data)

    def add(self, event: Event) -> None:
        self._keep(event)

    def add_reward(self, event: Event, reward: ReceivedReward) -> None:
        event.rewards.append(reward)
        self._save(event)

    def activate(self, event: Event) -> None:
        event.activated = True
        self._save(event)

    def close(self, event: Event) -> None:
        self._retire(event, codec.encode(event))

    def reschedule(self, event: Event, at: float) -> None:
        heapq.heappush(self._deadlines, (at, event.event_id))

    def due(self, now: float, limit: int) -> list[Event]:
        out: list[Event] = []
        while self._deadlines and len(out) < limit and self._deadlines[0][0] <= now:
            _, event_id = heapq.heappop(self._deadlines)
            data = self._pending.get(event_id)
            if data is not None:
                out.append(codec.decode(data))
        return out

    def pending_counts(self) -> dict[str, int]:
        return dict(self._per_policy)

    # -- for subclasses and recovery -------------------------------------------------------

    def _keep(self, event: Event, data: bytes | None = None) -> None:
        """Hold a pending event (or a closed one, by its status), encoded as `data`."""
        data = codec.encode(event) if data is None else data
        if event.join_status is not JoinStatus.PENDING:
            self._closed[event.event_id] = data
            return
        if event.event_id not in self._pending:
            self._per_policy[event.policy] += 1
            heapq.heappush(self._deadlines, (event.deadline, event.event_id))
        self._pending[event.event_id] = data

    def _retire(self, event: Event, data: bytes) -> None:
        """Move a closed event, encoded as `data`, from pending to the bounded closed set."""
        if self._pending.pop(event.event_id, None) is not None:
            self._per_policy[event.policy] -= 1
        self._closed[event.event_id] = data
        while len(self._closed) > self._retain_closed:
            self._closed.popitem(last=False)

    def _save(self, event: Event) -> None:
        data = codec.encode(event)
        if event.event_id in self._pending:
            self._pending[event.event_id] = data
        elif event.event_id in self._closed:
            self._closed[event.event_id] = data
