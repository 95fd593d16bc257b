"""The Redis store's local copies of the events a replica decided: bounded by bytes, least
recently used dropped first."""

from __future__ import annotations

from nextbest.store.redis.recent import OVERHEAD, Fields, RecentEvents


def fields(size: int) -> Fields:
    return Fields(b"x" * size, None, b"0")


def entry(event_id: str, size: int) -> int:
    return OVERHEAD + len(event_id) + size


def test_past_the_budget_the_least_recently_used_go_first() -> None:
    recent = RecentEvents(budget=3 * entry("e0", 100))
    for i in range(3):
        recent.keep(f"e{i}", fields(100))
    assert recent.find("e0") is not None  # used: now the most recent
    recent.keep("e3", fields(100))
    assert recent.find("e1") is None
    assert [recent.find(e) is not None for e in ("e0", "e2", "e3")] == [True, True, True]
    assert recent.size == 3 * entry("e0", 100) <= recent.budget


def test_rewards_count_and_replace_what_was_held() -> None:
    recent = RecentEvents(budget=10_000)
    recent.keep("e1", fields(100))
    recent.update("e1", b"r" * 50, b"1")
    assert recent.find("e1") == Fields(b"x" * 100, b"r" * 50, b"1")
    assert recent.size == entry("e1", 150)
    recent.update("e2", b"r", b"1")  # not held: stays so
    assert recent.find("e2") is None
    recent.drop("e1")
    assert (len(recent), recent.size) == (0, 0)


def test_an_event_larger_than_the_budget_is_not_held() -> None:
    recent = RecentEvents(budget=entry("e1", 100))
    recent.keep("e1", fields(100))
    recent.keep("e2", fields(101))
    assert recent.find("e2") is None
    assert recent.find("e1") is not None
