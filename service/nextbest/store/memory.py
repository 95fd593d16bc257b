"""The in-memory half of every store: events as bytes, pending ones ordered by deadline.

Pending events sit in a dict and a deadline heap; closed events stay readable (Explain,
idempotent Decide, late rewards) in an insertion-ordered dict bounded by ``retain_closed``
and by ``max_closed_bytes``, oldest dropped first. Pending events are bounded by
``max_pending_bytes``: past it a new event is refused (ResourceExhausted), so a flood of
decisions nobody rewards cannot take the process down.

Events are kept encoded (see :mod:`nextbest.store.codec`); ``get`` hands out a fresh copy,
and changes come back through ``add_reward``, ``activate`` and ``close``, which return the
event as changed and leave the one they were handed as it was. A reward is
appended beside the event's bytes (comma-separated JSON, merged on ``get``), so adding one
costs the same whatever number came before it. Every id ever added is remembered in an
:class:`~nextbest.store.ids.IdIndex` (8 bytes an id), for ``used``.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections import Counter, OrderedDict
from collections.abc import Iterable, Sequence

import orjson

from nextbest.policy.errors import DecisionError, ResourceExhausted, Unavailable
from nextbest.policy.events import Event, JoinStatus, ReceivedReward
from nextbest.policy.ports import Kept, only
from nextbest.policy.requests import RewardInput
from nextbest.policy.reuse import retried, used_before
from nextbest.store import codec
from nextbest.store.ids import IdIndex

PENDING_BYTES = 1 << 30
CLOSED_BYTES = 256 << 20


class MemoryStore:
    def __init__(
        self,
        retain_closed: int = 50_000,
        *,
        max_pending_bytes: int = PENDING_BYTES,
        max_closed_bytes: int = CLOSED_BYTES,
    ) -> None:
        self._pending: dict[str, bytes] = {}
        self._deadlines: list[tuple[float, str]] = []
        self._closed: OrderedDict[str, bytes] = OrderedDict()
        # Rewards appended after the event's bytes were written, per id (bytearrays are
        # not tracked by the garbage collector, as lists would be).
        self._pending_rewards: dict[str, bytearray] = {}
        self._closed_rewards: dict[str, bytearray] = {}
        self._retain_closed = retain_closed
        self._max_pending_bytes = max_pending_bytes
        self._max_closed_bytes = max_closed_bytes
        self._pending_size = 0
        self._closed_size = 0
        self._per_policy: Counter[str] = Counter()
        self.ids = IdIndex()

    # -- EventStore (async: see nextbest.policy.ports; nothing here suspends) ------------------

    async def get(self, event_id: str) -> Event | None:
        return self.find(event_id)

    async def recent(self, event_id: str) -> Event | None:
        return self.find(event_id)  # one process: what it knows is what is stored

    async def used(self, event_id: str) -> bool:
        return event_id in self.ids

    async def add(self, event: Event, *, drawn: bool = False) -> Event:
        return only(await self.add_many([(event, drawn)]))

    async def add_many(self, events: Sequence[tuple[Event, bool]]) -> list[Kept]:
        out: list[Kept] = []
        new: dict[str, Event] = {}  # checked here, an id's first in `events`
        kept: list[tuple[Event, bytes]] = []
        room = self._max_pending_bytes - self._pending_size
        for event, drawn in events:
            try:
                if not drawn:
                    held = new.get(event.event_id) or self.find(event.event_id)
                    if held is not None:
                        out.append(retried(held, event.policy, event.fingerprint))
                        continue
                    if event.event_id in self.ids:
                        raise used_before(event.event_id)
                data = codec.encode(event)
                if len(data) > room:
                    raise self._full()
            except DecisionError as exc:
                out.append(exc)
                continue
            room -= len(data)
            new[event.event_id] = event
            kept.append((event, data))
            out.append(event)
        if kept:
            self.keep_new(kept)
        return out

    async def add_reward(
        self, event: Event, reward: ReceivedReward, *, settle_as: Event | None = None
    ) -> tuple[Event, ReceivedReward | None]:
        # One process, one loop: the engine's reading is the store's state. `settle_as` is
        # not taken: the engine settles (and learns) through `settle`, as ever.
        return self.add_reward_now(event, reward), reward

    async def queue_reward(self, req: RewardInput, received_at: float) -> None:
        # Never asked: this store's `get` never fails for want of a server.
        raise Unavailable("this store keeps no queue of rewards")

    async def activate(self, event: Event) -> Event:
        return self.activate_now(event)

    async def settle(self, event: Event) -> bool:
        self.settle_now(event)
        return True

    async def reschedule(self, event: Event, at: float) -> None:
        heapq.heappush(self._deadlines, (at, event.event_id))

    async def due(self, now: float, limit: int) -> list[Event]:
        return self.due_now(now, limit)

    # -- the same, synchronous: what the async methods do, for subclasses and tools --------------

    def find(self, event_id: str) -> Event | None:
        data = self._pending.get(event_id)
        if data is not None:
            return _decode(data, self._pending_rewards.get(event_id))
        data = self._closed.get(event_id)
        return None if data is None else _decode(data, self._closed_rewards.get(event_id))

    def keep_new(self, events: Sequence[tuple[Event, bytes]]) -> None:
        """Hold new pending events, each encoded, checked already (id and bound)."""
        for event, data in events:
            self._keep(event, data)
            self.ids.add(event.event_id)

    def add_reward_now(self, event: Event, reward: ReceivedReward) -> Event:
        self._append_reward(event, orjson.dumps(reward))
        return dataclasses.replace(event, rewards=[*event.rewards, reward])

    def activate_now(self, event: Event) -> Event:
        activated = dataclasses.replace(event, activated=True)
        self._save(activated)
        return activated

    def settle_now(self, event: Event) -> None:
        self._retire(event, codec.encode(event))

    def due_now(self, now: float, limit: int) -> list[Event]:
        out: list[Event] = []
        while self._deadlines and len(out) < limit and self._deadlines[0][0] <= now:
            _, event_id = heapq.heappop(self._deadlines)
            data = self._pending.get(event_id)
            if data is not None:
                out.append(_decode(data, self._pending_rewards.get(event_id)))
        return out

    def pending_counts(self) -> dict[str, int]:
        return dict(self._per_policy)

    def pending_bytes(self) -> int:
        return self._pending_size

    def closed_bytes(self) -> int:
        return self._closed_size

    # -- for subclasses and recovery -------------------------------------------------------

    def _full(self) -> ResourceExhausted:
        return ResourceExhausted(
            f"pending events hold {self._pending_size} bytes, the bound max_pending_bytes "
            f"({self._max_pending_bytes}) is reached: retry when joins have closed"
        )

    def hold(self, events: Iterable[Event]) -> None:
        """Hold events as they were (pending or settled, by their status), without the
        bounds of a new decision: what a recovery or a tool restores."""
        for event in events:
            self._keep(event)

    def _keep(self, event: Event, data: bytes | None = None) -> None:
        """Hold a pending event (or a closed one, by its status), encoded as `data`."""
        data = codec.encode(event) if data is None else data
        event_id = event.event_id
        if event.join_status is not JoinStatus.PENDING:
            self._drop_closed(event_id)
            self._closed[event_id] = data
            self._closed_size += len(data)
            self._evict()
            return
        old = self._pending.get(event_id)
        if old is None:
            self._per_policy[event.policy] += 1
            heapq.heappush(self._deadlines, (event.deadline, event_id))
        else:
            self._pending_size -= len(old) + len(self._pending_rewards.pop(event_id, b""))
        self._pending[event_id] = data
        self._pending_size += len(data)

    def _append_reward(self, event: Event, data: bytes) -> None:
        """Append an encoded reward beside the held event's bytes."""
        event_id = event.event_id
        pending = event_id in self._pending
        if not pending and event_id not in self._closed:
            return
        rewards = self._pending_rewards if pending else self._closed_rewards
        held = rewards.get(event_id)
        if held is None:
            rewards[event_id] = bytearray(data)
            size = len(data)
        else:
            held += b","
            held += data
            size = len(data) + 1
        if pending:
            self._pending_size += size
        else:
            self._closed_size += size
            self._evict()

    def _retire(self, event: Event, data: bytes) -> None:
        """Move a closed event, encoded as `data`, from pending to the bounded closed set."""
        event_id = event.event_id
        old = self._pending.pop(event_id, None)
        if old is not None:
            self._per_policy[event.policy] -= 1
            self._pending_size -= len(old) + len(self._pending_rewards.pop(event_id, b""))
        self._drop_closed(event_id)
        self._closed[event_id] = data
        self._closed_size += len(data)
        self._evict()

    def _drop_closed(self, event_id: str) -> None:
        old = self._closed.pop(event_id, None)
        if old is not None:
            self._closed_size -= len(old) + len(self._closed_rewards.pop(event_id, b""))

    def _evict(self) -> None:
        """Drop the oldest closed events past the count or the bytes bound."""
        while self._closed and (
            len(self._closed) > self._retain_closed or self._closed_size > self._max_closed_bytes
        ):
            event_id, data = self._closed.popitem(last=False)
            self._closed_size -= len(data) + len(self._closed_rewards.pop(event_id, b""))

    def _save(self, event: Event) -> None:
        """Re-encode a held event whole (its rewards included)."""
        if event.event_id in self._pending or event.event_id in self._closed:
            self._keep(event)


def _decode(data: bytes, rewards: bytearray | None) -> Event:
    event = codec.decode(data)
    if rewards:
        event.rewards.extend(codec.decode_rewards(rewards))
    return event
