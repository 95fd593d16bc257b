"""The replica's spool: what a serving replica acknowledged while Redis could not be
reached, kept in its data dir until Redis has it.

When Redis goes away a replica keeps deciding with the model it has. What it cannot hand
to Redis it appends to the spool (JSON lines, fsynced as ``--fsync`` says) and keeps in
memory, so that this replica still answers for it:

- a decision: the event, which Explain, Reward, Activate and a retried Decide on this
  replica then read from here; its rewards, activation and close are spooled with it
  (the replica holds the event whole, so it judges them as Redis would);
- a reward for an event it cannot read (decided before the outage, or on another
  replica): queued as received (``Engine.reward`` answers QUEUED) and joined once Redis is
  back, as received at its time.

Replay: while anything is spooled, `run` probes Redis (backing off up to
`MAX_BACKOFF`) and hands it over: each spooled event whole
(`RedisEventStore.restore`), then the queued rewards through ``Engine.reward``. Each step
is idempotent (an event is found ``same``, a reward carries the token it was spooled
with), so a crash in the middle replays again and counts nothing twice. Once all of it
is in Redis the files are removed.

While Redis is unreachable (from a failed call until a probe answers) calls do not try
it: a Decide is spooled at once and a read of an event not spooled is Unavailable at
once, so no call waits out a connection timeout.

Bounded: beyond `max_bytes` on disk a change is refused (Unavailable, nothing kept) and
`full` turns on (the replica's health says NOT_SERVING) until a replay empties it.

What an outage costs: a caller's event_id is checked against Redis only at replay (an
id another replica used meanwhile makes the replayed event a conflict: dropped, logged
and counted), and an activation of an event this replica did not decide is Unavailable.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import orjson

from nextbest.observability.logging import get_logger
from nextbest.policy.errors import DecisionError, Unavailable
from nextbest.policy.events import Event, ReceivedReward, RewardStatus
from nextbest.policy.ports import Kept, only
from nextbest.policy.requests import RewardInput
from nextbest.policy.reuse import retried
from nextbest.store import codec
from nextbest.store.files import Damage, SegmentedLog, fsync_dir, list_segments, read_records
from nextbest.store.lock import DataDirLock
from nextbest.store.redis.store import RedisEventStore, new_token

T = TypeVar("T")
SUFFIX = ".spool"
SEGMENT_BYTES = 16 << 20
MIN_BACKOFF = 0.05  # seconds between probes of an unreachable Redis, doubling …
MAX_BACKOFF = 1.0  # … up to this: a replay starts at most a second after Redis is back
DEFAULT_MAX_BYTES = 256 << 20

# The token of the queued reward being replayed: `add_reward` sends it to Redis, so the
# reward is kept once however often its replay is interrupted (a task-local value: the
# replay runs Engine.reward, which calls the store back, in its own task).
REPLAY_TOKEN: ContextVar[str | None] = ContextVar("nextbest_replay_token", default=None)


class SpoolWatcher(Protocol):
    """Told what the spool does: metrics and logs."""

    def spooled(self, kind: str) -> None:
        """A decision or a reward was spooled."""

    def replayed(self, kind: str) -> None:
        """A spooled decision or queued reward is now in Redis."""

    def dropped(self, kind: str, reason: DecisionError) -> None:
        """Redis refused a spooled decision or queued reward at replay."""

    def state(self, reachable: bool, records: int, size: int, full: bool) -> None:
        """Whether Redis answers, what the spool holds (records, bytes), whether it is full."""


@dataclass(slots=True)
class _Spooled:
    """A decision made while Redis was unreachable, with what happened to it since."""

    event: Event  # as decided (activated kept current), its rewards apart
    rewards: list[tuple[ReceivedReward, str]] = field(default_factory=list)  # with tokens
    closed: Event | None = None  # as this replica closed it
    changes: int = 0  # counts changes: a replay that raced one sends the event again

    def current(self) -> Event:
        base = self.closed if self.closed is not None else self.event
        return dataclasses.replace(
            base,
            rewards=[r for r, _ in self.rewards],
            activated=base.activated or self.event.activated,
        )


@dataclass(frozen=True, slots=True)
class _Queued:
    req: RewardInput
    received_at: float
    token: str


class SpoolingStore:
    """The Redis event store with a spool in `directory` (see the module docstring).

    Owns `directory` (locked: one process per spool). `max_bytes`: the spool's size on
    disk at most; `fsync`: ``always`` (`commit` returns once on disk), ``interval``
    (every `fsync_interval` seconds) or ``never``."""

    def __init__(
        self,
        inner: RedisEventStore,
        directory: Path,
        watcher: SpoolWatcher,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        fsync: str = "interval",
        fsync_interval: float = 1.0,
        on_full: Callable[[bool], None] = lambda full: None,
    ) -> None:
        self.inner = inner
        self.directory = directory
        self.watcher = watcher
        self.max_bytes = max_bytes
        self.fsync = fsync
        self.fsync_interval = fsync_interval
        self.on_full = on_full
        self.log = get_logger("nextbest.spool")
        self._lock = DataDirLock(directory)
        self._events: dict[str, _Spooled] = {}
        self._queued: deque[_Queued] = deque()
        self.damage: list[Damage] = []
        for _, record in read_records(directory, SUFFIX, self.damage):
            self._restore(record)
        self._file = SegmentedLog(directory, SUFFIX, SEGMENT_BYTES)
        self._bytes = sum(p.stat().st_size for _, p in list_segments(directory, SUFFIX))
        self._written = 0  # appends so far …
        self._synced = 0  # … of which on disk
        self._sync_task: asyncio.Future[None] | None = None
        self.offline = False
        self.full = False
        self._wake = asyncio.Event()
        self._emptied = asyncio.Event()  # set while nothing is spooled
        self._progress = asyncio.Event()  # set when a probe fails or the spool empties
        self._probe_failures = 0
        if not self.records:
            self._emptied.set()
        if self.records:
            self._wake.set()  # what a crash left behind is replayed first

    @property
    def records(self) -> int:
        """Decisions and queued rewards not yet in Redis."""
        return len(self._events) + len(self._queued)

    # -- EventStore ------------------------------------------------------------------------

    async def get(self, event_id: str) -> Event | None:
        held = self._events.get(event_id)
        if held is not None:
            return held.current()
        self._check_online()
        return await self._reaching(self.inner.get(event_id))

    async def recent(self, event_id: str) -> Event | None:
        held = self._events.get(event_id)
        if held is not None:
            return held.current()
        self._check_online()
        return await self._reaching(self.inner.recent(event_id))

    async def used(self, event_id: str) -> bool:
        if event_id in self._events:
            return True
        self._check_online()
        return await self._reaching(self.inner.used(event_id))

    async def add(self, event: Event, *, drawn: bool = False) -> Event:
        return only(await self.add_many([(event, drawn)]))

    async def add_many(self, events: Sequence[tuple[Event, bool]]) -> list[Kept]:
        """In Redis when it is reachable; the events spooled when it is not (kept by Redis
        or not: a replay finds those it kept "same")."""
        out: list[Kept | None] = []
        ask: list[tuple[Event, bool]] = []
        for event, drawn in events:
            held = self._events.get(event.event_id)
            if held is None:
                ask.append((event, drawn))
                out.append(None)
                continue
            try:  # spooled here: a retry, or an identical Decide racing
                out.append(retried(held.current(), event.policy, event.fingerprint))
            except DecisionError as exc:
                out.append(exc)
        answers: list[Kept | None] = [None] * len(ask)
        if ask and not self.offline:
            try:
                answers = list(await self.inner.add_many(ask))
            except Unavailable:
                self._went_offline()
        if any(isinstance(a, Unavailable) for a in answers):
            self._went_offline()  # a Cluster failed part-way: the rest is spooled
        filled = iter(
            self._spooled(event) if answer is None or isinstance(answer, Unavailable) else answer
            for (event, _), answer in zip(ask, answers, strict=True)
        )
        return [next(filled) if kept is None else kept for kept in out]

    def _spooled(self, event: Event) -> Kept:
        held = self._events.get(event.event_id)
        if held is not None:  # the same id earlier in this batch
            try:
                return retried(held.current(), event.policy, event.fingerprint)
            except DecisionError as exc:
                return exc
        self._append({"k": "e", "e": codec.as_dict(event)})
        self._events[event.event_id] = _Spooled(dataclasses.replace(event, rewards=[]))
        self.watcher.spooled("decision")
        return event

    async def add_reward(
        self, event: Event, reward: ReceivedReward, *, settle_as: Event | None = None
    ) -> tuple[Event, ReceivedReward | None]:
        """In Redis when it is reachable (settling with it as Redis can: `settle_as`);
        spooled with its event when this replica spooled that, and then settled the usual
        way (`settle_as` is not taken: the event comes back pending)."""
        held = self._events.get(event.event_id)
        if held is None:
            self._check_online()
            token = REPLAY_TOKEN.get()
            call = self.inner.add_reward(event, reward, token, settle_as=settle_as)
            return await self._reaching(call)
        if reward.reward_id and any(r.reward_id == reward.reward_id for r, _ in held.rewards):
            return held.current(), None
        if held.closed is not None:
            reward = dataclasses.replace(reward, status=RewardStatus.LATE)
        token = new_token()
        self._append({"k": "r", "id": event.event_id, "t": token, "r": reward})
        held.rewards.append((reward, token))
        held.changes += 1
        self.watcher.spooled("reward")
        return held.current(), reward

    async def queue_reward(self, req: RewardInput, received_at: float) -> None:
        token = new_token()
        fields = dataclasses.asdict(req)
        self._append({"k": "q", "q": fields, "at": received_at, "t": token})
        self._queued.append(_Queued(req, received_at, token))
        self.watcher.spooled("reward")

    async def activate(self, event: Event) -> Event:
        held = self._events.get(event.event_id)
        if held is None:
            self._check_online()
            return await self._reaching(self.inner.activate(event))
        if held.closed is None and not held.event.activated:
            self._append({"k": "a", "id": event.event_id})
            held.event = dataclasses.replace(held.event, activated=True)
            held.changes += 1
        return held.current()

    async def settle(self, event: Event) -> bool:
        held = self._events.get(event.event_id)
        if held is None:
            self._check_online()
            return await self._reaching(self.inner.settle(event))
        if held.closed is not None:
            return False
        closed = dataclasses.replace(event, rewards=[])
        self._append({"k": "c", "e": codec.as_dict(closed)})
        held.closed = closed
        held.changes += 1
        return True

    async def reschedule(self, event: Event, at: float) -> None:
        if event.event_id in self._events:
            return  # its replay writes its due entry
        self._check_online()
        await self._reaching(self.inner.reschedule(event, at))

    async def due(self, now: float, limit: int) -> list[Event]:
        if self.offline:
            return []  # none can be closed while Redis is unreachable
        return await self._reaching(self.inner.due(now, limit))

    def pending_counts(self) -> dict[str, int]:
        counts = self.inner.pending_counts()
        for held in self._events.values():
            if held.closed is None:
                counts[held.event.policy] = counts.get(held.event.policy, 0) + 1
        return counts

    # -- durability ------------------------------------------------------------------------

    async def commit(self) -> None:
        """With fsync=always: return once every spooled change is on disk."""
        if self.fsync != "always":
            return
        target = self._written
        while self._synced < target:
            if self._sync_task is None or self._sync_task.done():
                self._sync_task = asyncio.ensure_future(self._sync())
            try:
                await asyncio.shield(self._sync_task)
            except OSError as exc:
                raise Unavailable(f"cannot fsync the spool: {exc.strerror or exc}") from exc

    async def _sync(self) -> None:
        written = self._written
        fd = os.dup(self._file.fileno())
        self._file.unsynced = False
        try:
            await asyncio.to_thread(os.fsync, fd)
        finally:
            os.close(fd)
        self._synced = max(self._synced, written)

    # -- replay ----------------------------------------------------------------------------

    async def run(self, reward: Callable[[RewardInput, float], Awaitable[object]]) -> None:
        """Replay until cancelled: whenever something is spooled, probe Redis and hand
        it over; `reward` joins a queued reward (``Engine.reward``)."""
        backoff = MIN_BACKOFF
        synced_at = asyncio.get_running_loop().time()
        while True:
            if not self.offline and not self.records:
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                await self.inner.ping()
                self._came_back()
                await self._replay(reward)
                backoff = MIN_BACKOFF
            except Unavailable:
                self._went_offline()
                self._probe_failures += 1
                self._progress.set()
                await asyncio.sleep(backoff)
                backoff = min(2 * backoff, MAX_BACKOFF)
            now = asyncio.get_running_loop().time()
            if self.fsync == "interval" and now - synced_at >= self.fsync_interval:
                synced_at = now
                if self._file.unsynced:
                    await self._sync()

    async def _replay(self, reward: Callable[[RewardInput, float], Awaitable[object]]) -> None:
        while self._events:
            event_id, held = next(iter(self._events.items()))
            seen = held.changes
            try:
                await self.inner.restore(held.event, list(held.rewards), held.closed)
            except Unavailable:
                raise
            except DecisionError as exc:
                self._dropped("decision", event_id, exc)
            else:
                if held.changes != seen:
                    continue  # changed while it was sent: send it again
                self.watcher.replayed("decision")
            del self._events[event_id]
        while self._queued:
            queued = self._queued[0]
            token = REPLAY_TOKEN.set(queued.token)
            try:
                await reward(queued.req, queued.received_at)
            except Unavailable:
                raise
            except DecisionError as exc:
                self._dropped("reward", queued.req.event_id, exc)
            else:
                self.watcher.replayed("reward")
            finally:
                REPLAY_TOKEN.reset(token)
            self._queued.popleft()
        self._empty()

    def _dropped(self, kind: str, event_id: str, exc: DecisionError) -> None:
        self.log.warning("spool_dropped", kind=kind, event_id=event_id, reason=str(exc))
        self.watcher.dropped(kind, exc)

    def _empty(self) -> None:
        """Everything is in Redis: remove the files and start afresh."""
        self._file.close()
        for _, path in list_segments(self.directory, SUFFIX):
            path.unlink(missing_ok=True)
        fsync_dir(self.directory)
        self._file = SegmentedLog(self.directory, SUFFIX, SEGMENT_BYTES)
        self._bytes = 0
        self._synced = self._written
        self._set_full(False)
        self._emptied.set()
        self._progress.set()
        self._report()

    # -- plumbing ---------------------------------------------------------------------------

    def _append(self, record: dict[str, Any]) -> None:
        """One record, as JSON (orjson writes dataclasses and enums as the stores read
        them back: `codec.reward_from_dict`)."""
        line = orjson.dumps(record)
        if self._bytes + len(line) + 1 > self.max_bytes:
            self._set_full(True)
            raise Unavailable(
                f"Redis is unreachable and this replica's spool is full ({self.max_bytes} "
                "bytes): nothing was acknowledged, retry"
            )
        try:
            self._file.append([line])
        except OSError as exc:
            raise Unavailable(
                f"Redis is unreachable and the spool cannot be written: {exc.strerror or exc}"
            ) from exc
        self._bytes += len(line) + 1
        self._written += 1
        self._wake.set()
        self._emptied.clear()
        self._report()

    def _restore(self, record: dict[str, Any]) -> None:
        """Rebuild the spool from one record of the files a previous run left."""
        try:
            kind = record["k"]
            if kind == "e":
                event = codec.from_dict(record["e"])
                self._events[event.event_id] = _Spooled(event)
            elif kind == "q":
                req = RewardInput(**record["q"])
                self._queued.append(_Queued(req, float(record["at"]), str(record["t"])))
            elif kind in ("r", "a", "c"):
                self._restore_change(kind, record)
        except (KeyError, TypeError, ValueError, codec.BadRecord) as exc:
            self.log.warning("spool_record_skipped", reason=f"{type(exc).__name__}: {exc}")

    def _restore_change(self, kind: str, record: dict[str, Any]) -> None:
        event_id = record["e"]["event_id"] if kind == "c" else record["id"]
        held = self._events.get(event_id)
        if held is None:
            return
        if kind == "r":
            held.rewards.append((codec.reward_from_dict(record["r"]), str(record["t"])))
        elif kind == "a":
            held.event = dataclasses.replace(held.event, activated=True)
        else:
            held.closed = codec.from_dict(record["e"])

    def _check_online(self) -> None:
        if self.offline:
            raise Unavailable("Redis is unreachable: nothing was acknowledged, retry")

    async def _reaching(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except Unavailable:
            self._went_offline()
            raise

    def _went_offline(self) -> None:
        if not self.offline:
            self.offline = True
            self.log.warning("redis_unreachable", spooling=True)
            self._report()
        self._wake.set()

    def _came_back(self) -> None:
        if self.offline:
            self.offline = False
            self.log.info("redis_reachable", spooled=self.records)
            self._report()

    def _set_full(self, full: bool) -> None:
        if full != self.full:
            self.full = full
            if full:
                self.log.error("spool_full", max_bytes=self.max_bytes)
            self.on_full(full)

    def _report(self) -> None:
        self.watcher.state(not self.offline, self.records, self._bytes, self.full)

    async def drain(self, within: float) -> bool:
        """Wait (at most `within` seconds) until `run` has handed everything spooled to
        Redis; whether it has. A stopping replica calls this, so that what it spooled is not
        left on its disk when Redis is back (what is left is replayed by its next start)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        failures = self._probe_failures
        while not self._emptied.is_set():
            remaining = deadline - loop.time()
            if self._probe_failures > failures + 1 or remaining <= 0:
                return False  # probed twice since: Redis is still unreachable
            self._progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), remaining)
        return True

    def release(self) -> None:
        """Close the files and unlock the directory (what is spooled stays for the next run)."""
        self._file.close()
        self._lock.release()
