"""Reading DSJSON: foreign producers, data dirs, windows, and clear errors on bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from nextbest.evaluate.evaluation import Options, evaluate
from nextbest.evaluate.reader import LogError, Window, parse_time, read, replay, resolve
from nextbest.evaluate.specs import parse
from tests.unit.evaluate.logs import generate, record, world, write


def personalizer_line(i: int, chosen: int, reward: float, **extra: Any) -> dict[str, Any]:
    """An event as Azure Personalizer exports it: VW's DSJSON, ids as string features,
    nested namespaces, 7-digit fractions in the time, no `_labelIndex`, no `_nextbest`."""
    actions = ["Cooking", "Sports", "Politics"]
    pmf = [0.8, 0.1, 0.1] if i % 2 else [0.1, 0.8, 0.1]
    order = [chosen, *(k for k in range(3) if k != chosen)]
    return {
        "_label_cost": -reward,
        "_label_probability": pmf[chosen],
        "_label_Action": chosen + 1,
        "Timestamp": f"2020-03-0{1 + i % 3}T10:00:00.1234567Z",
        "Version": "1",
        "EventId": f"ev{i}",
        "a": [k + 1 for k in order],
        "c": {
            "User": [{"timeofday": "Morning" if i % 2 else "Evening"}],
            "_multi": [
                {"_tag": name, "i": {"constant": 1, "id": name}, "j": [{"topic": name.lower()}]}
                for name in actions
            ],
        },
        "p": [pmf[k] for k in order],
        "VWState": {"m": "abc/123"},
        **extra,
    }


def test_foreign_dsjson_without_a_nextbest_record_is_read(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    lines = []
    for i in range(400):
        chosen = int(rng.integers(3))
        lines.append(orjson.dumps(personalizer_line(i, chosen, float(chosen == 1))))
    lines.append(orjson.dumps(personalizer_line(400, 0, 1.0, _skipLearn=True)))
    path = write(tmp_path / "personalizer.json", lines)
    specs = ["logged", "uniform", "constant:Sports", "constant:#1", "vw:--cb_adf -q ::"]
    ev = evaluate([path], Options([parse(s) for s in specs]))
    assert ev.log.n == 400
    assert ev.log.skipped == 1
    assert ev.log.modes == {}  # no `_nextbest`: nothing about modes
    results = {r.policy: r for r in ev.results}
    for result in results.values():
        assert result.events == 400
        assert result.ips.value is not None
        assert result.dr.value is not None
    # only "Sports" (the second action, named by the string feature "id": "Sports") pays
    assert results["constant:Sports"].snips.value == 1.0
    assert results["constant:#1"].ips.value == 0.0
    warning = results["constant:Sports"].warning or ""  # weights of 10 on half the events
    assert "expected from the logged probabilities (< 100)" in warning
    assert ev.log.vocabulary.keys() >= {"Cooking", "Sports", "Politics"}


def test_the_chosen_action_may_be_given_by_label_index_or_action(tmp_path: Path) -> None:
    line = record(0, np.asarray([0.25, 0.75]), 1, 1.0)
    del line["_label_Action"]
    path = write(tmp_path / "a.dsjson", [orjson.dumps(line)])
    log = read([path])
    assert log.chosen.tolist() == [1]
    assert log.probability.tolist() == [0.75]
    assert log.reward.tolist() == [1.0]


BAD = [
    (lambda r: r.update(_label_probability=0), "probability 0"),
    (lambda r: r.update(_label_probability=0.0), "probability 0"),
    (lambda r: r.update(_label_probability=1.5), "above 1"),
    (lambda r: r.update(_label_probability=-0.2), "probability 0"),
    (lambda r: r.update(_label_probability="x"), "not a number"),
    (lambda r: r.pop("_label_probability") and r.pop("p"), "no _label_probability"),
    (lambda r: r.update(_label_Action=5, _labelIndex=4), "not among 2 actions"),
    (lambda r: r.update(_labelIndex=0), "disagree"),
    (lambda r: r.update(_label_cost="1"), "not a finite number"),
    (lambda r: r["c"].pop("_multi"), "no c._multi"),
    (lambda r: r["c"].update(_multi=[]), "empty"),
    (lambda r: r.update(p=[0.5, 2.0]), "not a probability"),
    (lambda r: r.update(a=[1, 7]), "not a 1-based index"),
]


@pytest.mark.parametrize(("change", "message"), BAD)
def test_a_bad_event_is_named_by_file_and_line(tmp_path: Path, change: Any, message: str) -> None:
    good = [orjson.dumps(record(0, np.asarray([0.5, 0.5]), 1, 1.0)) for _ in range(3)]
    bad = record(0, np.asarray([0.5, 0.5]), 1, 1.0)
    change(bad)
    path = write(tmp_path / "bad.dsjson", [*good, orjson.dumps(bad)])
    with pytest.raises(LogError) as caught:
        read([path])
    assert str(caught.value).startswith(f"{path}:4: ")
    assert message in str(caught.value)


def test_a_truncated_line_is_named_by_file_and_line(tmp_path: Path) -> None:
    w = world(0)
    lines = generate(w, 5, 0)
    path = tmp_path / "torn.dsjson"
    path.write_bytes(b"\n".join(lines[:4]) + b"\n" + lines[4][: len(lines[4]) // 2])
    with pytest.raises(LogError) as caught:
        read([path])
    assert str(caught.value).startswith(f"{path}:5: not valid JSON (a truncated or torn line?)")


def test_a_log_with_no_events_says_so(tmp_path: Path) -> None:
    empty = tmp_path / "empty.dsjson"
    empty.write_bytes(b"\n\n")
    with pytest.raises(LogError, match=r"empty.dsjson: no events to evaluate$"):
        read([empty])
    skipped = record(0, np.asarray([0.5, 0.5]), 1, 1.0) | {"_skipLearn": True}
    path = write(tmp_path / "skipped.dsjson", [orjson.dumps(skipped)] * 2)
    with pytest.raises(LogError, match=r"no events to evaluate \(left out: 2 with _skipLearn\)"):
        read([path])
    nothing = tmp_path / "nothing"
    nothing.mkdir()
    with pytest.raises(LogError, match="no DSJSON files"):
        resolve([nothing], None)
    with pytest.raises(LogError, match="no such file or folder"):
        resolve([tmp_path / "missing.dsjson"], None)


def test_not_json_objects_and_binary_garbage_are_refused(tmp_path: Path) -> None:
    for content, message in ((b"[1, 2]\n", "a JSON object"), (b"\xff\xfe\x00\n", "not valid")):
        path = tmp_path / "garbage.dsjson"
        path.write_bytes(content)
        with pytest.raises(LogError, match=message):
            read([path])


def data_dir(root: Path) -> Path:
    """A nextbest data dir with two policies, their logs in numbered segments."""
    for name, seed in (("support.next_step", 1), ("billing.route", 2)):
        decisions = root / "policies" / name / "decisions"
        decisions.mkdir(parents=True)
        lines = generate(world(seed), 30, seed, extra=lambda *_, name=name: {"policy": name})
        write(decisions / "000000000000.dsjson", lines[:20])
        write(decisions / "000000000020.dsjson", lines[20:])
        (root / "policies" / name / "models").mkdir()
        (root / "policies" / name / "models" / "000000000030-000000000030.json").write_text("{}")
    (root / "journal").mkdir()
    (root / "journal" / "000000000000.jsonl").write_text('{"not": "an event"}\n')
    return root


def test_a_data_dir_is_read_per_policy(tmp_path: Path) -> None:
    root = data_dir(tmp_path / "data")
    with pytest.raises(LogError, match=r"several policies \(billing.route, support.next_step\)"):
        resolve([root], None)
    files = resolve([root], "support.next_step")
    assert [f.name for f in files] == ["000000000000.dsjson", "000000000020.dsjson"]
    assert resolve([root / "policies"], "billing.route")[0].parent.parent.name == "billing.route"
    assert resolve([root / "policies" / "billing.route"], None)[0].parent.name == "decisions"
    with pytest.raises(LogError, match="has no policy 'nope'"):
        resolve([root], "nope")
    log = read(files, Window(policy="support.next_step"))
    assert log.n == 30
    assert log.where(25) == (files[1], 6)
    # the policy name also filters lines of other policies in the files given
    mixed = read([*files, *resolve([root], "billing.route")], Window(policy="billing.route"))
    assert mixed.n == 30
    assert mixed.other_policies == 30


def test_since_and_until_select_a_time_window(tmp_path: Path) -> None:
    stamps = ["2026-01-01T00:00:00.000Z", "2026-01-02T12:00:00.000Z", "2026-01-03T00:00:00Z"]
    lines = [
        orjson.dumps(record(0, np.asarray([0.5, 0.5]), 0, float(i), timestamp=t))
        for i, t in enumerate(stamps)
    ]
    no_time = record(0, np.asarray([0.5, 0.5]), 0, 9.0)
    del no_time["Timestamp"]
    path = write(tmp_path / "t.dsjson", [*lines, orjson.dumps(no_time)])
    log = read([path], Window(since=parse_time("2026-01-02"), until=parse_time("2026-01-03")))
    assert log.reward.tolist() == [1.0]
    assert log.outside_window == 3  # before, at --until (exclusive), and the one with no time
    assert read([path], Window(since=parse_time("2026-01-02T12:00"))).reward.tolist() == [1, 2]
    assert read([path]).n == 4  # no window: every event, timed or not
    assert parse_time("2020-03-01T10:00:00.1234567Z") == parse_time("2020-03-01T10:00:00.123456")
    with pytest.raises(ValueError, match="not an ISO 8601 time"):
        parse_time("yesterday")


def test_replay_rebuilds_lines_vw_reads_and_notices_a_changed_file(tmp_path: Path) -> None:
    lines = generate(world(0), 10, 0)
    path = write(tmp_path / "r.dsjson", lines)
    log = read([path])
    records = list(replay(log))
    assert [r["_labelIndex"] for r in records] == log.chosen.tolist()
    write(path, lines[:5])
    with pytest.raises(LogError, match="changed while being read: 5 of 10 events"):
        list(replay(log))
