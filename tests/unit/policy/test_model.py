"""The model's fast pylibvw path agrees with pyvw's public one, and saves exactly."""

from __future__ import annotations

from pathlib import Path

import vowpalwabbit

from nextbest.policy.model import Model
from nextbest.policy.vw_args import DEFAULT_VW_ARGS, scorer_args

LINES = [
    "shared |i billing |c amount:42.5 plan=gold",
    "|a id=ask kind=info",
    "|a id=refund kind=money",
    "|a id=transfer kind=human",
]


def train(model: Model, n: int = 30) -> None:
    for i in range(n):
        model.learn(LINES, i % 3, -1.0 if i % 3 == 1 else 0.0, 0.8)


def test_fast_scoring_matches_pyvw() -> None:
    model = Model(DEFAULT_VW_ARGS)
    reference = vowpalwabbit.Workspace(scorer_args(DEFAULT_VW_ARGS))
    for i in range(30):
        label = list(LINES)
        label[1 + i % 3] = f"0:{-1.0 if i % 3 == 1 else 0.0}:0.8 {label[1 + i % 3]}"
        reference.learn(label)
    train(model)
    assert model.costs(LINES) == reference.predict(LINES)
    assert model.version == "30"
    best = min(range(3), key=lambda i: model.costs(LINES)[i])
    assert best == 1


def test_a_saved_model_loads_and_learns_on_identically(tmp_path: Path) -> None:
    model = Model(DEFAULT_VW_ARGS)
    train(model)
    model.save(tmp_path / "m.vw")
    copy = Model(DEFAULT_VW_ARGS, initial=tmp_path / "m.vw", learned=model.learned)
    train(model, 10)
    train(copy, 10)
    assert copy.costs(LINES) == model.costs(LINES)
    assert copy.version == model.version == "40"
