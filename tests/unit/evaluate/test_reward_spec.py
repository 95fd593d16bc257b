"""--reward-spec: loading the spec, and rescoring each event as the service would join it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from nextbest.evaluate.evaluation import Options, evaluate
from nextbest.evaluate.reader import LogError
from nextbest.evaluate.reward_spec import Rescorer, load_spec
from nextbest.evaluate.specs import parse
from nextbest.policy.config import RewardSpec
from tests.unit.evaluate.logs import record, write

SIGNALS = {"resolved": {"weight": 1.0}, "csat": {"weight": 0.5, "range": [1, 5]}}


@pytest.mark.parametrize(
    "text",
    [
        "signals: {resolved: {weight: 1.0}, csat: {weight: 0.5, range: [1, 5]}}",
        "reward: {signals: {resolved: {weight: 1.0}, csat: {weight: 0.5, range: [1, 5]}}}",
        "policies:\n  p.one:\n    reward: {signals: {resolved: {weight: 1.0}, "
        "csat: {weight: 0.5, range: [1, 5]}}}\n",
    ],
)
def test_the_spec_is_a_reward_block_a_policy_or_a_policy_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    assert load_spec(path) == RewardSpec.model_validate({"signals": SIGNALS})


def test_a_bad_spec_is_named_with_its_file(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text("clip: [1, -1]\n")
    with pytest.raises(LogError, match=r"spec.yaml: not a valid reward spec: .*clip"):
        load_spec(path)
    path.write_text("policies: {a: {}, b: {}}\n")
    with pytest.raises(LogError, match=r"several policies \(a, b\)"):
        load_spec(path)
    assert load_spec(path, "b") == RewardSpec()
    path.write_text("[not, a, mapping]\n")
    with pytest.raises(LogError, match="a mapping"):
        load_spec(path)
    path.write_text("a: [\n")
    with pytest.raises(LogError, match="not valid YAML"):
        load_spec(path)
    with pytest.raises(LogError, match="cannot read"):
        load_spec(tmp_path / "missing.yaml")


def nb(*rewards: dict[str, Any]) -> dict[str, Any]:
    return {"rewards": list(rewards)}


def accepted(signals: dict[str, float], status: str = "accepted") -> dict[str, Any]:
    return {"value": 0.0, "signals": signals, "status": status}


def test_events_are_rescored_as_the_service_joins_them() -> None:
    spec = RewardSpec.model_validate(
        {"signals": SIGNALS, "aggregation": "sum", "default": -0.25, "clip": [-1, 1.2]}
    )
    rescore = Rescorer(spec)
    assert rescore(nb(accepted({"resolved": 1, "csat": 5})), 0.3) == 1.2  # 1.5, clipped
    assert rescore(nb(accepted({"resolved": 0, "csat": 3})), 0.3) == 0.25
    both = nb(accepted({"resolved": 0.5}), accepted({"csat": 2}))
    assert rescore(both, 0.3) == 0.5 + 0.125  # sum of the two
    late = nb(accepted({"resolved": 1}), accepted({"resolved": 1}, status="late"))
    assert rescore(late, 0.3) == 1.0  # late rewards were never learned
    assert rescore(nb(), 0.3) == -0.25  # no reward came: the new default
    assert rescore(nb(accepted({"resolved": 1, "escalated": 1})), 0.3) == 1.0
    assert rescore.ignored == {"escalated": 1}
    assert rescore.rescored == 6
    # kept: no record (foreign), a bare value, a value the new range refuses
    assert rescore(None, 0.3) == 0.3
    assert rescore(nb({"value": 0.7, "signals": {}, "status": "accepted"}), 0.7) == 0.7
    assert rescore(nb(accepted({"csat": 9})), 0.4) == 0.4
    assert (rescore.without_signals, rescore.refused, rescore.kept) == (2, 1, 3)


def test_events_without_raw_signals_are_counted_and_keep_their_reward(tmp_path: Path) -> None:
    lines = []
    for i in range(40):
        signals = {"resolved": float(i % 2), "csat": 1.0 + i % 5}
        extra = {"_nextbest": nb(accepted(signals))} if i < 30 else {}
        line = record(0, np.asarray([0.5, 0.5]), i % 2, 0.1) | extra
        lines.append(orjson.dumps(line))
    log = write(tmp_path / "log.dsjson", lines)
    spec = tmp_path / "spec.yaml"
    spec.write_text("signals: {resolved: {weight: 1.0}}\n")
    ev = evaluate([log], Options([parse("logged")], reward_spec=spec))
    assert ev.rescorer is not None
    assert ev.log.alt_reward is not None
    assert (ev.rescorer.rescored, ev.rescorer.without_signals) == (30, 10)
    assert ev.log.alt_reward[:4].tolist() == [0.0, 1.0, 0.0, 1.0]
    assert ev.log.alt_reward[30:].tolist() == [0.1] * 10
    assert ev.alternative is not None
    assert ev.alternative[0].ips.value == pytest.approx((15 + 1.0) / 40)
