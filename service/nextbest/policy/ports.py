"""What the engine needs from the outside: a place for events, and someone to tell.

Stores (``nextbest.store``) and observability (``nextbest.observability``) implement these;
the engine never imports them.
"""

from __future__ import annotations

from collections.abc import Coroutine, Iterable, Sequence
from typing import Any, Protocol, TypeVar

from nextbest.policy.errors import DecisionError
from nextbest.policy.events import Event, ReceivedReward, RewardStatus
from nextbest.policy.requests import RewardInput

T = TypeVar("T")

# What `EventStore.add_many` made of each event: the event as kept, or why it was refused.
Kept = Event | DecisionError


def only(outcomes: Sequence[Kept]) -> Event:
    """The event of a one-event `add_many`, its refusal raised."""
    [outcome] = outcomes
    if isinstance(outcome, DecisionError):
        raise outcome
    return outcome


def run_now(step: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (the engine on an embedded store) to its end,
    without an event loop: for tools, benchmarks and tests that drive the engine in a
    plain loop. RuntimeError if it does suspend (it needed a loop after all)."""
    try:
        step.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    step.close()
    raise RuntimeError("the coroutine suspended: run it on an event loop")


class EventStore(Protocol):
    """Events by id: the pending ones ordered by join deadline, closed ones kept a while.

    The engine owns every change of an event (decided, rewarded, activated, closed): it
    hands the store the event as it read it and the change, and the store persists the
    change and returns the event as it now is; it never changes the event it was handed.
    Every method that changes an event makes the change durable before it returns, or
    raises :class:`~nextbest.policy.errors.Unavailable` and changes nothing: the engine
    acknowledges only what the store kept. The port is async, so that a store on a server
    (Redis) never blocks the event loop; the embedded stores answer without suspending.
    """

    async def get(self, event_id: str) -> Event | None:
        """A copy of the event: change it only through the methods below."""

    async def recent(self, event_id: str) -> Event | None:
        """The event as this process last knew it (what a Reward reads before its change).
        A store shared by several processes may answer from a local copy that misses
        changes made elsewhere (rewards, activation, close); every change method re-checks
        against the stored state, so a copy only costs a round trip when it is stale. Other
        stores answer as `get`."""

    async def used(self, event_id: str) -> bool:
        """Whether any event ever had this id, also one no longer kept (past retention):
        an event id is never given to a second event (`add` checks it itself)."""

    async def add(self, event: Event, *, drawn: bool = False) -> Event:
        """Keep a new pending event, checking its id in the same step: the event as kept,
        `event` itself when it is new; when its id holds an event decided for the same
        request (same policy and fingerprint: a retry, perhaps raced in by another
        process), that event, and nothing is kept. AlreadyExists, naming the field, when
        the id holds another request's event or was used by one no longer kept.
        `drawn`: the engine drew the id itself (128 random bits, no caller chose it): a
        store may skip the check, which costs a lookup in every id ever used."""

    async def add_many(self, events: Sequence[tuple[Event, bool]]) -> list[Kept]:
        """Keep new pending events, each `(event, drawn)` as `add` would keep it in turn
        (an id twice in `events` is checked against its first), in as few steps as the
        store can (one write, one round trip): each one's outcome, in order, the event as
        kept or the DecisionError that refused it (AlreadyExists, ResourceExhausted).
        Raises Unavailable when the store could keep none: then none is acknowledged."""

    async def add_reward(
        self, event: Event, reward: ReceivedReward, *, settle_as: Event | None = None
    ) -> tuple[Event, ReceivedReward | None]:
        """Append a received reward (accepted or late) to the event: the event as it now
        is, and the reward as kept. A store shared by several processes applies it as one
        step against the event as stored, not as handed: the reward is kept as LATE if the
        join closed meanwhile, and not at all (None) if a reward with the same non-empty
        reward_id came first (a duplicate: the event holds that one).

        `settle_as`: the event as settled with this reward its only one (an `earliest`
        join, where another process learns). A store that can settles it in the same step
        when the stored event has no reward yet and the same activation flag, and this
        reward is accepted: then the event returned is settled (as `settle` would keep
        it), and an accepted reward returned with a settled event means this call settled
        it. A store that cannot, or when it does not hold, ignores it: the event returned
        is pending and the caller settles the usual way."""

    async def queue_reward(self, req: RewardInput, received_at: float) -> None:
        """Keep a reward whose event cannot be read now (`get` raised Unavailable: the
        store's server is unreachable) and join it when it can, through
        ``Engine.reward(req, received_at)``. Unavailable if the store keeps none (only a
        store that spools does)."""

    async def activate(self, event: Event) -> Event:
        """Mark a deferred event as activated; the event so marked."""

    async def settle(self, event: Event) -> bool:
        """The event's join is settled (`event` carries its status and joined reward): it
        leaves the pending set, is logged, and stays readable. False if it was settled
        already (by another process sharing the store): then nothing is changed."""

    async def reschedule(self, event: Event, at: float) -> None:
        """Try closing a pending event again at `at` (closing it failed)."""

    async def due(self, now: float, limit: int) -> list[Event]:
        """Pending events whose deadline is at or before now, earliest first."""

    def pending_counts(self) -> dict[str, int]:
        """Pending events per policy (read at scrape time: no I/O)."""


class Listener(Protocol):
    """Told what happens, for metrics and logs. Must be cheap: it runs on the hot path."""

    def decided(self, events: Sequence[Event]) -> None:
        """Decisions kept: one call per Decide, or per chunk of a DecideBatch (so that a
        listener can count and write them in one go)."""

    def rewarded(self, event: Event, status: RewardStatus, value: float) -> None: ...

    def queued(self, req: RewardInput) -> None:
        """A reward was queued: its event could not be read (see `EventStore.queue_reward`)."""

    def joined(self, event: Event) -> None: ...

    def join_failed(self, event: Event, reason: str) -> None:
        """Closing the event's join failed (it stays pending and is retried later)."""

    def epsilons(self, policy: str, values: Iterable[tuple[str, float]]) -> None: ...

    def configured(self, policy: str, version: str, kind: str = "reload") -> None:
        """A configuration was installed that holds this policy at this config version
        (called for every policy on each install, changed or not); `kind` says what
        installed it: a reload of the file, or an override set live (exploration, mode,
        clear)."""


class NullListener:
    """Tells no one: for tests and tools that need no metrics."""

    def decided(self, events: Sequence[Event]) -> None:
        pass

    def rewarded(self, event: Event, status: RewardStatus, value: float) -> None:
        pass

    def queued(self, req: RewardInput) -> None:
        pass

    def joined(self, event: Event) -> None:
        pass

    def join_failed(self, event: Event, reason: str) -> None:
        pass

    def epsilons(self, policy: str, values: Iterable[tuple[str, float]]) -> None:
        pass

    def configured(self, policy: str, version: str, kind: str = "reload") -> None:
        pass
