"""An event id names one event: what a Decide whose id is held is answered, by the engine
and by every store (they import this: the engine never imports a store).

A store checks the id as it keeps the event (in one step: one round trip in Redis mode):
an identical request (same policy and fingerprint) is a retry and gets the decision kept
under the id; any other request is refused, and so is any request once the id's event is no
longer kept (an id is never given to a second event).
"""

from __future__ import annotations

from nextbest.policy.errors import AlreadyExists
from nextbest.policy.events import Event


def retried(held: Event, policy: str, fingerprint: str) -> Event:
    """`held` when the request (`policy`, `fingerprint`) repeats the one it was decided
    for; AlreadyExists otherwise. An event kept without a fingerprint (decided before they
    were kept) takes any request of its policy as a retry."""
    if held.policy != policy or (held.fingerprint and held.fingerprint != fingerprint):
        raise taken(held.event_id, held.policy, policy)
    return held


def taken(event_id: str, held_policy: str, policy: str) -> AlreadyExists:
    """The id holds an event of another request (`held_policy` its policy)."""
    if held_policy != policy:
        return AlreadyExists(f"event {event_id!r} belongs to policy {held_policy!r}", "event_id")
    return AlreadyExists(
        f"event {event_id!r} was decided for another request; a retry must repeat the "
        "request exactly, a new decision needs a new id",
        "event_id",
    )


def used_before(event_id: str) -> AlreadyExists:
    """The id was used by an event no longer kept (past retention)."""
    return AlreadyExists(
        f"event {event_id!r} was used before (no longer kept); a new decision needs a new id",
        "event_id",
    )
