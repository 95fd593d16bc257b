"""`nextbest evaluate` in process: the table, --json's stable shape, --plot, notes, errors."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from nextbest.cli import main
from nextbest.evaluate.evaluation import Options, evaluate
from nextbest.evaluate.report import as_json
from nextbest.evaluate.specs import parse
from tests.unit.evaluate.logs import generate, record, world, write

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def small_log(tmp_path: Path, n: int = 200) -> Path:
    return write(tmp_path / "log.dsjson", generate(world(5), n, 5))


def check_shape(data: dict[str, Any]) -> None:
    """The documented shape, exactly: these keys, these types, nothing else."""
    assert set(data) == {"events", "skipped", "policies"}
    assert isinstance(data["events"], int)
    assert isinstance(data["skipped"], int)
    for entry in data["policies"]:
        assert set(entry) == {"policy", "estimates", "effective_sample_size"}
        assert isinstance(entry["policy"], str)
        assert isinstance(entry["effective_sample_size"], float)
        assert set(entry["estimates"]) == {"ips", "snips", "dr"}
        for estimate in entry["estimates"].values():
            assert set(estimate) == {"value", "ci"}
            assert len(estimate["ci"]) == 2
            if estimate["value"] is not None:
                low, high = estimate["ci"]
                assert low <= estimate["value"] <= high


def test_the_command_prints_the_table_and_writes_json_and_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = small_log(tmp_path)
    out, plot = tmp_path / "out.json", tmp_path / "out.png"
    flags = ["--policy", "logged", "--policy", "uniform", "--policy", "constant:a1"]
    code = main(["evaluate", str(log), *flags, "--json", str(out), "--plot", str(plot)])
    printed = capsys.readouterr().out
    assert code == 0
    for text in ("IPS", "SNIPS", "DR", "logged", "uniform", "constant:a1", "200 events"):
        assert text in printed
    data = orjson.loads(out.read_bytes())
    check_shape(data)
    assert data["events"] == 200
    assert data["skipped"] == 0
    assert [p["policy"] for p in data["policies"]] == ["logged", "uniform", "constant:a1"]
    assert plot.read_bytes()[:8] == PNG_MAGIC


def test_the_default_policies_are_logged_and_uniform(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.json"
    assert main(["evaluate", str(small_log(tmp_path)), "--json", str(out), "--no-progress"]) == 0
    names = [p["policy"] for p in orjson.loads(out.read_bytes())["policies"]]
    assert names == ["logged", "uniform"]


def test_reward_spec_estimates_are_more_entries_of_the_same_shape(tmp_path: Path) -> None:
    lines = generate(
        world(6),
        100,
        6,
        extra=lambda i, x, c, r: {"rewards": [{"signals": {"ok": r}, "status": "accepted"}]},
    )
    spec = tmp_path / "double.yaml"
    spec.write_text("signals: {ok: {weight: 2.0}}\nclip: [-5, 5]\n")
    ev = evaluate(
        [write(tmp_path / "log.dsjson", lines)],
        Options([parse("logged"), parse("uniform")], reward_spec=spec),
    )
    data = as_json(ev)
    check_shape(data)
    names = [p["policy"] for p in data["policies"]]
    assert names == [
        "logged",
        "uniform",
        "logged [reward: double.yaml]",
        "uniform [reward: double.yaml]",
    ]
    values = [p["estimates"]["ips"]["value"] for p in data["policies"]]
    assert values[2] == pytest.approx(2 * values[0])
    assert values[3] == pytest.approx(2 * values[1])


def test_apprentice_logs_baseline_and_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Apprentice mode logs the caller's baseline with probability 1: `baseline` equals the
    logged average there; a constant the log never explored gets a warning, not a crash."""
    lines = []
    for i in range(60):
        chosen = i % 3
        pmf = np.zeros(3)
        pmf[chosen] = 1.0
        ids = ["a0", "a 1", "a2"]  # nextbest escapes "a 1" in the features: id=a%201
        nb: dict[str, Any] = {"mode": "apprentice", "eligible": [{"id": a} for a in ids]}
        if i < 50:
            nb["baseline_action_id"] = ids[chosen]
        line = record(0, pmf, chosen, float(i % 2), nextbest=nb, ids=ids)
        lines.append(orjson.dumps(line))
    log = write(tmp_path / "apprentice.dsjson", lines)
    out = tmp_path / "out.json"
    flags = ["--policy", "baseline", "--policy", "constant:zzz", "--policy", "constant:#2"]
    flags += ["--policy", "constant:a 1"]
    assert main(["evaluate", str(log), *flags, "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    by = {p["policy"]: p["estimates"] for p in orjson.loads(out.read_bytes())["policies"]}
    assert by["baseline"]["ips"]["value"] == pytest.approx(25 / 50)
    assert by["constant:zzz"]["ips"]["value"] is None
    assert by["constant:a 1"] == by["constant:#2"]  # the same action, by id and by position
    assert by["constant:zzz"]["dr"]["ci"] == [None, None]
    assert "50/60" in printed  # baseline: the events that have one
    assert "60 events were logged with probability 1" in printed
    assert "apprentice 60" in printed
    assert "no event has an action with id 'zzz'" in printed
    # constant:#2 takes a1 where the log could only take the baseline
    assert "on 40 events it takes actions the log chose with probability 0" in printed


def test_bad_input_ends_with_a_message_naming_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = record(0, np.asarray([0.5, 0.5]), 0, 1.0) | {"_label_probability": 0}
    log = write(tmp_path / "bad.dsjson", [orjson.dumps(bad)])
    assert main(["evaluate", str(log)]) == 2
    assert capsys.readouterr().err.startswith(
        f"nextbest evaluate: {log}:1: _label_probability is 0"
    )
    empty = tmp_path / "empty.dsjson"
    empty.write_text("")
    assert main(["evaluate", str(empty)]) == 2
    assert "no events to evaluate" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "missing")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    good = small_log(tmp_path, 20)
    assert main(["evaluate", str(good), "--policy", "vw:--cb_adf --data x"]) == 2
    assert "--data is not allowed" in capsys.readouterr().err
    assert main(["evaluate", str(good), "--reward-model=--cb_adf --nope"]) == 2
    assert "VW refused the arguments" in capsys.readouterr().err
    assert main(["evaluate", str(good), "--reward-spec", str(tmp_path / "none.yaml")]) == 2
    assert "none.yaml: cannot read" in capsys.readouterr().err
    flags = ["--since", "2026-02-01", "--until", "2026-01-01"]
    assert main(["evaluate", str(good), *flags]) == 2
    assert "--since must be before --until" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--policy", "greedy"], "is not a policy; use one of: logged, uniform"),
        (["--policy", "constant:#0"], "1-based position"),
        (["--policy", "model:/no/such/model.vw"], "no such model file"),
        (["--since", "last week"], "not an ISO 8601 time"),
        (["--features", "0"], "is not ≥ 1"),
    ],
)
def test_bad_flags_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["evaluate", str(tmp_path), *flags])
    assert caught.value.code == 2
    assert message in capsys.readouterr().err


def test_plot_without_matplotlib_is_a_one_line_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name)
    )
    code = main(["evaluate", str(small_log(tmp_path)), "--plot", str(tmp_path / "p.png")])
    assert code == 2
    err = capsys.readouterr().err
    assert err == "nextbest evaluate: --plot needs matplotlib: pip install 'nextbest[simulate]'\n"


def test_progress_is_reported_per_phase(tmp_path: Path) -> None:
    seen: dict[str, tuple[int, int]] = {}
    evaluate(
        [small_log(tmp_path)],
        Options([parse("vw:--cb_adf")]),
        lambda phase, done, total: seen.__setitem__(phase, (done, total)),
    )
    assert seen["learn"] == (200, 200)
    assert seen["reward model"] == (200, 200)
    size = (tmp_path / "log.dsjson").stat().st_size
    assert seen["read"] == (size, size)
