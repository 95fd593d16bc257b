"""The embedded store: memory for speed, files so that nothing acknowledged is lost.

Layout of the data directory::

    journal/<seq>.jsonl                       write-ahead records: decisions, rewards,
                                              activations, appended before each is acknowledged
    policies/<policy>/decisions/<seq>.dsjson  joined events, in VW's DSJSON, in join order
    policies/<policy>/models/                 model checkpoints (see checkpoints.py)

Durability (``fsync``): every record is written with write(2) before the RPC answers, so a
crash of the process (kill -9) loses nothing acknowledged, in every mode. What differs is a
crash of the machine: ``always`` fsyncs before answering (group commit: concurrent RPCs
share one fsync) and loses nothing; ``interval`` fsyncs every ``fsync_interval`` seconds
and may lose that much; ``never`` leaves it to the kernel (typically up to 30 s on Linux).

Recovery rebuilds pending joins from the journal, closed events from the decision logs, and
each model from its newest whole checkpoint plus the logged events learned after it, in the
order they were learned, so the model is the one a crash-free run would have.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import os
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson

from nextbest.policy.config import Config
from nextbest.policy.errors import Unavailable
from nextbest.policy.events import Event, JoinStatus, ReceivedReward
from nextbest.policy.model import Model
from nextbest.store import codec, dsjson
from nextbest.store.checkpoints import Checkpoints
from nextbest.store.files import Damage, SegmentedLog, list_segments, read_records
from nextbest.store.memory import MemoryStore

Fsync = Literal["always", "interval", "never"]
JOURNAL = ".jsonl"
LOG = ".dsjson"


@dataclass(frozen=True, slots=True)
class Durability:
    fsync: Fsync = "interval"
    fsync_interval: float = 1.0
    segment_bytes: int = 64 << 20
    retention_bytes: int = 1 << 30  # per policy's decision log; older segments are deleted
    retention_age: float = 7 * 86400.0
    keep_checkpoints: int = 3


@dataclass(slots=True)
class Recovery:
    """What a start found on disk; logged so that operators see what came back."""

    pending: int = 0
    closed: int = 0
    replayed: dict[str, int] = field(default_factory=dict)
    checkpoints: dict[str, str] = field(default_factory=dict)
    damage: list[Damage] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _unavailable(what: str, exc: OSError) -> Unavailable:
    return Unavailable(f"cannot write the {what}: {exc.strerror or exc}")


def _fsync_all(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):  # rotated and closed meanwhile: rotation fsynced it
            os.fsync(fd)


class DurableStore(MemoryStore):
    def __init__(self, data_dir: Path, durability: Durability, retain_closed: int) -> None:
        super().__init__(retain_closed)
        self.data_dir = data_dir
        self.durability = durability
        self.journal = SegmentedLog(data_dir / "journal", JOURNAL, durability.segment_bytes)
        self._logs: dict[str, SegmentedLog] = {}
        # The journal segment holding each pending event's decision, and how many pending
        # events each segment holds: compaction deletes only a prefix of segments, so
        # keeping the decision's segment keeps every later record of the event too.
        self._decided_in: dict[str, int] = {}
        self._segment_refs: Counter[int] = Counter()
        self._written = 0  # appends so far
        self._synced = 0  # appends known to be on disk
        self._sync_task: asyncio.Future[None] | None = None

    # -- EventStore --------------------------------------------------------------------------

    def add(self, event: Event) -> None:
        data = codec.encode(event)
        self._journal(b'{"k":"d","e":' + data + b"}")
        self._keep(event, data)
        self._track(event.event_id, self.journal.start)

    def add_reward(self, event: Event, reward: ReceivedReward) -> None:
        self._journal(orjson.dumps({"k": "r", "id": event.event_id, "r": reward}))
        super().add_reward(event, reward)

    def activate(self, event: Event) -> None:
        self._journal(orjson.dumps({"k": "a", "id": event.event_id}))
        super().activate(event)

    def close(self, event: Event) -> None:
        data = codec.encode(event)  # once, for the log line and the closed set
        try:
            self.log(event.policy).append([dsjson.line(event, data)])
        except OSError as exc:
            raise _unavailable("decision log", exc) from exc
        self._written += 1
        self._retire(event, data)
        segment = self._decided_in.pop(event.event_id, None)
        if segment is not None:
            self._segment_refs[segment] -= 1
        # The decision log says the event is closed until retention deletes that segment;
        # the journal may still hold the event's decision then, so it says so too. Best
        # effort: the decision-log line, written above, is what counts while it exists.
        with contextlib.suppress(OSError):
            self.journal.append([b'{"k":"c","id":' + orjson.dumps(event.event_id) + b"}"])
            self._written += 1

    # -- files -------------------------------------------------------------------------------

    def log(self, policy: str) -> SegmentedLog:
        found = self._logs.get(policy)
        if found is None:
            found = self._logs[policy] = SegmentedLog(
                self.policy_dir(policy) / "decisions", LOG, self.durability.segment_bytes
            )
        return found

    def policy_dir(self, policy: str) -> Path:
        return self.data_dir / "policies" / policy

    def _journal(self, record: bytes) -> None:
        try:
            self.journal.append([record])
        except OSError as exc:
            raise _unavailable("journal", exc) from exc
        self._written += 1

    def _track(self, event_id: str, segment: int) -> None:
        self._decided_in[event_id] = segment
        self._segment_refs[segment] += 1

    # -- durability ----------------------------------------------------------------------------

    def _fds(self) -> list[int]:
        return [self.journal.fileno(), *(log.fileno() for log in self._logs.values())]

    def _take_dirty(self) -> list[int]:
        """The files written since their last sync, marked clean: a sync about to start
        covers them. Only these are fsynced, so a commit costs one fsync (and one GIL
        hand-off back from the thread) per file actually written, usually just the journal."""
        dirty = [log for log in (self.journal, *self._logs.values()) if log.unsynced]
        for log in dirty:
            log.unsynced = False
        return [log.fileno() for log in dirty]

    async def commit(self) -> None:
        """With fsync=always: return once everything written so far is on disk."""
        if self.durability.fsync != "always":
            return
        target = self._written
        while self._synced < target:
            if self._sync_task is None or self._sync_task.done():
                self._sync_task = asyncio.ensure_future(self._sync_in_thread())
            await asyncio.shield(self._sync_task)

    async def _sync_in_thread(self) -> None:
        written = self._written
        fds = self._take_dirty()
        if fds:
            await asyncio.to_thread(_fsync_all, fds)
        self._synced = max(self._synced, written)

    async def sync_periodically(self) -> None:
        """With fsync=interval: fsync what was written, every fsync_interval seconds."""
        while self.durability.fsync == "interval":
            await asyncio.sleep(self.durability.fsync_interval)
            if self._synced < self._written:
                await self._sync_in_thread()

    def sync(self) -> None:
        """fsync everything now (before a checkpoint, and at shutdown)."""
        written = self._written
        self._take_dirty()
        _fsync_all(self._fds())
        self._synced = max(self._synced, written)

    def checkpoint(self, models: dict[str, Model]) -> dict[str, int]:
        """Save each model that learned since its last checkpoint; then drop what no
        checkpoint needs any more. Returns the learned count saved per policy."""
        self.sync()
        saved: dict[str, int] = {}
        for policy, model in models.items():
            checkpoints = self.checkpoints(policy)
            newest = checkpoints.manifests()
            if newest and newest[0][1] is not None and newest[0][1].learned == model.learned:
                continue
            checkpoints.save(policy, model, self.log(policy).seq)
            saved[policy] = model.learned
        self.compact()
        return saved

    def checkpoints(self, policy: str) -> Checkpoints:
        return Checkpoints(self.policy_dir(policy) / "models", self.durability.keep_checkpoints)

    def compact(self) -> None:
        """Delete journal segments no pending event needs, and decision-log segments past
        the retention bounds that no kept checkpoint needs for replay."""
        for start, path in self.journal.segments()[:-1]:
            if self._segment_refs.get(start, 0) > 0:
                break  # only a prefix goes: a close marker never outlives its decision
            path.unlink(missing_ok=True)
            self._segment_refs.pop(start, None)
        now = time.time()
        for policy, log in self._logs.items():
            manifests = [m for _, m in self.checkpoints(policy).manifests() if m is not None]
            needed_from = min((m.log_seq for m in manifests), default=0)
            segments = log.segments()
            total = sum(p.stat().st_size for _, p in segments)
            for (_, path), (next_start, _) in itertools.pairwise(segments):
                old = now - path.stat().st_mtime > self.durability.retention_age
                if next_start > needed_from or not (total > self.durability.retention_bytes or old):
                    break
                total -= path.stat().st_size
                path.unlink(missing_ok=True)

    def close_files(self) -> None:
        self.sync()
        self.journal.close()
        for log in self._logs.values():
            log.close()


def open_store(
    data_dir: Path, config: Config, durability: Durability, retain_closed: int
) -> tuple[DurableStore, dict[str, Model], Recovery]:
    """Read what a previous run left in data_dir; return the store and models to serve.

    Memory during recovery: the ids of every logged event (to tell closed from pending
    journal records), the last `retain_closed` closed events, and the events to replay.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    recovery = Recovery()
    store_checkpoints = {
        name: Checkpoints(data_dir / "policies" / name / "models", durability.keep_checkpoints)
        for name in config.policies
    }
    models: dict[str, Model] = {}
    replay_from: dict[str, int] = {}
    recovery.replayed = dict.fromkeys(config.policies, 0)
    for policy, spec in config.policies.items():
        found = store_checkpoints[policy].newest(spec.vw_args, recovery.problems)
        if found is None:
            models[policy], replay_from[policy] = Model(spec.vw_args), 0
            recovery.checkpoints[policy] = "none: starting from an empty model"
        else:
            path, manifest = found
            models[policy] = Model(spec.vw_args, initial=path, learned=manifest.learned)
            replay_from[policy] = manifest.log_seq
            recovery.checkpoints[policy] = path.name

    closed_ids: set[str] = set()
    recent: OrderedDict[str, Event] = OrderedDict()
    for policy_dir in sorted((data_dir / "policies").glob("*")):
        policy = policy_dir.name
        model = models.get(policy)
        replayed = 0
        for seq, record in read_records(policy_dir / "decisions", LOG, recovery.damage):
            event = dsjson.event_of(record)
            if event is None:
                continue
            closed_ids.add(event.event_id)
            recent[event.event_id] = event
            if len(recent) > retain_closed:
                recent.popitem(last=False)
            if (
                model is not None
                and seq >= replay_from[policy]
                and dsjson.learned(event)
                and event.joined_reward is not None
            ):
                model.learn(event.vw_lines(), event.chosen, -event.joined_reward, event.probability)
                replayed += 1
        if model is not None:
            recovery.replayed[policy] = replayed

    pending: dict[str, Event] = {}
    decided_in: dict[str, int] = {}
    starts = [start for start, _ in list_segments(data_dir / "journal", JOURNAL)]
    for seq, record in read_records(data_dir / "journal", JOURNAL, recovery.damage):
        event_id = _apply(record, pending, closed_ids, recent)
        if record.get("k") == "d" and event_id in pending:
            decided_in[event_id] = starts[bisect.bisect_right(starts, seq) - 1]

    store = DurableStore(data_dir, durability, retain_closed)
    for event in recent.values():
        store._keep(event)
    for event in pending.values():
        store._keep(event)
        store._track(event.event_id, decided_in[event.event_id])
    for policy in config.policies:
        store.log(policy)  # open for appending, after any torn tail was cut off
    recovery.pending, recovery.closed = len(pending), len(closed_ids)
    return store, models, recovery


def _apply(
    record: dict[str, Any],
    pending: dict[str, Event],
    closed_ids: set[str],
    recent: OrderedDict[str, Event],
) -> str | None:
    """Replay one journal record; returns the event id it concerns."""
    kind = record.get("k")
    if kind == "d":
        event = codec.from_dict(record["e"])
        if event.event_id not in closed_ids:
            pending[event.event_id] = event
        return event.event_id
    event_id = record.get("id")
    if not isinstance(event_id, str):
        return None
    if kind == "c":
        closed_ids.add(event_id)
        pending.pop(event_id, None)
        return event_id
    target = pending.get(event_id) or recent.get(event_id)
    if target is None:
        return event_id
    if kind == "r":
        reward = codec.reward_from_dict(record["r"])
        if target.join_status is JoinStatus.PENDING or reward not in target.rewards:
            target.rewards.append(reward)  # a closed event's late rewards, for Explain
    elif kind == "a":
        target.activated = True
    return event_id
