"""VW reads the decision log as it is, and learns the live model from it."""

from __future__ import annotations

from pathlib import Path

import orjson
import vowpalwabbit

from nextbest.policy.ports import run_now
from nextbest.policy.vw_args import DEFAULT_VW_ARGS
from nextbest.store import dsjson
from nextbest.store.files import list_segments
from tests.unit.store.test_durable import PROBES, Clock, config, greedy, start, workload


def log_lines(data: Path) -> list[bytes]:
    lines: list[bytes] = []
    for _, path in list_segments(data / "policies" / "p" / "decisions", ".dsjson"):
        lines.extend(path.read_bytes().splitlines())
    return lines


def test_the_log_has_the_dsjson_fields(tmp_path: Path) -> None:
    clock = Clock()
    engine, _, _ = start(tmp_path, config(), clock)
    workload(engine, clock, 40)
    clock.now += 3600
    run_now(engine.settle_due())
    record = orjson.loads(log_lines(tmp_path)[0])
    for key in (
        "_label_cost",
        "_label_probability",
        "_label_Action",
        "_labelIndex",
        "a",
        "p",
        "c",
        "EventId",
        "Timestamp",
        "VWState",
    ):
        assert key in record
    assert set(record["c"]) == {"i", "c", "_multi"}
    assert record["a"][0] == record["_label_Action"]
    assert record["p"][0] == record["_label_probability"]
    assert record["_nextbest"]["rewards"][0]["value"] == -record["_label_cost"]


def test_a_fresh_vw_trained_on_the_log_matches_the_live_model(tmp_path: Path) -> None:
    clock = Clock()
    engine, _, _ = start(tmp_path, config(), clock)
    workload(engine, clock, 1200)
    clock.now += 3600
    run_now(engine.settle_due(limit=10_000))
    offline = vowpalwabbit.Workspace(f"--dsjson {DEFAULT_VW_ARGS} --quiet")
    lines = log_lines(tmp_path)
    assert len(lines) == 1200
    for line in lines:
        offline.learn(line.decode())
    live = greedy(engine)
    assert len({g for g, _ in live}) >= 2  # the probes tell situations apart
    for probe, (greedy_action, costs) in zip(PROBES, live, strict=True):
        event = run_now(engine.explain(probe.event_id))
        pmf = offline.predict(dsjson.line(event).decode())
        best = max(range(len(pmf)), key=pmf.__getitem__)
        assert event.eligible[best].id == greedy_action, (probe, costs, pmf)
