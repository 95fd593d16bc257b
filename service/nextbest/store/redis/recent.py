"""What this replica last knew of the events it decided: a local copy, so that a Reward on
the replica that decided its event needs no read from Redis before its change.

A copy may miss changes made elsewhere (another replica's reward, activation or close);
that is safe because every change is a script that re-decides against the stored event,
and what a caller judges from the copy alone is fixed at decision (policy, deadline,
fingerprint, defer_activation) or only grows (rewards, the activation flag, the close).

Held as the event hash's fields (its bytes, its rewards, its activation flag), not as
objects: no garbage-collector work, and a byte budget that is really the memory used.
Least recently used dropped first past the budget.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

DEFAULT_BYTES = 32 << 20
OVERHEAD = 256  # bytes an entry costs beside its fields: the dict slot, key, tuple, headers


class Fields(NamedTuple):
    """An event as its hash holds it: ``e`` (rewards apart), ``r``, ``a`` (see scripts)."""

    e: bytes
    r: bytes | None
    a: bytes | None


class RecentEvents:
    """A bounded map of event id → `Fields`, least recently used dropped past `budget`."""

    def __init__(self, budget: int = DEFAULT_BYTES) -> None:
        self.budget = budget
        self._held: OrderedDict[str, Fields] = OrderedDict()
        self._size = 0

    def __len__(self) -> int:
        return len(self._held)

    @property
    def size(self) -> int:
        """Bytes held, as counted against the budget."""
        return self._size

    def find(self, event_id: str) -> Fields | None:
        held = self._held.get(event_id)
        if held is not None:
            self._held.move_to_end(event_id)
        return held

    def keep(self, event_id: str, fields: Fields) -> None:
        """Hold (or replace) the copy of an event; one larger than the budget is not held."""
        self.drop(event_id)
        size = _size(event_id, fields)
        if size > self.budget:
            return
        self._held[event_id] = fields
        self._size += size
        while self._size > self.budget:
            oldest, dropped = self._held.popitem(last=False)
            self._size -= _size(oldest, dropped)

    def update(self, event_id: str, r: bytes | None, a: bytes | None) -> None:
        """New rewards and flag for a held event (one not held stays so)."""
        held = self._held.get(event_id)
        if held is not None:
            self.keep(event_id, Fields(held.e, r, a))

    def drop(self, event_id: str) -> None:
        held = self._held.pop(event_id, None)
        if held is not None:
            self._size -= _size(event_id, held)


def _size(event_id: str, fields: Fields) -> int:
    return OVERHEAD + len(event_id) + len(fields.e) + len(fields.r or b"")
