"""The learner of Redis mode: learns every closed join from the policy's stream, keeps the
DSJSON decision log and checkpoints in its own data dir, and publishes the model.

One learner per policy at a time, by lease: the lease key is set, if absent, to the token
``<fence>:<consumer>:<nonce>`` with a ttl (SET NX PX), the fence number from ``INCR fence``
(one script, so a number is spent only on a lease taken), and renewed every ttl/3 by a
script that extends it only while its value is still our token. A learner that cannot renew
(Redis says another holds it, or ttl passed without an answer) stops learning the policy at
once; one that died leaves a lease that expires, and the next learner takes it within
ttl + ttl/3 (each waiting learner tries every ttl/3). Fencing: every write that matters,
an XACK or a model publish, is a script that first checks the lease still holds our token,
so a stale learner (paused, cut off, overtaken) can never ack or publish.

What a learner holds the lease of, it consumes with the consumer group ``learners`` of the
policy's joined stream: first every entry pending in the group (``XAUTOCLAIM`` from 0 with
no idle bound: those of dead consumers and its own, which are then its own), then new ones
(``XREADGROUP >``); and every ttl, what is pending for another consumer (a stale learner
that read on before it found its lease gone) is claimed too (``XCLAIM``), and a consumer
left with nothing pending is deleted from the group (one script, so none is deleted that
took an entry meanwhile). Each entry is an event whose join a serving replica closed (LEARNED or
SKIPPED): it is skipped if its id was already learned, else its DSJSON line, the very line
`DurableStore.settle_now` writes in embedded mode, goes to the policy's decision log in the
data dir's `DurableStore` (so ``nextbest model export``, recovery and DSJSON tooling work
as they do there), and then, if LEARNED, it is learned (the example parsed before the line
is written, as the engine does: one VW refuses is logged as not learned).

An entry is acked only once what learned it is safe: after a checkpoint (every
`checkpoint_every` events handled or `checkpoint_interval` seconds; its files written on a
thread of their own while learning goes on) fsynced the logs and wrote the models, one
fenced script publishes that very model and acks the entries it covers, and deletes them
from the stream (nothing else reads it: whoever writes the stream must not cap it). So a
crash loses nothing (what is not acked is delivered again) and learns nothing twice: what
is delivered again and is in the data dir's log is skipped by id, and the model recovered
from the data dir (the newest checkpoint plus the log after it) holds it. Un-acked entries
are the stream's job, so the data dir's fsync setting changes nothing here: the store is
fsynced by checkpoints only.

The published model (hash ``keys.model(policy)``): ``version`` and ``learned`` (its learned
count, what responses show as model_version), ``vw_args``, ``data`` (`Model.snapshot`),
``token`` (of the lease it was published under), ``origin`` (the id of the data dir that
learned it: ``learner-id`` in it) and ``ids`` (the events it holds that are not acked yet,
one per line); ``PUBLISH nb:models "<policy>\\n<version>"`` says so. Between checkpoints the
model is published at most every `publish_interval`, when it changed. Every acked entry's
event is in the published model, and ``ids`` names the rest, so a learner can take over
from the published model exactly: when the newest published model (same vw_args) comes from
another data dir, the learner that takes the lease starts from it (saved as its newest
checkpoint) and skips just the events it names. That is how a standby on another host, with
an empty data dir, continues rather than starts over; its DSJSON log then holds only what it
learned itself. (A learner that adopts a model forgets which events it had learned before,
so those are learned again if they are delivered again; its log may then name an event
twice, once on each side of the adopted checkpoint; recovery replays only the later one.)

Threads: the models and the store belong to one worker thread; the event loop only talks to
Redis. So a learner beside a serving engine (role ``all``) leaves the loop free while VW
learns, and the next batch is read from Redis while the worker learns the last. (VW holds
the GIL while it parses and learns: what overlaps is Redis's work and the network's, and the
loop's share of the GIL is what reading a batch costs in Python.)
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from nextbest.observability.logging import get_logger
from nextbest.policy.config import Config
from nextbest.policy.errors import ConfigError, Unavailable
from nextbest.policy.events import Event, JoinStatus
from nextbest.policy.model import Model
from nextbest.store import codec, dsjson
from nextbest.store.durable import CheckpointJob, Durability, DurableStore, open_store
from nextbest.store.files import SegmentedLog, write_atomic
from nextbest.store.ids import IdIndex, digest
from nextbest.store.redis import keys
from nextbest.store.redis.connection import Client
from nextbest.tasks import stop as stop_tasks

T = TypeVar("T")
# A stream entry's fields, as Redis sent them (``[name, value, …]``: see `_raw_reads`) or as
# redis-py parsed them (a dict); None when deleted from the stream. An entry is its id and
# its fields: a list ``[id, fields]`` as Redis sent it, a tuple as redis-py parsed it.
Fields = list[bytes] | dict[bytes, bytes] | None
Entry = tuple[bytes, Fields] | list[Any]

BATCH = 1000  # stream entries read at a time
# Entries parsed, logged (one write) and learned at a time, within a batch: VW parses and
# learns an event in ~11 µs when 50 are parsed ahead, ~31 µs when a whole batch is (its
# examples no longer sit in the CPU's cache when they are learned).
CHUNK = 50
ACK_CHUNK = 4000  # stream ids per ack script (Lua's unpack has a bound, ~8000)
RETAIN_CLOSED = 1000  # closed events the store keeps in memory (no one asks the learner)
ORIGIN = "learner-id"  # in the data dir: the id of the model lineage it holds
MAX_BACKOFF = 10.0  # seconds between retries after a Redis error
READ_BLOCK = 1.0  # seconds an XREADGROUP waits for new entries, at most

# KEYS: lease, fence. ARGV: consumer, ttl ms, nonce. The token, or nil if the lease is held.
ACQUIRE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local token = redis.call('INCR', KEYS[2]) .. ':' .. ARGV[1] .. ':' .. ARGV[3]
redis.call('SET', KEYS[1], token, 'PX', ARGV[2])
return token
"""
# KEYS: lease. ARGV: token, ttl ms. 1 if extended, 0 if the lease is not ours.
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
# KEYS: lease. ARGV: token.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# KEYS: lease, model, joined. ARGV: token, group, channel, message ('' = publish nothing),
# version, vw_args, data, origin, ids, then the stream ids to ack in one argument, each
# followed by a space (thousands of arguments cost the client a microsecond each to send).
# -1 if the lease is not ours (nothing done), else the count acked.
PUBLISH_ACK = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[2], 'version', ARGV[5], 'learned', ARGV[5], 'vw_args', ARGV[6],
    'data', ARGV[7], 'token', ARGV[1], 'origin', ARGV[8], 'ids', ARGV[9])
  redis.call('PUBLISH', ARGV[3], ARGV[4])
end
local ids = {}
for id in string.gmatch(ARGV[10], '(%S+) ') do ids[#ids + 1] = id end
if #ids == 0 then return 0 end
local acked = redis.call('XACK', KEYS[3], ARGV[2], unpack(ids))
redis.call('XDEL', KEYS[3], unpack(ids))
return acked
"""


# KEYS: lease, joined. ARGV: token, group, consumer. Delete the consumer if nothing is
# pending for it (and the lease is ours): 1 if deleted.
FORGET = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if #redis.call('XPENDING', KEYS[2], ARGV[2], '-', '+', 1, ARGV[3]) > 0 then return 0 end
redis.call('XGROUP', 'DELCONSUMER', KEYS[2], ARGV[2], ARGV[3])
return 1
"""


class LeaseLost(Exception):
    """The lease of a policy is no longer ours."""


@dataclass(slots=True)
class _Lease:
    token: str
    renewed_at: float  # monotonic time the last successful renewal (or the take) was sent
    held: bool = True
    # Set once the take-over read the published model: before that nothing is published
    # under this lease, or a tick could overwrite the model a standby is about to adopt.
    ready: bool = False


@dataclass(slots=True)
class _PolicyState:
    """A policy's learning state; it belongs to the worker thread (the loop only reads)."""

    skip: IdIndex  # ids of the events the model holds (or logged as not learned): skipped
    to_ack: list[bytes] = field(default_factory=list)  # stream ids handled, not acked
    unacked: list[str] = field(default_factory=list)  # event ids in the model, not acked
    published: int = -1  # the learned count last published under the current lease


@dataclass(slots=True)
class _Learnable:
    """A stream entry ready to be logged and learned."""

    stream_id: bytes
    event_id: str
    digest: int
    example: Any  # the parsed VW example, None when it is logged as not learned
    line: bytes  # its DSJSON line


@dataclass(slots=True)
class _Send:
    """One fenced publish and/or ack: the model's bytes if it is to be published."""

    policy: str
    data: bytes | None
    learned: int
    ack: list[bytes]
    ids: list[str]  # with `data`: the events it holds that stay un-acked after this send
    requeue: list[str]  # event ids to hand back if the send fails


def _nothing() -> None:
    pass


_REFUSED = object()  # an example VW would not parse
_REPLICA_NAMES = [b"id", b"d", b"x"]  # the 2nd to 4th fields of an entry a replica put


def _consumer() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _stream_entries(reply: Any) -> list[Entry]:
    """The entries of an XREADGROUP reply on one stream: RESP2 or RESP3 shape, as Redis
    sent it or as redis-py parsed it."""
    if not reply:
        return []
    streams = list(reply.values()) if isinstance(reply, dict) else [s[1] for s in reply]
    entries = streams[0]
    first = entries[0] if entries else None
    if isinstance(first, list) and first and not isinstance(first[0], bytes | str):
        entries = first  # RESP3, parsed: [entries]; not [id, fields]
    pairs: list[Entry] = entries
    return pairs


def _as_sent(response: Any, **options: Any) -> Any:
    return response


def _raw_reads(client: Client) -> Client:
    """The client to read the stream with: on one server, a second client over the same
    connections whose XREADGROUP replies are left as Redis sent them, so an entry's fields
    stay one list (redis-py would make a dict of each: a quarter of what reading an entry
    costs); a cluster's client as it is (its replies parsed: read all the same)."""
    if not isinstance(client, aioredis.Redis):
        return client
    raw = aioredis.Redis(connection_pool=client.connection_pool)
    raw.set_response_callback("XREADGROUP", _as_sent)
    return raw


def _replica_parts(fields: Fields) -> tuple[bytes, bytes, bytes] | None:
    """The event id, DSJSON line and example text of an entry that has them (what the
    replica that settled it put there: `RedisEventStore.settle`), else None. The replicas'
    own layout (e, id, d, x) is read without a dict."""
    if isinstance(fields, list) and fields[2:7:2] == _REPLICA_NAMES and len(fields) == 8:
        return fields[3], fields[5], fields[7]
    named = _as_dict(fields)
    if not named or b"d" not in named or b"x" not in named or b"id" not in named:
        return None
    return named[b"id"], named[b"d"], named[b"x"]


def _as_dict(fields: Fields) -> dict[bytes, bytes] | None:
    if isinstance(fields, list):
        return dict(zip(fields[::2], fields[1::2], strict=True))
    return fields


class Learner:
    """Learns every configured policy whose lease it holds; see the module docstring."""

    def __init__(
        self,
        client: Client,
        config: Config,
        data_dir: Path,
        durability: Durability,
        *,
        lease_ttl: float = 10.0,
        publish_interval: float = 1.0,
        checkpoint_every: int = 1000,
        checkpoint_interval: float = 10.0,
        consumer: str | None = None,
    ) -> None:
        self.client = client
        self.config = config
        self.data_dir = data_dir
        self.durability = durability
        self.lease_ttl = lease_ttl
        self.publish_interval = publish_interval
        self.checkpoint_every = checkpoint_every
        self.checkpoint_interval = checkpoint_interval
        self.consumer = consumer or _consumer()
        self.log = get_logger("nextbest.learner")
        self._acquire = client.register_script(ACQUIRE)
        self._renew = client.register_script(RENEW)
        self._release = client.register_script(RELEASE)
        self._publish_ack = client.register_script(PUBLISH_ACK)
        self._forget = client.register_script(FORGET)
        self._reads = _raw_reads(client)
        self._worker = concurrent.futures.ThreadPoolExecutor(1, "nextbest-learner")
        self._store: DurableStore | None = None
        self._models: dict[str, Model] = {}
        self._states: dict[str, _PolicyState] = {}
        self._leases: dict[str, _Lease] = {}
        self._origin = ""
        self._since_checkpoint = 0  # events handled since the last checkpoint
        self._checkpointed_at = time.monotonic()
        self._sending = asyncio.Lock()  # publishes and acks, one at a time, in order
        # The checkpoint under way: a task of its own, never cancelled by whoever asked for
        # it (a checkpoint begun must end, or the next one waits for it forever), its files
        # written by a thread of its own.
        self._checkpointing: asyncio.Task[None] | None = None
        self._writer = concurrent.futures.ThreadPoolExecutor(1, "nextbest-checkpoint")
        self._retry_at = 0.0  # monotonic: no checkpoint before, after one failed
        self._backoff = 0.0
        self._stopped = False

    # -- public ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Learn every configured policy whose lease this learner can hold, until cancelled.
        Raises OSError when the data dir cannot be opened or fails (the process should
        stop: another learner takes the leases over)."""
        if self._store is None:
            await self._in_worker(self._open)
        tasks = [
            asyncio.create_task(self._policy(policy), name=f"nextbest-learn-{policy}")
            for policy in self.config.policies
        ]
        tasks.append(asyncio.create_task(self._tick(), name="nextbest-learner-tick"))
        try:
            await asyncio.gather(*tasks)
        finally:
            await stop_tasks(tasks)

    def learned(self, policy: str) -> int:
        model = self._models.get(policy)
        return 0 if model is None else model.learned

    def model(self, policy: str) -> Model:
        """The policy's model (owned by the learner's thread: read it only while it is idle)."""
        return self._models[policy]

    def holds(self, policy: str) -> bool:
        """Whether this learner holds the policy's lease (as far as it knows)."""
        lease = self._leases.get(policy)
        return lease is not None and lease.held

    async def stop(self) -> None:
        """Checkpoint, ack and publish what the leases still held allow, release them, close
        the files and the models. Cancel `run()` first."""
        if self._stopped:
            return
        self._stopped = True
        try:
            await self._in_worker(_nothing)  # what the worker does (opening, learning) ends
            if self._store is None:
                return
            try:
                if self._checkpointing is not None:
                    await asyncio.wait([self._checkpointing])
                await self._checkpoint_and_send(wait=True)
            except Exception:  # the files are closed all the same
                self.log.exception("learner_stop_failed")
            for policy, lease in list(self._leases.items()):
                if lease.held:
                    with contextlib.suppress(RedisError):
                        await self._release(keys=[keys.lease(policy)], args=[lease.token])
                    lease.held = False
                    self.log.info("lease_released", policy=policy, token=lease.token)
            await self._in_worker(self._close)
        finally:
            self._worker.shutdown(wait=False)
            self._writer.shutdown(wait=False)

    # -- the worker thread: the store and the models -------------------------------------------

    async def _in_worker(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._worker, fn, *args)

    def _open(self) -> None:
        store, models, recovery = open_store(
            self.data_dir, self.config, self.durability, RETAIN_CLOSED
        )
        self._store, self._models = store, models
        self._states = {policy: _PolicyState(skip=store.ids) for policy in models}
        origin = self.data_dir / ORIGIN
        try:
            self._origin = origin.read_text().strip()
        except FileNotFoundError:
            self._origin = ""
        if not self._origin:
            self._origin = os.urandom(8).hex()
            write_atomic(origin, self._origin.encode())
        recovery.report(
            self.log, "learner_recovered", data_dir=str(self.data_dir), consumer=self.consumer
        )

    def _close(self) -> None:
        assert self._store is not None
        try:
            self._store.shutdown()
        finally:
            for model in self._models.values():
                model.close()

    def _learn(self, policy: str, entries: list[Entry]) -> None:
        """Handle a batch of stream entries, in order (see the module docstring), `CHUNK`
        at a time: each chunk's examples parsed, its lines written in one write, then its
        examples learned. The DSJSON line is the one `DurableStore.settle_now` writes, made
        from the entry's own bytes (the closed event as the replica encoded it), in the
        policy's decision log; the learner keeps no journal (it holds no pending event) and
        no closed set (no one asks it), so neither is written: a third of the cost of an
        event. A chunk that cannot be written ends the batch: it and the rest of the batch
        stay un-acked, so they are delivered again."""
        store = self._store
        assert store is not None
        log = store.log(policy)
        for start in range(0, len(entries), CHUNK):
            self._log_and_learn(policy, log, self._gather(policy, entries[start : start + CHUNK]))

    def _gather(self, policy: str, entries: list[Entry]) -> list[_Learnable]:
        """The entries to log (and learn) of a chunk, their examples parsed; each one's
        stream id is to be acked (with the next checkpoint), also when it is skipped: an
        event learned already (a repeat, or delivered again) or an entry never learnable."""
        model, state = self._models[policy], self._states[policy]
        skip = state.skip
        batch: list[_Learnable] = []
        seen: set[int] = set()  # digests in this chunk: a repeat within it is skipped too
        for stream_id, fields in entries:
            state.to_ack.append(stream_id)
            parts = _replica_parts(fields)
            if parts is not None:  # the replica made its line and example text
                event_id = parts[0].decode(errors="replace")
                d = digest(event_id)
                if skip.has_digest(d) or d in seen:
                    continue
                example = self._parsed(model, parts[2])
                if example is not _REFUSED:
                    seen.add(d)
                    batch.append(_Learnable(stream_id, event_id, d, example, parts[1]))
                    continue
            dict_fields = _as_dict(fields)
            event = self._event(policy, stream_id, dict_fields)
            if event is None:
                continue
            d = digest(event.event_id)
            if skip.has_digest(d) or d in seen:
                continue
            assert dict_fields is not None  # see _event
            learnable = self._decoded(policy, model, stream_id, event, dict_fields[b"e"], d)
            if learnable is not None:
                seen.add(d)
                batch.append(learnable)
        return batch

    @staticmethod
    def _parsed(model: Model, text: bytes) -> Any:
        """The parsed example of an entry's example text; None for '' (logged as not
        learned), `_REFUSED` when VW refuses it: the entry then takes the long way
        (decoded and checked, logged as not learned)."""
        if not text:
            return None
        try:
            return model.parse(text.decode())
        except Exception:
            return _REFUSED

    def _decoded(
        self, policy: str, model: Model, stream_id: bytes, event: Event, data: bytes, d: int
    ) -> _Learnable | None:
        """The long way, for an entry without the replica's line and example text (an
        older replica) or whose example VW refuses: from its event (decoded and checked:
        `_event`), its line made and its example parsed (one VW refuses is logged as not
        learned). None for an entry that can never be learned (logged)."""
        example = None
        if event.join_status is JoinStatus.LEARNED:
            assert event.joined_reward is not None  # see _event
            try:
                example = model.example(
                    event.vw_lines(), event.chosen, -event.joined_reward, event.probability
                )
            except Exception as exc:  # logged as not learned: no retry makes VW take it
                self.log.warning(
                    "learn_refused", policy=policy, event_id=event.event_id, reason=str(exc)
                )
                event = dataclasses.replace(event, join_status=JoinStatus.SKIPPED)
                data = codec.encode(event)
        try:
            line = dsjson.line(event, data)
        except Exception as exc:  # a shape decoding let through
            if example is not None:
                model.discard(example)
            self._bad(policy, stream_id, str(exc) or type(exc).__name__)
            return None
        return _Learnable(stream_id, event.event_id, d, example, line)

    def _log_and_learn(self, policy: str, log: SegmentedLog, batch: list[_Learnable]) -> None:
        """Write the chunk's DSJSON lines in one write, then learn their examples: logged
        before learned, as in embedded mode. A write that fails leaves the chunk unlearned
        and unacknowledged (and raises: the rest of its batch is not handled)."""
        store, model, state = self._store, self._models[policy], self._states[policy]
        assert store is not None
        if not batch:
            return
        try:
            store.write_lines(log, [b.line for b in batch], "decision log")
        except BaseException:
            for b in batch:
                if b.example is not None:
                    model.discard(b.example)
            failed = {b.stream_id for b in batch}
            state.to_ack = [s for s in state.to_ack if s not in failed]
            raise
        ids, unsaved, skip, unacked = store.ids, store._unsaved_ids, state.skip, state.unacked
        for b in batch:
            if b.example is not None:
                model.learn_example(b.example)
            ids.add_digest(b.digest)
            unsaved.append(b.digest)  # into the id file at the next checkpoint
            if skip is not ids:
                skip.add_digest(b.digest)
            unacked.append(b.event_id)
        self._since_checkpoint += len(batch)

    def _event(
        self, policy: str, stream_id: bytes, fields: dict[bytes, bytes] | None
    ) -> Event | None:
        """The closed event of an entry; None (logged) for one that is gone or malformed.
        Replicas encoded it (`codec.encode`), so it is decoded as the stores decode their
        own bytes, and only what learning and logging rely on is checked."""
        if not fields:
            return None  # deleted from the stream meanwhile
        try:
            event = codec.decode(fields[b"e"])
        except Exception as exc:
            self._bad(policy, stream_id, f"{type(exc).__name__}: {exc}")
            return None
        problem = None
        if event.policy != policy:
            problem = f"an event of policy {event.policy!r}"
        elif event.join_status is JoinStatus.PENDING:
            problem = "an event whose join is not closed"
        elif event.join_status is JoinStatus.LEARNED and event.joined_reward is None:
            problem = "a learned event without a joined reward"
        elif not 0 <= event.chosen < len(event.eligible) == len(event.pmf):
            problem = "its chosen action is not among its eligible ones"
        if problem is not None:
            self._bad(policy, stream_id, problem)
            return None
        return event

    def _bad(self, policy: str, stream_id: bytes, reason: str) -> None:
        """An entry that can never be learned: logged, and acked with the others."""
        self.log.error("bad_entry", policy=policy, entry=_text(stream_id), reason=reason)

    def _begin_checkpoint(self, wait: bool) -> tuple[CheckpointJob | None, list[_Send]]:
        """The part of a checkpoint on the worker: the bytes of every model that learned
        (`DurableStore.begin_checkpoint`), and what to send once its files are written: per
        policy, the entries it covers and, if the model changed since it was last
        published, its bytes. The lists handed out leave the state. None and [] when no
        entry waits for its ack (unless `wait`)."""
        store = self._store
        assert store is not None
        self._since_checkpoint, self._checkpointed_at = 0, time.monotonic()
        if not wait and not any(state.to_ack for state in self._states.values()):
            return None, []
        job = store.begin_checkpoint(self._models)
        snapshots = {policy: snapshot.data for policy, _, snapshot, _ in job.models}
        sends: list[_Send] = []
        for policy, state in self._states.items():
            model = self._models[policy]
            changed = model.learned != state.published and self.holds(policy)
            if not state.to_ack and not changed:
                continue
            data = None
            if changed:
                data = snapshots.get(policy) or self._bytes(policy)
            sends.append(_Send(policy, data, model.learned, state.to_ack, [], state.unacked))
            state.to_ack, state.unacked = [], []
        return job, sends

    def _snapshot(self, policy: str) -> _Send | None:
        """The model to publish between checkpoints, if it changed since last published."""
        model, state = self._models[policy], self._states[policy]
        if model.learned == state.published:
            return None
        return _Send(policy, self._bytes(policy), model.learned, [], list(state.unacked), [])

    def _bytes(self, policy: str) -> bytes:
        """The model's bytes, as a checkpoint holds them. OSError if VW cannot save."""
        store = self._store
        assert store is not None
        directory = store.checkpoints(policy).directory  # VW's scratch file goes there
        directory.mkdir(parents=True, exist_ok=True)
        return self._models[policy].snapshot(directory)

    def _requeue(self, send: _Send, entries: bool) -> None:
        """A send that failed: its events stay un-acked; with `entries` (a Redis error, the
        lease still ours) its entries are acked with the next one."""
        state = self._states[send.policy]
        state.unacked[:0] = send.requeue
        if entries:
            state.to_ack[:0] = send.ack

    def _adopt(self, policy: str, vw_args: str, data: bytes, learned: int, ids: list[str]) -> None:
        """Continue from a model published by a learner of another data dir: saved as this
        data dir's newest checkpoint; the events it holds un-acked are skipped."""
        store = self._store
        assert store is not None
        model = Model.from_bytes(vw_args, data, learned)
        try:
            store.keep_model(policy, model)
        except BaseException:
            model.close()
            raise
        old, self._models[policy] = self._models[policy], model
        old.close()
        skip = IdIndex()
        for event_id in ids:
            skip.add(event_id)
            store._unsaved_ids.append(store.ids.add(event_id))
        state = self._states[policy]
        state.skip, state.to_ack, state.unacked = skip, [], list(ids)
        state.published = learned

    # -- the loop: leases, streams, publishing ---------------------------------------------------

    async def _policy(self, policy: str) -> None:
        """Take the policy's lease whenever it is free, and learn while it is held."""
        poll = self.lease_ttl / 3
        while True:
            token = None
            try:
                found = await self._acquire(
                    keys=[keys.lease(policy), keys.fence(policy)],
                    args=[self.consumer, int(self.lease_ttl * 1000), os.urandom(4).hex()],
                )
                token = None if found is None else _text(found)
                taken_at = time.monotonic()
            except RedisError as exc:
                self.log.warning("lease_unreachable", policy=policy, reason=str(exc))
            if token is None:
                await asyncio.sleep(poll)
                continue
            lease = _Lease(token, taken_at)
            self._leases[policy] = lease
            self.log.info("lease_acquired", policy=policy, token=token, consumer=self.consumer)
            renewing = asyncio.create_task(self._keep(policy, lease))
            try:
                await self._tenure(policy, lease)
            except Exception:
                self.log.exception("learner_failed", policy=policy)
                raise
            finally:
                renewing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await renewing
            if self._leases.get(policy) is lease and not lease.held:
                del self._leases[policy]

    def _lose(self, policy: str, lease: _Lease, why: str) -> None:
        if lease.held:
            lease.held = False
            self.log.warning("lease_lost", policy=policy, token=lease.token, reason=why)

    async def _keep(self, policy: str, lease: _Lease) -> None:
        """Renew the lease every ttl/3 while it is ours; lost when Redis says it is not, or
        when ttl passed since the last renewal Redis confirmed."""
        ttl_ms = int(self.lease_ttl * 1000)
        while lease.held:
            await asyncio.sleep(self.lease_ttl / 3)
            sent = time.monotonic()
            try:
                renewed = await self._renew(keys=[keys.lease(policy)], args=[lease.token, ttl_ms])
            except RedisError as exc:
                if time.monotonic() - lease.renewed_at >= self.lease_ttl:
                    self._lose(policy, lease, f"not renewed within the ttl: {exc}")
                continue
            if renewed:
                lease.renewed_at = sent
            else:
                self._lose(policy, lease, "taken by another learner")

    async def _tenure(self, policy: str, lease: _Lease) -> None:
        """Learn the policy while its lease is held; a Redis error starts over (pending
        entries first) after a back-off."""
        backoff = 0.0
        first = True
        while lease.held:
            if backoff:
                await asyncio.sleep(backoff)
            try:
                await self._ensure_group(policy)
                if first:
                    await self._take_over(policy)
                    first = False
                    lease.ready = True
                await self._claim(policy, lease)
                await self._consume(policy, lease)
            except (RedisError, OSError, Unavailable) as exc:
                store = self._store
                if store is not None and store.failure is not None:
                    raise OSError(store.failure) from exc
                backoff = min(max(2 * backoff, 0.1), MAX_BACKOFF)
                self.log.warning("learner_retry", policy=policy, reason=str(exc), retry_in=backoff)
            except LeaseLost:
                return

    async def _ensure_group(self, policy: str) -> None:
        try:
            await self.client.xgroup_create(
                keys.joined(policy), keys.LEARNERS, id="0", mkstream=True
            )
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _take_over(self, policy: str) -> None:
        """At the start of a lease: continue from the published model when another data
        dir's learner published it (see the module docstring); else publish ours again,
        under our token."""
        fields: dict[Any, Any] = await self.client.hgetall(keys.model(policy))
        spec = self.config.policies[policy]
        state = self._states[policy]
        state.published = -1
        origin = _text(fields.get(b"origin", b""))
        if not fields or origin == self._origin:
            return
        vw_args = _text(fields.get(b"vw_args", b""))
        if vw_args != spec.vw_args:
            self.log.warning(
                "published_model_ignored",
                policy=policy,
                vw_args=vw_args,
                reason="made with other vw_args",
            )
            return
        version = int(_text(fields[b"version"]))
        ids = [i for i in _text(fields.get(b"ids", b"")).split("\n") if i]
        try:
            await self._in_worker(self._adopt, policy, vw_args, fields[b"data"], version, ids)
        except (ConfigError, RuntimeError) as exc:  # VW could not load it: ours goes on
            self.log.warning("published_model_ignored", policy=policy, reason=str(exc))
            return
        self.log.info(
            "model_adopted", policy=policy, version=version, origin=origin, unacked=len(ids)
        )

    async def _claim(self, policy: str, lease: _Lease) -> None:
        """Every entry pending in the group (a dead learner's, or ours from before) becomes
        ours and is handled, in stream order."""
        cursor: Any = "0-0"
        while lease.held:
            reply = await self.client.xautoclaim(
                keys.joined(policy), keys.LEARNERS, self.consumer, 0, cursor, count=BATCH
            )
            cursor, entries = reply[0], reply[1]
            if entries:
                await self._handle(policy, lease, entries)
            if _text(cursor) == "0-0":
                return

    async def _orphans(self, policy: str, lease: _Lease) -> None:
        """Claim and handle what is pending for other consumers, then delete those left
        with nothing pending."""
        stream = keys.joined(policy)
        consumers: Any = await self.client.xinfo_consumers(stream, keys.LEARNERS)
        for consumer in consumers:
            name = consumer["name"]
            if _text(name) == self.consumer:
                continue
            while lease.held and consumer["pending"]:
                rows: Any = await self.client.xpending_range(
                    stream, keys.LEARNERS, "-", "+", BATCH, consumername=name
                )
                if not rows:
                    break
                ids = [row["message_id"] for row in rows]
                entries: Any = await self.client.xclaim(
                    stream, keys.LEARNERS, self.consumer, 0, ids
                )
                if not entries:  # gone from the stream: XCLAIM dropped them
                    break
                await self._handle(policy, lease, entries)
            if lease.held:
                await self._forget(
                    keys=[keys.lease(policy), stream], args=[lease.token, keys.LEARNERS, name]
                )

    async def _consume(self, policy: str, lease: _Lease) -> None:
        """New entries, the next batch read while the worker learns the last; every ttl,
        the entries pending for other consumers (`_orphans`)."""
        block = max(10, int(min(READ_BLOCK, self.lease_ttl / 3) * 1000))
        stream = keys.joined(policy)
        orphans_at = time.monotonic()

        async def read() -> list[Entry]:
            reply = await self._reads.xreadgroup(
                keys.LEARNERS, self.consumer, {stream: ">"}, count=BATCH, block=block
            )
            return _stream_entries(reply)

        fetch: asyncio.Task[list[Entry]] | None = None
        try:
            while lease.held:
                if time.monotonic() >= orphans_at:
                    await self._orphans(policy, lease)
                    orphans_at = time.monotonic() + self.lease_ttl
                if fetch is None:
                    fetch = asyncio.create_task(read())
                entries = await fetch
                fetch = None
                if not lease.held:
                    return  # they stay pending, for the next holder
                if entries:
                    fetch = asyncio.create_task(read())
                    await self._handle(policy, lease, entries)
        finally:
            if fetch is not None:
                fetch.cancel()
                with contextlib.suppress(asyncio.CancelledError, RedisError):
                    await fetch
        raise LeaseLost

    async def _handle(self, policy: str, lease: _Lease, entries: list[Entry]) -> None:
        if not lease.held:
            raise LeaseLost
        await self._in_worker(self._learn, policy, entries)
        if self._due():
            self._checkpoint()  # in the background: this policy learns on meanwhile

    def _due(self) -> bool:
        """Whether a checkpoint is due: `checkpoint_every` events handled since the last,
        or `checkpoint_interval` passed (and entries wait for their ack)."""
        now = time.monotonic()
        if now < self._retry_at:
            return False
        if self._since_checkpoint >= self.checkpoint_every:
            return True
        return now - self._checkpointed_at >= self.checkpoint_interval and any(
            state.to_ack for state in self._states.values()
        )

    async def _tick(self) -> None:
        """Checkpoint when one is due; else publish the models that changed, every
        `publish_interval`."""
        while True:
            await asyncio.sleep(min(self.publish_interval, self.checkpoint_interval))
            if self._due():
                await asyncio.shield(self._checkpoint())
            else:
                await self._publish_changed()

    def _checkpoint(self) -> asyncio.Task[None]:
        """The checkpoint under way, or a new one (see `_checkpointing`)."""
        if self._checkpointing is None or self._checkpointing.done():
            self._checkpointing = asyncio.create_task(
                self._checkpoint_and_send(), name="nextbest-learner-checkpoint"
            )
            self._checkpointing.add_done_callback(self._checkpoint_ended)
        return self._checkpointing

    def _checkpoint_ended(self, task: asyncio.Task[None]) -> None:
        """Say what ended a checkpoint nobody awaited (the data dir failed: the next write
        says so to the policy's task too, and `run` raises)."""
        if not task.cancelled() and task.exception() is not None:
            self.log.error("checkpoint_failed", reason=str(task.exception()))

    async def _checkpoint_and_send(self, wait: bool = False) -> None:
        """Checkpoint, then publish each held policy's model and ack what it covers; one
        at a time, and only if still due once it is this one's turn (or `wait`: at stop).
        The files are written on another thread: the worker learns on meanwhile."""
        async with self._sending:
            if not wait and not self._due():
                return
            store = self._store
            assert store is not None
            sends: list[_Send] = []
            try:
                job, sends = await self._in_worker(self._begin_checkpoint, wait)
                if job is not None:
                    loop = asyncio.get_running_loop()
                    await loop.run_in_executor(self._writer, store.write_checkpoint, job)
                    await self._in_worker(store.end_checkpoint, job)
            except OSError as exc:  # disk full, say: the entries stay un-acked, retried later
                for send in sends:
                    await self._in_worker(self._requeue, send, True)
                if wait or store.failure is not None:
                    raise
                self._backoff = min(max(2 * self._backoff, 1.0), 60.0)
                self._retry_at = time.monotonic() + self._backoff
                self.log.error(
                    "checkpoint_failed", reason=exc.strerror or str(exc), retry_in=self._backoff
                )
                return
            self._backoff = 0.0
            for send in sends:
                await self._send(send)

    async def _publish_changed(self) -> None:
        if self._sending.locked():
            return
        async with self._sending:
            for policy, lease in list(self._leases.items()):
                if not (lease.held and lease.ready):
                    continue
                try:
                    send = await self._in_worker(self._snapshot, policy)
                except OSError as exc:  # VW could not save: the next tick tries again
                    self.log.error("snapshot_failed", policy=policy, reason=str(exc))
                    continue
                if send is not None:
                    await self._send(send)

    async def _send(self, send: _Send) -> None:
        """One fenced script per chunk of ids: the first also publishes the model."""
        policy = send.policy
        lease = self._leases.get(policy)
        if lease is None or not (lease.held and lease.ready):
            await self._in_worker(self._requeue, send, False)  # the next holder acks them
            return
        spec = self.config.policies[policy]
        chunks = [send.ack[i : i + ACK_CHUNK] for i in range(0, len(send.ack), ACK_CHUNK)]
        acked = 0
        try:
            for n, chunk in enumerate(chunks or [[]]):
                publish = n == 0 and send.data is not None
                args: list[Any] = [
                    lease.token,
                    keys.LEARNERS,
                    keys.MODELS_CHANNEL,
                    f"{policy}\n{send.learned}" if publish else "",
                    str(send.learned),
                    spec.vw_args,
                    send.data if publish else b"",
                    self._origin,
                    "\n".join(send.ids) if publish else "",
                    b"".join(stream_id + b" " for stream_id in chunk),
                ]
                result = await self._publish_ack(
                    keys=[keys.lease(policy), keys.model(policy), keys.joined(policy)], args=args
                )
                if result == -1:
                    self._lose(policy, lease, "fenced: another learner holds it")
                    await self._in_worker(self._requeue, send, False)
                    return
                acked += int(result)
                if publish:
                    self._states[policy].published = send.learned
        except RedisError as exc:
            self.log.warning("publish_failed", policy=policy, reason=str(exc))
            await self._in_worker(self._requeue, send, True)
            return
        if send.data is not None:
            self.log.info(
                "model_published",
                policy=policy,
                version=str(send.learned),
                bytes=len(send.data),
                acked=acked,
                token=lease.token,
            )
