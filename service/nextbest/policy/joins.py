"""The join state machine: a decision waits for its rewards until its join settles, at the
end of its window (or at once, for `earliest`), and is then logged and learned.

Words: a join *settles* (the engine aggregates its rewards into the joined reward and
decides whether the model learns it); the store keeps the settled event (`EventStore.settle`)
and, in embedded mode, logs it to the DSJSON decision log.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from nextbest.policy import rewards
from nextbest.policy.events import Event, JoinStatus, ReceivedReward
from nextbest.policy.ports import EventStore, Listener

if TYPE_CHECKING:
    from nextbest.policy.engine import PolicyRuntime

LEARNING_MODES = frozenset({"online", "apprentice"})
RETRY_AFTER = 1.0  # seconds before a join that could not be settled is tried again
MAX_RETRY_AFTER = 60.0  # the backoff's cap


def settles_at_once(rt: PolicyRuntime, event: Event) -> bool:
    """With `earliest`, the first accepted reward is final: no need to wait for the window."""
    return rt.config.reward.aggregation == "earliest" and (
        not event.defer_activation or event.activated
    )


def settled(rt: PolicyRuntime | None, event: Event) -> Event:
    """The event as its join settles, learning aside: its rewards aggregated into the
    joined reward, LEARNED when its mode learns and it was acted on (the mode recorded at
    decision: exploration paid for in `online` is learned after a switch to `frozen`, and
    an exploit-only decision is never learned as if it had explored), else SKIPPED; SKIPPED
    without a joined reward when its policy is gone (`rt` None: removed by a reload)."""
    if rt is None:
        return dataclasses.replace(event, join_status=JoinStatus.SKIPPED)
    spec = rt.config.reward
    values = event.accepted_values()
    joined = rewards.clip(spec, rewards.aggregate(spec.aggregation, values)) if values else None
    learn = event.mode in LEARNING_MODES and (not event.defer_activation or event.activated)
    return dataclasses.replace(
        event,
        join_status=JoinStatus.LEARNED if learn else JoinStatus.SKIPPED,
        joined_reward=spec.default if joined is None else joined,
    )


def settled_by(rt: PolicyRuntime, event: Event, reward: ReceivedReward) -> Event:
    """The event as `settled` with `reward` appended: what a store may settle in the same
    step as it keeps the reward (see `EventStore.add_reward`)."""
    return settled(rt, dataclasses.replace(event, rewards=[*event.rewards, reward]))


class Joins:
    """Settles joins for an engine: `policies` reads the engine's policies in force;
    `learns`: False where another process learns (a serving replica in Redis mode)."""

    def __init__(
        self,
        store: EventStore,
        listener: Listener,
        clock: Callable[[], float],
        policies: Callable[[], Mapping[str, PolicyRuntime]],
        learns: bool = True,
    ) -> None:
        self.store = store
        self.listener = listener
        self.clock = clock
        self.policies = policies
        self.learns = learns
        self._failures: dict[str, int] = {}  # event id → failed attempts, for backoff

    async def settle_due(self, now: float | None = None, limit: int = 1000) -> int:
        """Settle the joins whose window has ended; returns how many were handled. Each is
        settled on its own: one that fails is retried later and never holds up the rest."""
        now = self.clock() if now is None else now
        due = await self.store.due(now, limit)
        for event in due:
            await self.settle(event, now)
        return len(due)

    async def settle(self, event: Event, now: float | None = None) -> None:
        """Settle a join; if that fails (the log cannot be written, or anything else), the
        event stays pending and is tried again with a growing delay (what settled it, a
        reward or an activation, is already kept)."""
        try:
            await self._settle(event)
        except Exception as exc:
            failures = self._failures.get(event.event_id, 0) + 1
            self._failures[event.event_id] = failures
            delay = min(RETRY_AFTER * 2 ** (failures - 1), MAX_RETRY_AFTER)
            now = self.clock() if now is None else now
            self.listener.join_failed(event, str(exc) or type(exc).__name__)
            with contextlib.suppress(Exception):  # the store is down: it stays due as it was
                await self.store.reschedule(event, now + delay)
        else:
            self._failures.pop(event.event_id, None)

    async def _settle(self, event: Event) -> None:
        """Settle (`settled`), keep (log) the settled event, then learn it. The example is
        parsed before anything is logged, so the log never says "learned" of an event VW
        refused; logging comes before learning, so a crash in between is repaired by
        replaying the log, never by learning an event twice."""
        rt = self.policies().get(event.policy)
        done = settled(rt, event)
        example = None
        # Where another process learns (Redis mode), it parses the example, not the Reward.
        learns = done.join_status is JoinStatus.LEARNED and self.learns
        if rt is not None and done.joined_reward is not None and learns:
            try:
                example = rt.model.example(
                    event.vw_lines(), event.chosen, -done.joined_reward, event.probability
                )
            except Exception as exc:  # no retry makes VW take it: log it as not learned
                self.listener.join_failed(event, f"VW refused the example: {exc}")
                done = dataclasses.replace(done, join_status=JoinStatus.SKIPPED)
        try:
            first = await self.store.settle(done)
        except Exception:
            if example is not None and rt is not None:
                rt.model.discard(example)
            raise
        if example is not None and rt is not None:
            if first:
                rt.model.learn_example(example)
            else:
                rt.model.discard(example)
        if first:
            self.listener.joined(done)
