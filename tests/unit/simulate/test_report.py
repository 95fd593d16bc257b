"""The report: table and checks, the CSV of the curve, the PNG plot."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console

from nextbest.simulate.news import NewsScenario
from nextbest.simulate.report import (
    default_window,
    explore_rate_consistent,
    healthy,
    moving_average,
    print_report,
    write_csv,
    write_plot,
)
from nextbest.simulate.runner import DecisionStats
from nextbest.simulate.scenario import Exploring
from nextbest.simulate.simulation import POLICIES, Result

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def result(rounds: int = 40, **stats: float) -> Result:
    counts = {"decisions": rounds, "rewards_sent": rounds} | stats
    return Result(
        scenario=NewsScenario(),
        seed=3,
        rounds=rounds,
        delay=0,
        exploring=Exploring("squarecb", 0.2),
        target=None,
        rewards={p: [float((i + k) % 2) for i in range(rounds)] for k, p in enumerate(POLICIES)},
        best_fixed_action="politics",
        stats=DecisionStats(**counts),  # type: ignore[arg-type]
        seconds=1.0,
    )


def test_moving_average_is_a_trailing_mean_that_starts_with_what_there_is() -> None:
    assert moving_average([1.0, 0.0, 1.0, 1.0, 0.0], 2) == [1.0, 0.5, 0.5, 1.0, 0.5]
    assert moving_average([2.0, 4.0], 10) == [2.0, 3.0]


def test_default_window_is_a_twentieth_of_the_run_within_bounds() -> None:
    assert default_window(5000) == 250
    assert default_window(400) == 50
    assert default_window(10) == 10


def test_csv_has_one_row_per_round_and_a_column_per_policy(tmp_path: Path) -> None:
    path = tmp_path / "curve.csv"
    write_csv(result(40), path, window=4)
    rows = list(csv.reader(path.open()))
    assert rows[0] == ["round", "nextbest", "random", "best_fixed", "rule", "oracle"]
    assert len(rows) == 41
    assert rows[1][0] == "1"
    assert rows[-1][0] == "40"
    assert all(0.0 <= float(x) <= 1.0 for row in rows[1:] for x in row[1:])


def test_plot_is_a_png(tmp_path: Path) -> None:
    path = tmp_path / "curve.png"
    write_plot(result(40), path, window=4)
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_the_report_shows_every_policy_and_every_check() -> None:
    console = Console(record=True, width=140)
    print_report(result(40), console)
    text = console.export_text()
    for label in ("nextbest", "random", "best fixed: politics", "rule baseline", "oracle"):
        assert label in text
    assert "masked-action violations" in text
    assert "max non-greedy mass" in text
    assert "FAILED" not in text


@pytest.mark.parametrize(
    "broken",
    [{"violations": 1}, {"over_cap": 1}, {"reward_mismatches": 2}, {"rewards_not_accepted": 1}],
)
def test_a_broken_invariant_makes_the_run_unhealthy_and_shows(broken: dict[str, int]) -> None:
    assert healthy(result())
    bad = result(**broken)
    assert not healthy(bad)
    console = Console(record=True, width=140)
    print_report(bad, console)
    assert "FAILED" in console.export_text()


def test_explore_rate_must_match_the_pmfs() -> None:
    # 1000 answers that each explore with probability 0.1: ~100 explored is consistent
    fine = result(1000, explored=104, non_greedy_sum=100.0)
    assert explore_rate_consistent(fine)
    assert not explore_rate_consistent(replace(fine, stats=replace(fine.stats, explored=200)))
