"""The EventStore port on Redis: the join shared by several serving replicas.

Each event is one hash (``keys.event``, fields in ``scripts``) and every change of it is one
Lua script on that one key: two replicas rewarding, activating or closing the same event are
serialised by Redis, so a reward is never counted twice nor lost, and a join closes once.
Per policy, ``keys.due`` orders the events not yet on the stream by deadline, and
``keys.joined`` is the stream of joined events the learner reads.

Round trips: ``get``, ``used``, ``add``, ``add_reward``, ``activate`` and ``reschedule`` take
one each (``add`` checks the id, keeps the event and writes its due entry in one script on a
single Redis, so a Decide is one round trip with or without a caller's event_id; in a
Cluster one pipeline to the two slots' nodes, and one more for an id whose tombstone is on
another slot than its event, see ``keys.tombstone``). ``settle`` takes two (three in a Cluster:
the stream is appended before the event is marked streamed, and a Cluster pipeline does not
keep that order across nodes). ``recent`` takes none for an event this process decided (a
local copy, see ``recent``), so a Reward is one round trip on the replica that decided its
event, two elsewhere; an ``earliest`` Reward settles its join in that same script on a single
Redis (``add_reward``'s ``settle_as``; three round trips in a Cluster).

A crash between the steps of a close leaves the event ``closed`` with its due entry: the next
``due`` hands it back and closing it again appends it to the stream then (the due entry is
the token: only the script that removes it appends). The learner still drops an event id it
has seen, for the one case left: an identical Decide racing on two replicas whose due entry
is written back after the event was streamed and before it was marked so.

Event ids are remembered (``used``) for ``remember_ids`` (1 day by default) after the
close, by a tombstone (``keys.tombstone``), not forever as in embedded mode; an event nobody
closes (no replica ran for ``grace`` past its deadline) expires with its id.

A Redis that cannot be reached, or that fails a call, raises Unavailable. Then nothing was
acknowledged; the change may still have been made (a reply lost on the way back), which is
why retries are answered from what was kept: a Decide retried with its event_id gets the
stored decision, a reward retried with its reward_id is a duplicate.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import orjson
from redis.asyncio import RedisCluster
from redis.crc import key_slot
from redis.exceptions import (
    ConnectionError as RedisConnectionError,
)
from redis.exceptions import (
    NoScriptError,
    RedisClusterException,
    RedisError,
    ResponseError,
)
from redis.exceptions import (
    TimeoutError as RedisTimeoutError,
)

from nextbest.policy.errors import (
    AlreadyExists,
    DecisionError,
    NotFound,
    ResourceExhausted,
    Unavailable,
)
from nextbest.policy.events import Event, JoinStatus, ReceivedReward, RewardStatus
from nextbest.policy.features import labelled
from nextbest.policy.ports import Kept, only
from nextbest.policy.requests import RewardInput
from nextbest.policy.reuse import taken, used_before
from nextbest.store import codec, dsjson
from nextbest.store.redis import keys, scripts
from nextbest.store.redis.connection import Client
from nextbest.store.redis.recent import DEFAULT_BYTES, Fields, RecentEvents

MAX_EVENT_BYTES = 1 << 20  # one event's bytes: a hash value Redis copies on every read

Command = tuple[str | bytes | int | float, ...]


class RedisEventStore:
    """Events in Redis, shared by the replicas of one deployment.

    `policies` names the policies whose due sets `due` and `refresh_counts` read (called
    each time: a reload may add some). `grace`: seconds a pending event outlives its
    deadline, for a closer that is late; `retain`: seconds a closed event stays readable
    (Explain, late rewards); `remember_ids`: seconds its id stays used after the close
    (a tombstone); `max_rewards`: rewards kept per event, the rest refused;
    `recent_bytes`: the budget of the local copies of the events this process decided
    (`recent`).
    """

    def __init__(
        self,
        client: Client,
        policies: Callable[[], Iterable[str]],
        *,
        grace: float = 600.0,
        retain: float = 86400.0,
        remember_ids: float = 86400.0,  # a tombstone costs ≈ 136 B: 1.2 GB a day at 100/s
        max_rewards: int = 100,
        recent_bytes: int = DEFAULT_BYTES,
    ) -> None:
        self._client = client
        self._cluster = isinstance(client, RedisCluster)
        self._policies = policies
        self._grace = grace
        self._retain_ms = _ms(retain)
        self._remember_ms = _ms(remember_ids)
        self._max_rewards = max_rewards
        self._counts: dict[str, int] = {}
        self._recent = RecentEvents(recent_bytes)
        self._add_reward = client.register_script(scripts.ADD_REWARD)
        self._activate = client.register_script(scripts.ACTIVATE)
        self._discard = client.register_script(scripts.DISCARD)
        self._mark = client.register_script(scripts.MARK)
        self._gate = client.register_script(scripts.GATE)
        # Sent inside pipelines by sha: redis-py would check SCRIPT EXISTS first, a round
        # trip more each time; after NOSCRIPT (a restarted Redis) they are loaded and the
        # batch, idempotent, is sent again.
        self._sha = {
            body: client.register_script(body).sha
            for body in (
                scripts.ADD,
                scripts.ADD_REWARD,
                scripts.ACTIVATE,
                scripts.CLOSE,
                scripts.STREAM,
            )
        }

    async def close_client(self) -> None:
        await self._client.aclose()

    # -- reads ------------------------------------------------------------------------------

    async def get(self, event_id: str) -> Event | None:
        """The event as Redis holds it (one round trip); the local copy of it, if any,
        follows (`recent`)."""
        fields = await self._read(event_id)
        if fields is None:
            self._recent.drop(event_id)
            return None
        event = _event(*fields)
        if event.join_status is JoinStatus.PENDING:
            self._recent.update(event_id, fields.r, fields.a)
        else:
            self._recent.drop(event_id)
        return event

    async def recent(self, event_id: str) -> Event | None:
        """The event as this process last knew it: from the local copy kept by `add` (and
        brought up to date by every answer about it since), without a round trip; else as
        `get` reads it, and then copied while pending (the next Reward for it here reads
        nothing). A copy misses what other replicas did meanwhile: every script re-checks
        against the stored event, and what the engine judges from the copy alone never
        changes after the decision (policy, deadline, defer_activation) or only grows (the
        rewards, the activation, the close: a copy lags, never leads)."""
        held = self._recent.find(event_id)
        if held is not None:
            return _event(*held)
        fields = await self._read(event_id)
        if fields is None:
            return None
        event = _event(*fields)
        if event.join_status is JoinStatus.PENDING:
            self._recent.keep(event_id, fields)
        return event

    async def _read(self, event_id: str) -> Fields | None:
        with _reaching_redis():
            found = await self._client.hmget(keys.event(event_id), ["e", "r", "a"])
        e, r, a = _bulks(found)
        return None if e is None else Fields(e, r, a)

    def _known(self, event_id: str, answer: Sequence[bytes | None]) -> None:
        """Bring the local copy up to date from a script's [state, activated, rewards]:
        a closed event is not copied (a late reward for it reads it again)."""
        if answer[0] == b"pending":
            self._recent.update(event_id, answer[2], answer[1])
        else:
            self._recent.drop(event_id)

    async def used(self, event_id: str) -> bool:
        with _reaching_redis():
            held = await self._client.exists(keys.event(event_id), keys.tombstone(event_id))
        return int(held) > 0

    async def due(self, now: float, limit: int) -> list[Event]:
        """Events whose due entry is at or before `now`, earliest first: pending ones, and
        closed ones not yet on the stream (a closer crashed: closing again streams them).
        Entries whose event is gone (expired, or an add that failed half-way) or already
        streamed are dropped."""
        policies = list(self._policies())
        if not policies or limit <= 0:
            return []
        with _reaching_redis():
            ranges = await self._batch(
                [
                    (
                        "ZRANGEBYSCORE",
                        keys.due(p),
                        "-inf",
                        repr(now),
                        "WITHSCORES",
                        "LIMIT",
                        0,
                        limit,
                    )
                    for p in policies
                ]
            )
            entries = sorted(
                (score, policy, event_id)
                for policy, found in zip(policies, ranges, strict=True)
                for event_id, score in _scored(found)
            )[:limit]
            if not entries:
                return []
            held = await self._batch(
                [("HMGET", keys.event(event_id), "s", "e", "r", "a") for _, _, event_id in entries]
            )
            events: list[Event] = []
            dropped: list[Command] = []
            for (_, policy, event_id), (s, e, r, a) in zip(entries, held, strict=True):
                if e is None or s == b"streamed":
                    dropped.append(("ZREM", keys.due(policy), event_id))
                else:
                    events.append(_event(e, r, a))
            if dropped:
                await self._batch(dropped)
        return events

    async def refresh_counts(self) -> None:
        """Read the due sets' sizes, for `pending_counts` (the server calls this on a timer)."""
        policies = list(self._policies())
        with _reaching_redis():
            sizes = await self._batch([("ZCARD", keys.due(p)) for p in policies])
        self._counts = {p: int(n) for p, n in zip(policies, sizes, strict=True)}

    async def learner_lags(self) -> dict[str, int]:
        """Joined events per policy that the learner has not read yet (its consumer
        group's lag; the whole stream before a learner made the group)."""
        lags: dict[str, int] = {}
        with _reaching_redis():
            for policy in self._policies():
                stream = keys.joined(policy)
                try:
                    groups: Any = await self._client.xinfo_groups(stream)
                except ResponseError:  # no stream yet: nothing joined
                    lags[policy] = 0
                    continue
                ours = [g for g in groups if _text(g.get("name")) == keys.LEARNERS]
                lag = ours[0].get("lag") if ours else None
                if lag is None:  # no group yet (or a Redis too old to say): all of it
                    lag = await self._client.xlen(stream)
                lags[policy] = int(lag)
        return lags

    def pending_counts(self) -> dict[str, int]:
        """Events not yet on the stream per policy, as of the last `refresh_counts`."""
        return dict(self._counts)

    # -- changes ----------------------------------------------------------------------------

    async def add(self, event: Event, *, drawn: bool = False) -> Event:
        """Keep a new pending event and its due entry, checking its id in the same step, in
        one round trip: the event as kept, `event` itself when new, or the one an identical
        Decide kept under its id (a retry, or a race on another replica). AlreadyExists
        when another request holds the id, or held it (its tombstone). The script checks
        every id, `drawn` or not: the check costs no round trip here."""
        return only(await self.add_many([(event, drawn)]))

    async def add_many(self, events: Sequence[tuple[Event, bool]]) -> list[Kept]:
        """`add` for each event; on a single Redis, all their scripts in one round trip
        (run in order, so an id twice is checked against its first). On a Cluster one
        event at a time: when Redis fails, that event and the rest are Unavailable, the
        outcomes before it stand."""
        out: list[Kept] = []
        sent: list[tuple[int, Event, bytes, tuple[Any, ...]]] = []
        for event, _ in events:
            data = codec.encode(event)
            if len(data) > MAX_EVENT_BYTES:
                out.append(
                    ResourceExhausted(
                        f"event {event.event_id!r} takes {len(data)} bytes, at most "
                        f"{MAX_EVENT_BYTES} are kept in Redis: send less context or fewer "
                        "actions"
                    )
                )
                continue
            ttl = _ms(event.deadline - event.decided_at + self._grace)
            args = (event.policy, event.fingerprint, data, repr(event.deadline))
            sent.append((len(out), event, data, (*args, _flag(event.activated), ttl)))
            out.append(event)
        answers = await (self._adds_on_cluster(sent) if self._cluster else self._adds(sent))
        for (i, event, data, _), answer in zip(sent, answers, strict=True):
            try:
                kept = answer if isinstance(answer, DecisionError) else _as_kept(event, answer)
            except DecisionError as exc:
                kept = exc
            out[i] = kept
            if kept is event:  # decided here: a Reward on this replica reads nothing first
                flag = _flag(event.activated).encode()
                self._recent.keep(event.event_id, Fields(data, None, flag))
        return out

    async def _adds(self, sent: Sequence[tuple[int, Event, bytes, tuple[Any, ...]]]) -> list[Any]:
        """The ADD scripts on a single Redis, in one round trip: each checks its id, keeps
        its event and its due entry."""
        commands = [
            (
                "EVALSHA",
                self._sha[scripts.ADD],
                3,
                keys.event(event.event_id),
                keys.tombstone(event.event_id),
                keys.due(event.policy),
                *args,
                event.event_id,
            )
            for _, event, _, args in sent
        ]
        if not commands:
            return []
        with _reaching_redis():
            answers = await self._batch(commands, raise_errors=False)
        for answer in answers:
            if isinstance(answer, Exception):
                raise answer  # an error Redis answered: a bug, not a refusal
        return answers

    async def _adds_on_cluster(
        self, sent: Sequence[tuple[int, Event, bytes, tuple[Any, ...]]]
    ) -> list[Any]:
        answers: list[Any] = []
        for _, event, _, args in sent:
            key, tomb = keys.event(event.event_id), keys.tombstone(event.event_id)
            try:
                with _reaching_redis():
                    answers.append(await self._add_on_cluster(event, key, tomb, args))
            except Unavailable as exc:
                answers += [exc] * (len(sent) - len(answers))
                break
            except DecisionError as exc:
                answers.append(exc)
        return answers

    async def _add_on_cluster(
        self, event: Event, key: str, tomb: str, args: tuple[str | bytes | int, ...]
    ) -> object:
        """`add` on a Cluster: the script on the event's node and the due entry on the
        policy's, in one pipeline. The tombstone is checked by the script when it shares
        the event's slot (`keys.tombstone`), else just before (a round trip more)."""
        held: tuple[str, ...] = (key, tomb)
        if key_slot(key.encode()) != key_slot(tomb.encode()):
            if await self._client.exists(tomb):
                raise used_before(event.event_id)
            held = (key,)
        script = ("EVALSHA", self._sha[scripts.ADD], len(held), *held, *args)
        due = keys.due(event.policy)
        zadd = ("ZADD", due, "NX", args[3], event.event_id)
        zadded, answer = await self._batch([zadd, script], raise_errors=False)
        code = _bulks(answer)[:2]
        if isinstance(zadded, Exception) and code == [b"new"]:
            # A node took the event but not its due entry: undo it while nobody has
            # touched it, or it would stay pending without ever closing.
            with suppress(RedisError):  # best effort: Redis is failing already
                await self._discard(keys=[key], args=[args[2]])
        for result in (zadded, answer):
            if isinstance(result, Exception):
                raise result
        refused = code == [b"used"] or (code[0] == b"taken" and code[1] != event.policy.encode())
        if refused and zadded == 1:
            # No event of this policy holds the id: the due entry just written is
            # nobody's (it would close the holder's join at this request's deadline).
            with suppress(RedisError):
                await self._client.zrem(due, event.event_id)
        return answer

    async def add_reward(
        self,
        event: Event,
        reward: ReceivedReward,
        token: str | None = None,
        *,
        settle_as: Event | None = None,
    ) -> tuple[Event, ReceivedReward | None]:
        """Append the reward as Redis holds the event now: ACCEPTED only while it is
        pending and the reward came within its window, else LATE; nothing when a reward
        with its reward_id is kept (None). `token` (16 hex digits, `new_token`) names the
        call: sent again with the same token, it is answered as it was kept (a spool's
        replay); by default a token of its own.

        `settle_as` (an `earliest` join settled by this reward): when the reward is
        accepted as the event's first and the activation flag is as in `settle_as`, the
        same script closes the join as `settle` would. On a single Redis it also writes
        the tombstone and the stream entry: one round trip in all. On a Cluster those keys
        are on other nodes: the script closes it on the event's node, then the tombstone
        and the stream entry go together (one round trip, two nodes), then the mark: three
        (the stream step failing leaves it closed with its due entry: the due pass streams
        it, as after a crash in `settle`). Without `settle_as`, or when it does not hold:
        one round trip, and the event comes back pending."""
        key = keys.event(event.event_id)
        args: list[str | bytes | int] = list(
            self._reward_args(reward, reward.received_at <= event.deadline, token)
        )
        held = [key]
        if settle_as is not None:
            held, more = self._settling(settle_as)
            args.extend(more)
        with _reaching_redis():
            answer = _bulks(await self._add_reward(keys=held, args=args))
        code = answer[0]
        if code == b"missing":
            self._recent.drop(event.event_id)
            raise _unknown(event.event_id)
        if code == b"full":
            raise ResourceExhausted(
                f"event {event.event_id!r} has {_text(answer[1])} rewards, at most "
                f"{self._max_rewards} are kept per event",
                "event_id",
            )
        self._known(event.event_id, answer[1:])
        if code == b"settled":
            return await self._settled(event, answer[1:], settle_as), _as(reward, "accepted")
        now = _held(event, answer[1:])
        if code == b"duplicate":
            return now, None
        return now, _as(reward, "accepted" if code == b"accepted" else "late")

    def _settling(self, settled: Event) -> tuple[list[str], list[str | bytes | int]]:
        """The keys and the ARGV that ADD_REWARD settles `settled` with (see the script):
        on a single Redis every key it writes; on a Cluster the event's alone."""
        key = keys.event(settled.event_id)
        stored = codec.encode(dataclasses.replace(settled, rewards=[]))
        closing: list[str | bytes | int] = [stored, _flag(settled.activated), self._retain_ms]
        if self._cluster:
            return [key], closing
        policy, event_id = settled.policy, settled.event_id
        encoded = codec.encode(settled)
        line, example = dsjson.line(settled, encoded), example_text(settled)
        streaming: list[str | bytes | int] = [event_id, encoded, line, example]
        return (
            [key, keys.tombstone(event_id), keys.due(policy), keys.joined(policy)],
            [*closing, _tomb(settled), self._remember_ms, *streaming],
        )

    async def _settled(
        self, read: Event, answer: Sequence[bytes | None], settle_as: Event | None
    ) -> Event:
        """The event ADD_REWARD settled ([state, activated, rewards, closed event when the
        call was kept before: a replay]), streamed when the script could not (a Cluster)."""
        state, a, r = answer[0], answer[1], answer[2]
        e = answer[3] if len(answer) > 3 else None
        if e is not None:
            now = _event(e, r, a)
        else:
            base = settle_as if settle_as is not None else read
            rewards = codec.decode_rewards(r) if r else []
            now = dataclasses.replace(base, rewards=rewards, activated=base.activated or a == b"1")
        if state == b"closed":
            with suppress(Unavailable):  # kept and closed: the due pass streams it
                await self._stream(now, now, tombstone=True)
        return now

    def _reward_args(
        self, reward: ReceivedReward, within: bool, token: str | None
    ) -> tuple[str | bytes | int, ...]:
        accepted = dataclasses.replace(reward, status=RewardStatus.ACCEPTED)
        late = dataclasses.replace(reward, status=RewardStatus.LATE)
        return (
            reward.reward_id,
            orjson.dumps(accepted),
            orjson.dumps(late),
            _flag(within),
            self._max_rewards,
            token or new_token(),
        )

    async def queue_reward(self, req: RewardInput, received_at: float) -> None:
        raise Unavailable(
            "Redis is unreachable and this process keeps no spool: nothing was acknowledged"
        )

    async def ping(self) -> None:
        """Unavailable unless Redis answers."""
        with _reaching_redis():
            await self._client.ping()

    async def restore(
        self,
        event: Event,
        rewards: Sequence[tuple[ReceivedReward, str]],
        closed: Event | None,
    ) -> None:
        """Hand over an event a replica decided while Redis was unreachable (a spool's
        replay): the event as decided, its rewards as that replica judged them (each with
        the token it was spooled with), its activation, then its close if the replica
        closed it. Sent again, it changes nothing more: the event is found ``same``, each
        reward's token answers as kept, a close is done once. The due entry is written
        last, so no closer can close the join before its rewards are in. AlreadyExists
        when another event holds the id."""
        key = keys.event(event.event_id)
        data = codec.encode(dataclasses.replace(event, rewards=[]))
        ttl = _ms(event.deadline - event.decided_at + self._grace)
        args = (event.policy, event.fingerprint, data, repr(event.deadline))
        changes: list[Command] = [
            ("EVALSHA", self._sha[scripts.ADD], 1, key, *args, _flag(event.activated), ttl)
        ]
        sha = self._sha[scripts.ADD_REWARD]
        for reward, token in rewards:
            within = reward.status is RewardStatus.ACCEPTED
            changes.append(("EVALSHA", sha, 1, key, *self._reward_args(reward, within, token)))
        if event.activated:
            changes.append(("EVALSHA", self._sha[scripts.ACTIVATE], 1, key))
        zadd = ("ZADD", keys.due(event.policy), "NX", repr(event.deadline), event.event_id)
        with _reaching_redis():
            if self._cluster:  # two nodes: the event's changes first, then its due entry
                answers = await self._batch(changes)
                await self._batch([zadd])
            else:
                answers = (await self._batch([*changes, zadd], atomic=True))[:-1]
        code, *rest = _texts(answers[0])
        if code == "taken":
            raise AlreadyExists(
                f"event {event.event_id!r} is held by another event (policy {rest[0]!r})",
                "event_id",
            )
        if closed is not None:  # closed as the replica judged it, with its rewards
            await self.settle(dataclasses.replace(closed, rewards=[r for r, _ in rewards]))

    async def activate(self, event: Event) -> Event:
        """Mark the event activated while it is pending; the event as Redis holds it (a
        closed one unchanged: the caller then sees it closed)."""
        with _reaching_redis():
            answer = _bulks(await self._activate(keys=[keys.event(event.event_id)]))
        if answer[0] == b"missing":
            self._recent.drop(event.event_id)
            raise _unknown(event.event_id)
        self._known(event.event_id, answer[1:])
        return _held(event, answer[1:])

    async def settle(self, event: Event) -> bool:
        """Close the join and append the joined event (rewards merged) to the policy's
        stream, once: True only when this call closed it. False when another process
        closed it first, when a reward or an activation came after `event` was read (the
        due entry stays: the next pass closes it as it now is), or when it is gone.

        Duplicates on the stream come only from a crash or race window (see the module);
        the learner drops an event id it has already seen."""
        self._recent.drop(event.event_id)  # closed, or changed since it was read
        code, joined = await self.settle_only(event)
        if joined is not None:
            await self._stream(event, joined)
        return code == "closed"

    async def settle_only(self, event: Event) -> tuple[str, Event | None]:
        """The first step of `close` on its own: the event hash says closed, and the
        tombstone is written. Returns the script's code and, when it is to be streamed
        (``closed``, ``unstreamed``), the joined event. What a replica that crashed right
        after it leaves behind (tests use it to show the recovery)."""
        key = keys.event(event.event_id)
        stored = codec.encode(dataclasses.replace(event, rewards=[]))
        args = (stored, len(event.accepted_values()), _flag(event.activated), self._retain_ms)
        with _reaching_redis():
            answer, _ = await self._batch(
                [
                    ("EVALSHA", self._sha[scripts.CLOSE], 1, key, *args),
                    self._tomb(event),
                ]
            )
        reply = _bulks(answer)
        code = _text(reply[0])
        if code == "closed":
            return code, _held(event, [b"closed", reply[1], reply[2], None])
        if code == "unstreamed" and reply[3] is not None:
            return code, _event(reply[3], reply[2], reply[1])
        return code, None

    async def _stream(self, event: Event, joined: Event, tombstone: bool = False) -> None:
        """Append the joined event to the stream once (its due entry the token), then mark
        the event streamed; with `tombstone`, write its tombstone too, in the same round
        trip (a Cluster: the stream and the tombstone, then the mark, as they are on
        other nodes and the mark must come after the stream)."""
        due, stream = keys.due(event.policy), keys.joined(event.policy)
        key = keys.event(event.event_id)
        encoded = codec.encode(joined)
        args = (event.event_id, encoded, dsjson.line(joined, encoded), example_text(joined))
        with _reaching_redis():
            if self._cluster:  # the stream, then the mark: in this order, on two nodes
                gate = self._gate(keys=[due, stream], args=args)
                if tombstone:
                    await asyncio.gather(gate, self._client.execute_command(*self._tomb(event)))
                else:
                    await gate
                await self._mark(keys=[key])
            else:
                sha = self._sha[scripts.STREAM]
                step: Command = ("EVALSHA", sha, 3, due, stream, key, *args)
                await self._batch([step, self._tomb(event)] if tombstone else [step])

    def _tomb(self, event: Event) -> Command:
        """Write the tombstone of `event`'s id: its policy and fingerprint."""
        return ("SET", keys.tombstone(event.event_id), _tomb(event), "PX", self._remember_ms)

    async def reschedule(self, event: Event, at: float) -> None:
        """Move the due entry to `at`, if it is still there (XX: never bring back the
        entry of an event already on the stream)."""
        with _reaching_redis():
            await self._client.zadd(keys.due(event.policy), {event.event_id: at}, xx=True)

    # -- plumbing ---------------------------------------------------------------------------

    async def _batch(
        self, commands: Sequence[Command], *, atomic: bool = False, raise_errors: bool = True
    ) -> list[Any]:
        """Send `commands` in one round trip: a lone command as it is, several through a
        pipeline (MULTI/EXEC if `atomic`, on a single Redis; a Cluster runs each slot's
        commands on its node). A script Redis does not know (it restarted) is loaded and
        the batch sent again: every batch here is idempotent."""
        for attempt in range(2):
            if len(commands) == 1:
                results = [await self._one(commands[0])]
            else:
                pipe = self._client.pipeline(transaction=atomic and not self._cluster)
                for command in commands:
                    pipe.execute_command(*command)
                results = list(await pipe.execute(raise_on_error=False))
            if attempt == 0 and any(isinstance(r, NoScriptError) for r in results):
                for body in self._sha:
                    await self._client.script_load(body)
                continue
            if raise_errors:
                for result in results:
                    if isinstance(result, Exception):
                        raise result
            return results
        raise AssertionError("unreachable")

    async def _one(self, command: Command) -> Any:
        """One command, without the cost of a pipeline; an error Redis answers is
        returned in its place, as a pipeline hands it (a connection's is raised)."""
        try:
            return await self._client.execute_command(*command)
        except ResponseError as exc:
            return exc


@contextmanager
def _reaching_redis() -> Iterator[None]:
    """Redis failing a call is Unavailable (the message names no address or password)."""
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        raise Unavailable(
            f"Redis is unreachable ({type(exc).__name__}): nothing was acknowledged, retry"
        ) from exc
    except (RedisError, RedisClusterException) as exc:
        raise Unavailable(
            f"Redis failed the call ({type(exc).__name__}: {exc}): nothing was acknowledged"
        ) from exc


def _unknown(event_id: str) -> NotFound:
    return NotFound(f"unknown event {event_id!r} (never decided, or past retention)", "event_id")


def _event(e: bytes, r: bytes | None, a: bytes | None) -> Event:
    """An event from its hash fields: the event, the rewards apart, the activation flag."""
    event = codec.decode(e)
    if r:
        event.rewards.extend(codec.decode_rewards(r))
    event.activated = event.activated or a == b"1"
    return event


def _held(read: Event, answer: Sequence[bytes | None]) -> Event:
    """The event as a script found it: [state, activated, rewards, event if not pending].
    A pending event's bytes are the ones the caller read (only rewards and the flag
    change while it is pending), so they are not sent back."""
    state, a, r, e = answer[0], answer[1], answer[2], answer[3] if len(answer) > 3 else None
    if state != b"pending" and e is not None:
        return _event(e, r, a)
    rewards = codec.decode_rewards(r) if r else []
    return dataclasses.replace(read, rewards=rewards, activated=read.activated or a == b"1")


def _as_kept(event: Event, answer: object) -> Event:
    """The ADD script's answer as `add` returns it: `event` when it was new, the event an
    identical request kept under its id; AlreadyExists when the id is (was) another's."""
    code, *rest = _bulks(answer)
    if code == b"new":
        return event
    if code == b"same" and rest[0] is not None:
        return _event(rest[0], rest[1], rest[2])
    if code == b"used":
        raise used_before(event.event_id)
    if code == b"taken" and rest[0] is not None:
        raise taken(event.event_id, _text(rest[0]), event.policy)
    raise TypeError(f"unexpected answer from Redis: {answer!r}")


def _tomb(event: Event) -> str:
    """A tombstone's value: the policy and fingerprint of the event that used the id."""
    return f"{event.policy}\n{event.fingerprint}"


def _as(reward: ReceivedReward, code: str) -> ReceivedReward:
    return dataclasses.replace(reward, status=RewardStatus(code))


def example_text(event: Event) -> str:
    """The labelled VW example a settled event is learned from ('' when it is not)."""
    if event.join_status is not JoinStatus.LEARNED or event.joined_reward is None:
        return ""
    lines = labelled(event.vw_lines(), event.chosen, -event.joined_reward, event.probability)
    return "\n".join(lines)


def new_token() -> str:
    """A call's token: 16 hex digits (the scripts read exactly 16 characters)."""
    return os.urandom(8).hex()


def _flag(value: bool) -> str:
    return "1" if value else "0"


def _ms(seconds: float) -> int:
    """A TTL in milliseconds, at least 1 (0 or less would delete the key at once)."""
    return max(1, int(seconds * 1000))


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _scored(found: object) -> list[tuple[str, float]]:
    """ZRANGEBYSCORE … WITHSCORES as (member, score) pairs (flat when sent raw)."""
    if not isinstance(found, list):
        raise TypeError(f"unexpected answer from Redis: {found!r}")
    if found and isinstance(found[0], list | tuple):
        return [(_text(m), float(sc)) for m, sc in found]
    return [(_text(m), float(sc)) for m, sc in zip(found[::2], found[1::2], strict=True)]


def _texts(answer: object) -> list[str]:
    return [_text(v) for v in _bulks(answer)]


def _bulks(answer: object) -> list[bytes | None]:
    """A script's answer (a list of bulk strings, some nil) as Python sees it; an error
    in its place as an empty answer."""
    if isinstance(answer, Exception):
        return []
    if not isinstance(answer, list):
        raise TypeError(f"unexpected answer from Redis: {answer!r}")
    return [v if v is None or isinstance(v, bytes) else str(v).encode() for v in answer]
