"""A batch of decisions (`Engine.decide_many`, what DecideBatch runs): each request gets what
`decide` would give it, the batch is kept in one step (one journal write), and a refused
write keeps none of it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from nextbest.policy.errors import AlreadyExists, InvalidArgument, NotFound, ResourceExhausted
from nextbest.policy.events import Event
from nextbest.policy.ports import NullListener, run_now
from nextbest.policy.requests import DecideInput
from nextbest.store import codec
from nextbest.store.files import SegmentedLog
from tests.unit.store.test_durable import Clock, config, start

OK = {"account_age_days": 400.0, "amount": 50.0}


class Told(NullListener):
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def decided(self, events: Sequence[Event]) -> None:
        self.calls.append([e.event_id for e in events])


def request(event_id: str = "", amount: float = 50.0, policy: str = "p") -> DecideInput:
    return DecideInput(policy, "billing_dispute", dict(OK, amount=amount), event_id=event_id)


def counting_appends(log: SegmentedLog) -> list[int]:
    """The number of lines of each write to `log` from now on."""
    writes: list[int] = []
    append = log.append

    def counted(lines: list[bytes]) -> int:
        writes.append(len(lines))
        return append(lines)

    log.append = counted  # type: ignore[method-assign]
    return writes


def test_a_batch_is_journaled_in_one_write_told_once_and_survives_a_restart(
    tmp_path: Path,
) -> None:
    cfg, clock = config(), Clock()
    engine, store, _ = start(tmp_path, cfg, clock)
    told = Told()
    engine.listener = told
    writes = counting_appends(store.journal)
    outcomes = run_now(engine.decide_many([request(amount=float(i)) for i in range(10)]))
    assert all(isinstance(o, Event) for o in outcomes)
    ids = [o.event_id for o in outcomes if isinstance(o, Event)]
    assert len(set(ids)) == 10
    assert writes == [10]
    assert told.calls == [ids]
    engine, _, _ = start(tmp_path, cfg, clock)  # a crash and a restart
    for outcome in outcomes:
        assert isinstance(outcome, Event)
        held = run_now(engine.explain(outcome.event_id))
        assert (held.action_id, held.pmf) == (outcome.action_id, outcome.pmf)


def test_a_refused_write_keeps_none_of_the_batch_and_tells_no_one(tmp_path: Path) -> None:
    engine, store, _ = start(tmp_path, config(), Clock())
    told = Told()
    engine.listener = told
    store.journal.close()  # every further write fails, as on a dead disk
    outcomes = run_now(engine.decide_many([request("a"), request("b"), request()]))
    assert [type(o).__name__ for o in outcomes] == ["Unavailable"] * 3
    assert told.calls == []
    assert run_now(store.get("a")) is None
    assert run_now(store.get("b")) is None
    assert not run_now(store.used("a"))


def test_each_request_fails_alone_and_names_its_field(tmp_path: Path) -> None:
    engine, _, _ = start(tmp_path, config(), Clock())
    outcomes = run_now(
        engine.decide_many(
            [
                request("ok-1"),
                request("gone", policy="nope"),
                DecideInput("p", "billing_dispute", {"amount": float("nan")}),
                request("ok-2"),
            ]
        )
    )
    assert isinstance(outcomes[0], Event)
    assert isinstance(outcomes[1], NotFound)
    assert isinstance(outcomes[2], InvalidArgument)
    assert outcomes[2].field == "context['amount']"
    assert isinstance(outcomes[3], Event)
    assert run_now(engine.explain("ok-2")).event_id == "ok-2"


def test_an_id_twice_in_a_batch_is_one_event_as_if_sent_one_after_the_other(
    tmp_path: Path,
) -> None:
    engine, store, _ = start(tmp_path, config(), Clock())
    told = Told()
    engine.listener = told
    writes = counting_appends(store.journal)
    first, retry, other, elsewhere = run_now(
        engine.decide_many(
            [
                request("x"),
                request("x"),  # the same request again: a retry, the same decision
                request("x", amount=70.0),  # another request with the id: refused
                request("x", policy="nope"),  # one that cannot be decided: refused too
            ]
        )
    )
    assert isinstance(first, Event)
    assert retry is first
    assert isinstance(other, AlreadyExists)
    assert other.field == "event_id"
    assert isinstance(elsewhere, AlreadyExists)
    assert "belongs to policy 'p'" in str(elsewhere)
    assert told.calls == [["x"]]
    assert writes == [1]
    # and in a later batch, as a later Decide would
    [again] = run_now(engine.decide_many([request("x")]))
    assert isinstance(again, Event)
    assert (again.event_id, again.action_id, again.pmf) == ("x", first.action_id, first.pmf)
    assert told.calls == [["x"]]


def test_the_pending_bound_refuses_only_the_decisions_past_it(tmp_path: Path) -> None:
    probe, _, _ = start(tmp_path / "probe", config(), Clock())
    one = len(codec.encode(run_now(probe.decide(request("probe")))))
    size = one * 3 // 2  # room for one event, not two
    engine, store, _ = start(tmp_path / "bound", config(), Clock(), max_pending_bytes=size)
    outcomes = run_now(engine.decide_many([request("a"), request("b"), request("c")]))
    assert isinstance(outcomes[0], Event)
    assert [type(o) for o in outcomes[1:]] == [ResourceExhausted, ResourceExhausted]
    assert store.pending_bytes() <= size
    assert not run_now(store.used("b"))


@pytest.mark.parametrize("n", [1, 3])
def test_decide_is_a_batch_of_one(tmp_path: Path, n: int) -> None:
    engine, store, _ = start(tmp_path, config(), Clock())
    writes = counting_appends(store.journal)
    for i in range(n):
        run_now(engine.decide(request(f"e{i}")))
    assert writes == [1] * n
