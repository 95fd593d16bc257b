"""VW on the log: saved models score DSJSON as nextbest scored text, weights, arguments."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

from nextbest.evaluate import learners
from nextbest.evaluate.evaluation import Options, evaluate
from nextbest.evaluate.reader import read
from nextbest.evaluate.specs import parse
from nextbest.policy.features import action_line, shared_line
from nextbest.policy.model import Model
from tests.unit.evaluate.logs import generate, world, write

VW_ARGS = "--cb_explore_adf -q ca --power_t 0 -l 0.3"


def trained_model(tmp_path: Path, lines: list[bytes]) -> Path:
    """A model as `nextbest model export` writes it: nextbest's Model, learning the same
    events from VW text lines (its own encoding)."""
    model = Model(VW_ARGS)
    for raw in lines:
        event = orjson.loads(raw)
        x = next(iter(event["c"]["c"])).removeprefix("x=")
        text = [shared_line("demo", {"x": x})]
        text += [action_line(f"a{k}", {}) for k in range(len(event["c"]["_multi"]))]
        model.learn(text, event["_labelIndex"], event["_label_cost"], event["_label_probability"])
    path = tmp_path / "model.vw"
    model.save(path)
    model.close()
    return path


def test_a_saved_model_is_greedy_on_what_nextbest_would_score(tmp_path: Path) -> None:
    w = world(3)
    lines = generate(w, 600, 3)
    model = trained_model(tmp_path, lines)
    log_path = write(tmp_path / "log.dsjson", lines)
    spec = parse(f"model:{model}")
    log = read([log_path])
    learned = learners.learn(log, [spec], -log.reward)
    pi = learned.pi[spec.text]
    assert set(np.unique(pi).tolist()) == {0.0, 1.0}
    assert np.add.reduceat(pi, log.offsets[:-1]).tolist() == [1.0] * log.n
    # the greedy action per context is the one nextbest's own model scores best
    scorer = Model(VW_ARGS, initial=model)
    for event in range(5):
        x = next(iter(orjson.loads(lines[event])["c"]["c"])).removeprefix("x=")
        text = [shared_line("demo", {"x": x}), *(action_line(f"a{k}", {}) for k in range(4))]
        best = int(np.argmin(scorer.costs(text)))
        chosen = int(np.argmax(pi[log.offsets[event] : log.offsets[event + 1]]))
        assert chosen == best
    scorer.close()
    # and it learned the world: greedy on a model trained on it beats uniform
    ev = evaluate([log_path], Options([spec, parse("uniform")]))
    by = {r.policy: r for r in ev.results}
    model_value, uniform_value = by[spec.text].dr.value, by["uniform"].dr.value
    assert model_value is not None
    assert uniform_value is not None
    assert model_value > uniform_value


def test_features_lists_the_largest_weights_by_name(tmp_path: Path) -> None:
    log_path = write(tmp_path / "log.dsjson", generate(world(1), 300, 1))
    candidate = "vw:--cb_adf -q ca"
    ev = evaluate([log_path], Options([parse(candidate), parse("uniform")], features=4))
    weights = ev.features[candidate]
    assert len(weights) == 4
    assert [abs(v) for _, v in weights] == sorted((abs(v) for _, v in weights), reverse=True)
    assert all("c^x=" in name or "a^id=" in name or name == "Constant" for name, _ in weights)
    assert "uniform" not in ev.features


def test_a_greedy_candidate_puts_all_weight_on_one_action(tmp_path: Path) -> None:
    log_path = write(tmp_path / "log.dsjson", generate(world(2), 200, 2))
    log = read([log_path])
    specs = [parse("vw:--cb_adf"), parse("vw:--cb_explore_adf --epsilon 0.2")]
    learned = learners.learn(log, specs, -log.reward)
    greedy, exploring = learned.pi[specs[0].text], learned.pi[specs[1].text]
    assert set(np.unique(greedy).tolist()) == {0.0, 1.0}
    assert np.allclose(np.add.reduceat(exploring, log.offsets[:-1]), 1.0)
    assert exploring.min() >= 0.2 / 4 - 1e-6  # VW's ε spread over the 4 actions
    assert learned.reward_hat is not None
    assert len(learned.reward_hat) == len(greedy)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("--cb_explore_adf -d other.dat", "-d is not allowed"),
        ("--cb_adf --invert_hash x", "--invert_hash is not allowed"),
        ("-q ::", "need --cb_adf or --cb_explore_adf"),
        ("--cb_adf 'unclosed", "cannot split"),
    ],
)
def test_learner_arguments_are_checked(args: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        learners.check_args(args, f"vw:{args}")


def test_arguments_vw_refuses_are_reported_not_raised_as_crashes(tmp_path: Path) -> None:
    log_path = write(tmp_path / "log.dsjson", generate(world(0), 20, 0))
    with pytest.raises(ValueError, match="VW refused the arguments"):
        evaluate([log_path], Options([parse("vw:--cb_adf --no_such_option")]))
    with pytest.raises(ValueError, match="not a contextual-bandit learner"):
        evaluate([log_path], Options([parse("uniform")], reward_model="--cb_adf --cbify 3"))


def test_top_weights_reads_an_invert_hash_file(tmp_path: Path) -> None:
    path = tmp_path / "ih.txt"
    path.write_text(
        "Version 9.11.9\nId \noptions: --cb_adf\n:1\n"
        "Constant:116060:-0.2 254.5 1\na^id=x:12:0.5\nc^k:v*a^id=y:13:-0.9 1 1\n"
    )
    assert learners.top_weights(path, 2) == [("c^k:v*a^id=y", -0.9), ("a^id=x", 0.5)]
