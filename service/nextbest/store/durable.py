"""The embedded store: memory for speed, files so that nothing acknowledged is lost.

Layout of the data directory::

    lock                                      held (flock) by the one process using it
    event-ids.bin                             every event id ever used, 8 bytes each
    journal/<seq>.jsonl                       write-ahead records: decisions, rewards,
                                              activations, appended before each is acknowledged
    policies/<policy>/decisions/<seq>.dsjson  joined events, in VW's DSJSON, in join order
    policies/<policy>/late/<seq>.jsonl        rewards that came after the join closed
    policies/<policy>/models/                 model checkpoints (see checkpoints.py)

Durability (``fsync``): every record is written with write(2) before the RPC answers, so a
crash of the process (kill -9) loses nothing acknowledged, in every mode. What differs is a
crash of the machine: ``always`` fsyncs before answering (group commit: concurrent RPCs
share one fsync) and loses nothing; ``interval`` fsyncs every ``fsync_interval`` seconds
and may lose that much; ``never`` leaves it to the kernel (typically up to 30 s on Linux).
A failed fsync is final: the kernel may have dropped the pages it could not write, so the
store refuses every later write (Unavailable) until the process restarts and recovers
from what the disk really holds.

Recovery rebuilds pending joins from the journal, closed events from the decision logs, and
each model from its newest whole checkpoint plus the logged events learned after it, in the
order they were learned, so the model is the one a crash-free run would have. A journal
decision counts as closed only by a log line or close marker of that very event (its id
and decided_at), never by an older event that had the same id.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import dataclasses
import heapq
import itertools
import os
import threading
import time
import weakref
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson

from nextbest.policy.config import Config
from nextbest.policy.errors import Unavailable
from nextbest.policy.events import Event, JoinStatus, ReceivedReward
from nextbest.policy.model import Model
from nextbest.store import codec, dsjson
from nextbest.store.checkpoints import Checkpoints, Snapshot
from nextbest.store.codec import BadRecord
from nextbest.store.files import (
    Damage,
    SegmentedLog,
    SyncFailed,
    list_segments,
    read_records,
)
from nextbest.store.ids import IdFile, IdIndex, digest
from nextbest.store.lock import DataDirLock
from nextbest.store.memory import CLOSED_BYTES, PENDING_BYTES, MemoryStore

Fsync = Literal["always", "interval", "never"]
JOURNAL = ".jsonl"
LOG = ".dsjson"
LATE = ".jsonl"
IDS = "event-ids.bin"


@dataclass(frozen=True, slots=True)
class Durability:
    """How the embedded store makes what it acknowledged durable, and how much it keeps.

    Every record is written (write(2)) before its RPC answers, so a crash of the process
    loses nothing acknowledged whatever these say; they bound what a crash of the machine
    may lose (see the module's docstring), and how much disk the data dir takes.

    Attributes:
        fsync: When written records are fsynced (the server's ``--fsync``). ``always``:
            before the RPC answers (concurrent RPCs share one fsync), so a crash of the
            machine loses nothing; ``interval`` (default): every ``fsync_interval`` seconds,
            losing at most that much; ``never``: when the kernel flushes (typically within
            30 s on Linux). Every mode also fsyncs before a checkpoint and at shutdown.
        fsync_interval: Seconds between two fsyncs in ``interval`` mode; default 1.0.
        segment_bytes: Bytes after which a journal, decision-log or late-reward segment is
            closed and a new one started; segments are what compaction deletes. Default
            64 MiB.
        retention_bytes: Bytes of decision log kept per policy: past it, the oldest segments
            are deleted at a checkpoint, except those a kept checkpoint needs for replay.
            Default 1 GiB.
        retention_age: Seconds after its last write past which a decision-log or
            late-reward segment is deleted at a checkpoint (decision logs: except for
            replay, as above). Default 7 days.
        keep_checkpoints: Model checkpoints kept per policy, the newest; older ones are
            deleted. What ``rollback_model`` can return to. Default 3.
    """

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

    def report(self, log: Any, event: str, **fields: object) -> None:
        """One `event` line with what came back, then a warning per damaged line and per
        checkpoint passed over."""
        log.info(
            event,
            **fields,
            pending=self.pending,
            closed=self.closed,
            checkpoints=self.checkpoints,
            replayed=self.replayed,
        )
        for damage in self.damage:
            log.warning("damage", path=str(damage.path), line=damage.line, action=damage.action)
        for problem in self.problems:
            log.warning("checkpoint_skipped", reason=problem)


def _unavailable(what: str, exc: OSError) -> Unavailable:
    return Unavailable(f"cannot write the {what}: {exc.strerror or exc}")


@dataclass(slots=True)
class CheckpointJob:
    """A checkpoint taken on the loop (`DurableStore.begin_checkpoint`): the models' bytes
    and all its file work needs, so the thread doing that work reads nothing the loop
    changes meanwhile. The thread records what it did here, for `end_checkpoint`."""

    written: int  # appends made so far: the fsync of `fds` makes them durable
    fds: list[int]  # duplicates of every log's fd (see `_fsync_all`)
    models: list[tuple[str, weakref.ref[Model], Snapshot, int]]  # policy, model, bytes, log_seq
    ids: array[int]  # digests for the id file, taken from `_unsaved_ids`
    journal: list[Path]  # journal segments no pending event needs
    logs: dict[str, list[tuple[int, Path]]]  # each policy's decision-log segments, current last
    late: list[list[Path]]  # each late-reward log's segments before its current one
    saved: dict[str, int] = field(default_factory=dict)  # policy: learned, once written
    synced: bool = False
    ids_kept: bool = False
    error: Exception | None = None
    done: threading.Event = field(default_factory=threading.Event)
    ended: bool = False


def _fsync_all(fds: list[int]) -> None:
    """fsync each fd, then close it: they are duplicates taken for this sync (see
    ``_take_dirty``), so rotation closing the originals meanwhile changes nothing."""
    error: OSError | None = None
    for fd in fds:
        try:
            os.fsync(fd)
        except OSError as exc:
            error = error or exc
        finally:
            os.close(fd)
    if error is not None:
        raise error


class DurableStore(MemoryStore):
    def __init__(
        self,
        data_dir: Path,
        durability: Durability,
        retain_closed: int,
        lock: DataDirLock,
        *,
        max_pending_bytes: int = PENDING_BYTES,
        max_closed_bytes: int = CLOSED_BYTES,
    ) -> None:
        super().__init__(
            retain_closed, max_pending_bytes=max_pending_bytes, max_closed_bytes=max_closed_bytes
        )
        self.data_dir = data_dir
        self.durability = durability
        self.lock = lock
        self.journal = SegmentedLog(data_dir / "journal", JOURNAL, durability.segment_bytes)
        self._logs: dict[str, SegmentedLog] = {}
        self._late: dict[str, SegmentedLog] = {}
        # The journal segment holding each pending event's decision, and how many pending
        # events each segment holds: compaction deletes only a prefix of segments, so
        # keeping the decision's segment keeps every later record of the event too.
        self._decided_in: dict[str, int] = {}
        self._segment_refs: Counter[int] = Counter()
        self._id_file = IdFile(data_dir / IDS)
        self._unsaved_ids = array("Q")  # digests not yet in the id file
        # Per policy: the model last checkpointed and its learned count then.
        self._saved: dict[str, tuple[weakref.ref[Model], int]] = {}
        self._written = 0  # appends so far
        self._synced = 0  # appends known to be on disk
        self._sync_task: asyncio.Future[None] | None = None
        self._checkpoint: CheckpointJob | None = None  # taken, not yet ended
        self.failure: str | None = None  # why the data dir can no longer be trusted

    # -- EventStore (the synchronous halves MemoryStore's async methods call) ----------------

    def keep_new(self, events: Sequence[tuple[Event, bytes]]) -> None:
        """Journal the decisions in one write (all or none: a refused write keeps none),
        then hold them."""
        self.write_lines(self.journal, [b'{"k":"d","e":' + data + b"}" for _, data in events])
        segment = self.journal.start
        for event, data in events:
            self._keep(event, data)
            self._unsaved_ids.append(self.ids.add(event.event_id))
            self._track(event.event_id, segment)

    def add_reward_now(self, event: Event, reward: ReceivedReward) -> Event:
        data = orjson.dumps(reward)
        event_id = orjson.dumps(event.event_id)
        if event.join_status is JoinStatus.PENDING:
            self._write(self.journal, b'{"k":"r","id":' + event_id + b',"r":' + data + b"}")
        else:  # a late reward: its journal segment may be gone at the next start
            record = b'{"id":%b,"t":%b,"r":%b}' % (event_id, orjson.dumps(event.decided_at), data)
            self._write(self.late(event.policy), record, "late-reward log")
        self._append_reward(event, data)
        return dataclasses.replace(event, rewards=[*event.rewards, reward])

    def activate_now(self, event: Event) -> Event:
        self._write(self.journal, b'{"k":"a","id":' + orjson.dumps(event.event_id) + b"}")
        return super().activate_now(event)

    def settle_now(self, event: Event) -> None:
        data = codec.encode(event)  # once, for the log line and the closed set
        self._write(self.log(event.policy), dsjson.line(event, data), "decision log")
        self._retire(event, data)
        segment = self._decided_in.pop(event.event_id, None)
        if segment is not None:
            self._segment_refs[segment] -= 1
        # The decision log says the event is closed until retention deletes that segment;
        # the journal may still hold the event's decision then, so it says so too. Best
        # effort: the decision-log line, written above, is what counts while it exists.
        marker = {"k": "c", "id": event.event_id, "t": event.decided_at}
        with contextlib.suppress(Unavailable):
            self._write(self.journal, orjson.dumps(marker))

    # -- files -------------------------------------------------------------------------------

    def log(self, policy: str) -> SegmentedLog:
        found = self._logs.get(policy)
        if found is None:
            found = self._logs[policy] = SegmentedLog(
                self.policy_dir(policy) / "decisions", LOG, self.durability.segment_bytes
            )
        return found

    def late(self, policy: str) -> SegmentedLog:
        found = self._late.get(policy)
        if found is None:
            found = self._late[policy] = SegmentedLog(
                self.policy_dir(policy) / "late", LATE, self.durability.segment_bytes
            )
        return found

    def policy_dir(self, policy: str) -> Path:
        return self.data_dir / "policies" / policy

    def _write(self, log: SegmentedLog, record: bytes, what: str = "journal") -> None:
        self.write_lines(log, [record], what)

    def write_lines(self, log: SegmentedLog, records: list[bytes], what: str = "journal") -> None:
        """Append records to one of the store's logs in one write (all or none of them);
        Unavailable naming `what` when the disk refuses."""
        if self.failure is not None:
            raise self._failed()
        try:
            log.append(records)
        except SyncFailed as exc:  # rotation could not fsync the segment it leaves
            raise self._fail(exc) from exc
        except OSError as exc:
            raise _unavailable(what, exc) from exc
        self._written += 1

    def restore(
        self, ids: IdIndex, recent: Iterable[Event], pending: Iterable[tuple[Event, int]]
    ) -> None:
        """Hold what recovery found, before the store serves: the ids ever used, the most
        recent settled events, and the pending ones with the journal segment that holds
        each one's decision (a segment is compacted away only once none of its events is
        pending)."""
        self.ids = ids
        self.hold(recent)
        for event, segment in pending:
            self.hold([event])
            self._track(event.event_id, segment)

    def _track(self, event_id: str, segment: int) -> None:
        self._decided_in[event_id] = segment
        self._segment_refs[segment] += 1

    # -- durability ----------------------------------------------------------------------------

    def _files(self) -> list[SegmentedLog]:
        return [self.journal, *self._logs.values(), *self._late.values()]

    def _take_dirty(self) -> list[int]:
        """Duplicates of the fds of the files written since their last sync, marked clean:
        a sync about to start covers them. Only these are fsynced, so a commit costs one
        fsync per file actually written, usually just the journal. The sync closes the
        duplicates; until then they keep the file open even if rotation closes it."""
        dirty = [log for log in self._files() if log.unsynced]
        for log in dirty:
            log.unsynced = False
        return [os.dup(log.fileno()) for log in dirty]

    def _fail(self, exc: OSError) -> Unavailable:
        """An fsync failed: refuse every later write (see the module docstring)."""
        if self.failure is None:
            self.failure = f"cannot sync the data dir: {exc.strerror or exc}"
        return self._failed()

    def _failed(self) -> Unavailable:
        return Unavailable(f"{self.failure}; nothing more is kept until nextbest restarts")

    async def commit(self) -> None:
        """With fsync=always: return once everything written so far is on disk."""
        if self.durability.fsync != "always":
            return
        target = self._written
        while self._synced < target:
            if self.failure is not None:
                raise self._failed()
            if self._sync_task is None or self._sync_task.done():
                self._sync_task = asyncio.ensure_future(self._sync_in_thread())
            await asyncio.shield(self._sync_task)

    async def _sync_in_thread(self) -> None:
        written = self._written
        try:
            fds = self._take_dirty()
            if fds:
                await asyncio.to_thread(_fsync_all, fds)
        except OSError as exc:
            raise self._fail(exc) from exc
        self._synced = max(self._synced, written)

    async def sync_periodically(self) -> None:
        """With fsync=interval: fsync what was written, every fsync_interval seconds (until
        an fsync fails: then the store refuses writes, see `failure`)."""
        while self.durability.fsync == "interval" and self.failure is None:
            await asyncio.sleep(self.durability.fsync_interval)
            if self._synced < self._written:
                try:
                    await self._sync_in_thread()
                except Unavailable:
                    return

    def sync(self) -> None:
        """fsync everything now (before a checkpoint, and at shutdown); OSError if not."""
        if self.failure is not None:
            raise OSError(self.failure)
        written = self._written
        for log in self._files():
            log.unsynced = False
        try:
            _fsync_all([os.dup(log.fileno()) for log in self._files()])
        except OSError as exc:
            self._fail(exc)
            raise
        self._synced = max(self._synced, written)

    def unsaved(self, models: dict[str, Model]) -> int:
        """Events learned since each model's last checkpoint, summed over `models`."""
        return sum(self._unsaved(policy, model) for policy, model in models.items())

    def _unsaved(self, policy: str, model: Model) -> int:
        saved = self._saved.get(policy)
        if saved is None or saved[0]() is not model:  # never saved, or replaced by a reload
            return model.learned
        return model.learned - saved[1]

    def checkpoint(self, models: dict[str, Model]) -> dict[str, int]:
        """Save each model that learned since its last checkpoint; then drop what no
        checkpoint needs any more. Returns the learned count saved per policy. All on this
        thread; the server does the file work on another (`begin_checkpoint`)."""
        job = self.begin_checkpoint(models)
        self.write_checkpoint(job)
        return self.end_checkpoint(job)

    def begin_checkpoint(self, models: dict[str, Model]) -> CheckpointJob:
        """The part of a checkpoint on the loop: the bytes of each model that learned since
        its last checkpoint with the log position they include, and what compaction may
        delete. Hand it to `write_checkpoint` (on a thread), then `end_checkpoint`. Waits
        for a checkpoint still being written, so that they land in the order taken (a
        rollback's after an older model's). OSError if the data dir failed or VW cannot
        save."""
        self._settle()
        if self.failure is not None:
            raise OSError(self.failure)
        taken = [
            (policy, weakref.ref(model), self.checkpoints(policy).take(model), self.log(policy).seq)
            for policy, model in models.items()
            if self._unsaved(policy, model) > 0
        ]
        journal: list[Path] = []
        for start, path in self.journal.segments()[:-1]:
            if self._segment_refs.get(start, 0) > 0:
                break  # only a prefix goes: a close marker never outlives its decision
            journal.append(path)
            self._segment_refs.pop(start, None)
        logs = {policy: log.segments() for policy, log in self._logs.items()}
        late = [[path for _, path in log.segments()[:-1]] for log in self._late.values()]
        fds = [os.dup(log.fileno()) for log in self._files()]
        job = CheckpointJob(self._written, fds, taken, self._unsaved_ids, journal, logs, late)
        self._unsaved_ids = array("Q")
        self._checkpoint = job
        return job

    def write_checkpoint(self, job: CheckpointJob) -> None:
        """The file work of `job`, on any thread: fsync the logs, write the checkpoints,
        compact. It touches only files and `job`; an error is kept in `job.error`."""
        try:
            _fsync_all(job.fds)
            job.synced = True
            for policy, _, snapshot, log_seq in job.models:
                self.checkpoints(policy).write(policy, snapshot, log_seq)
                job.saved[policy] = snapshot.learned
            self._compact(job)
        except Exception as exc:  # raised by end_checkpoint, on the loop
            job.error = exc
        finally:
            job.done.set()

    def end_checkpoint(self, job: CheckpointJob) -> dict[str, int]:
        """Apply what `job`'s file work did, once it ended (waiting for it if need be):
        the models saved, the logs synced; ids it could not keep go back, to be kept next
        time. Returns the learned count saved per policy; raises the work's error (OSError:
        disk full; a failed fsync also fails the store, see `failure`)."""
        if not job.ended:
            job.done.wait()
            job.ended = True
            if self._checkpoint is job:
                self._checkpoint = None
            if job.synced:
                self._synced = max(self._synced, job.written)
            elif isinstance(job.error, OSError):
                self._fail(job.error)
            for policy, model, _, _ in job.models:
                if policy in job.saved:
                    self._saved[policy] = (model, job.saved[policy])
            if not job.ids_kept:
                self._unsaved_ids.extend(job.ids)
        if job.error is not None:
            raise job.error
        return dict(job.saved)

    def _settle(self) -> None:
        """End the checkpoint taken last, if its end is still to be applied; its error is
        left for its own `end_checkpoint` to raise."""
        if self._checkpoint is not None:
            with contextlib.suppress(Exception):
                self.end_checkpoint(self._checkpoint)

    def keep_model(self, policy: str, model: Model) -> None:
        """Save `model` as the policy's newest checkpoint, covering the log so far (a
        rollback: the events learned before it are not replayed into it at a restart).
        All on this thread, after any checkpoint still being written."""
        self._settle()
        self.sync()
        self.checkpoints(policy).save(policy, model, self.log(policy).seq)
        self._saved[policy] = (weakref.ref(model), model.learned)

    def checkpoints(self, policy: str) -> Checkpoints:
        return Checkpoints(self.policy_dir(policy) / "models", self.durability.keep_checkpoints)

    def _compact(self, job: CheckpointJob) -> None:
        """Delete journal segments no pending event needs, decision-log segments past the
        retention bounds that no kept checkpoint needs for replay, and late-reward
        segments past the retention age; event ids are made durable first. The segments
        were listed on the loop, so none is one the loop writes."""
        self._id_file.append(job.ids)
        job.ids_kept = True
        for path in job.journal:
            path.unlink(missing_ok=True)
        now = time.time()
        for policy, segments in job.logs.items():
            manifests = [m for _, m in self.checkpoints(policy).manifests() if m is not None]
            needed_from = min((m.log_seq for m in manifests), default=0)
            total = sum(p.stat().st_size for _, p in segments)
            for (_, path), (next_start, _) in itertools.pairwise(segments):
                old = now - path.stat().st_mtime > self.durability.retention_age
                if next_start > needed_from or not (total > self.durability.retention_bytes or old):
                    break
                total -= path.stat().st_size
                path.unlink(missing_ok=True)
        for paths in job.late:
            for path in paths:
                if now - path.stat().st_mtime <= self.durability.retention_age:
                    break
                path.unlink(missing_ok=True)

    def shutdown(self) -> None:
        """Sync and close every file, and give up the data dir; OSError if the sync
        failed (the files are closed and the lock released all the same)."""
        try:
            self.sync()
        finally:
            for log in self._files():
                log.close()
            self.lock.release()


def open_store(
    data_dir: Path,
    config: Config,
    durability: Durability,
    retain_closed: int,
    *,
    max_pending_bytes: int = PENDING_BYTES,
    max_closed_bytes: int = CLOSED_BYTES,
) -> tuple[DurableStore, dict[str, Model], Recovery]:
    """Lock data_dir (DataDirError if another process has it, or it is not a directory),
    read what a previous run left there; return the store and models to serve.

    Memory during recovery: a hash of every logged event (to tell closed from pending
    journal records), the ids index, the most recent `retain_closed` closed events, and
    the events to replay.
    """
    lock = DataDirLock(data_dir)
    try:
        store = DurableStore(
            data_dir,
            durability,
            retain_closed,
            lock,
            max_pending_bytes=max_pending_bytes,
            max_closed_bytes=max_closed_bytes,
        )
        models, recovery = _recover(store, config)
    except BaseException:
        lock.release()
        raise
    return store, models, recovery


class _Where:
    """Where a record of a segmented log is: its segment, its line."""

    def __init__(self, directory: Path, suffix: str) -> None:
        self.segments = list_segments(directory, suffix)
        self.starts = [start for start, _ in self.segments]

    def segment(self, seq: int) -> int:
        return self.starts[bisect.bisect_right(self.starts, seq) - 1]

    def damage(self, seq: int, exc: Exception) -> Damage:
        start, path = self.segments[bisect.bisect_right(self.starts, seq) - 1]
        return Damage(path, seq - start + 1, f"malformed record skipped: {exc}")


def _key(event_id: str, decided_at: float) -> int:
    """One event, as opposed to one id (ids were reused before they were kept unique)."""
    return hash((event_id, decided_at))


def _recover(store: DurableStore, config: Config) -> tuple[dict[str, Model], Recovery]:
    data_dir, retain_closed = store.data_dir, store._retain_closed
    recovery = Recovery()
    models: dict[str, Model] = {}
    replay_from: dict[str, int] = {}
    recovery.replayed = dict.fromkeys(config.policies, 0)
    for policy, spec in config.policies.items():
        found = store.checkpoints(policy).newest(spec.vw_args, recovery.problems)
        if found is None:
            models[policy], replay_from[policy] = Model(spec.vw_args), 0
            recovery.checkpoints[policy] = "none: starting from an empty model"
        else:
            path, manifest = found
            models[policy] = Model(spec.vw_args, initial=path, learned=manifest.learned)
            replay_from[policy] = manifest.log_seq
            recovery.checkpoints[policy] = path.name
        store._saved[policy] = (weakref.ref(models[policy]), models[policy].learned)

    ids = IdIndex(store._id_file.read())
    unsaved = store._unsaved_ids

    def note(event_id: str) -> None:
        d = digest(event_id)
        if not ids.has_digest(d):
            ids.add_digest(d)
            unsaved.append(d)

    closed: set[int] = set()
    newest: list[tuple[float, int, Event]] = []  # the most recent closed, by decided_at
    count = itertools.count()
    policy_dirs = sorted((data_dir / "policies").glob("*"))
    for policy_dir in policy_dirs:
        model = models.get(policy_dir.name)
        replayed = 0
        where = _Where(policy_dir / "decisions", LOG)
        for seq, record in read_records(policy_dir / "decisions", LOG, recovery.damage):
            try:
                event = dsjson.event_of(record)
            except BadRecord as exc:
                recovery.damage.append(where.damage(seq, exc))
                continue
            if event is None:
                continue
            closed.add(_key(event.event_id, event.decided_at))
            note(event.event_id)
            item = (event.decided_at, next(count), event)
            if len(newest) < retain_closed:
                heapq.heappush(newest, item)
            elif retain_closed:
                heapq.heappushpop(newest, item)
            if (
                model is not None
                and seq >= replay_from[policy_dir.name]
                and dsjson.learned(event)
                and event.joined_reward is not None
            ):
                model.learn(event.vw_lines(), event.chosen, -event.joined_reward, event.probability)
                replayed += 1
        if model is not None:
            recovery.replayed[policy_dir.name] = replayed
    recent: dict[str, Event] = {}
    for _, _, event in sorted(newest):
        recent.pop(event.event_id, None)
        recent[event.event_id] = event

    pending: dict[str, Event] = {}
    decided_in: dict[str, int] = {}
    where = _Where(data_dir / "journal", JOURNAL)
    for seq, record in read_records(data_dir / "journal", JOURNAL, recovery.damage):
        try:
            decided = _apply(record, pending, closed, recent)
        except BadRecord as exc:
            recovery.damage.append(where.damage(seq, exc))
            continue
        if decided is not None:
            note(decided.event_id)
            if pending.get(decided.event_id) is decided:
                decided_in[decided.event_id] = where.segment(seq)

    for policy_dir in policy_dirs:
        where = _Where(policy_dir / "late", LATE)
        for seq, record in read_records(policy_dir / "late", LATE, recovery.damage):
            try:
                _apply_late(record, recent)
            except BadRecord as exc:
                recovery.damage.append(where.damage(seq, exc))

    store.restore(
        ids, recent.values(), [(event, decided_in[event.event_id]) for event in pending.values()]
    )
    for policy in config.policies:
        store.log(policy)  # open for appending, after any torn tail was cut off
        if (store.policy_dir(policy) / "late").is_dir():
            store.late(policy)
    recovery.pending, recovery.closed = len(pending), len(closed)
    return models, recovery


def _apply(
    record: dict[str, Any],
    pending: dict[str, Event],
    closed: set[int],
    recent: dict[str, Event],
) -> Event | None:
    """Replay one journal record; returns the event of a decision record. BadRecord for a
    record of the wrong shape."""
    kind = record.get("k")
    if kind == "d":
        event = codec.from_dict(record.get("e"))
        if _key(event.event_id, event.decided_at) not in closed:
            pending[event.event_id] = event
        return event
    event_id = record.get("id")
    if kind not in ("r", "a", "c") or not isinstance(event_id, str):
        raise BadRecord(f"not a journal record (k={kind!r}, id={event_id!r})")
    if kind == "c":
        decided_at = record.get("t")  # absent in markers of older versions
        if decided_at is not None and not isinstance(decided_at, int | float):
            raise BadRecord(f"close marker: t={decided_at!r} is not a time")
        target = pending.get(event_id)
        if target is not None and decided_at in (None, target.decided_at):
            del pending[event_id]
        return None
    reward = codec.reward_from_dict(record.get("r")) if kind == "r" else None
    target = pending.get(event_id) or recent.get(event_id)
    if target is None:
        return None
    if reward is not None:
        if target.join_status is JoinStatus.PENDING or reward not in target.rewards:
            target.rewards.append(reward)  # a closed event's late rewards, for Explain
    else:
        target.activated = True
    return None


def _apply_late(record: dict[str, Any], recent: dict[str, Event]) -> None:
    """A late reward, back to its event if that is still kept."""
    event_id, decided_at = record.get("id"), record.get("t")
    if not isinstance(event_id, str) or not isinstance(decided_at, int | float):
        raise BadRecord(f"not a late reward (id={event_id!r}, t={decided_at!r})")
    reward = codec.reward_from_dict(record.get("r"))
    target = recent.get(event_id)
    if target is not None and target.decided_at == decided_at and reward not in target.rewards:
        target.rewards.append(reward)
