"""`nextbest simulate` against a real server: it learns, stays in its bounds, writes its files."""

from __future__ import annotations

import csv
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from nextbest.cli import main
from nextbest.policy.config import Config, parse_config
from nextbest.simulate.baselines import BEST_FIXED, RULE
from nextbest.simulate.news import NewsScenario
from nextbest.simulate.simulation import NEXTBEST, Options, Result, simulate
from nextbest.simulate.support import SupportScenario
from tests.integration.conftest import RunningServer

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CAP = 0.2
TOLERANCE = 1e-9


def assert_within_bounds(result: Result) -> None:
    s = result.stats
    assert s.decisions == result.rounds
    assert s.violations == 0
    assert s.over_cap == 0
    assert s.non_greedy_max <= CAP + TOLERANCE
    assert s.rewards_sent == result.rounds
    assert s.rewards_not_accepted == 0
    assert s.reward_mismatches == 0


def test_news_learns_the_vw_tutorial_within_the_cap() -> None:
    """The learning bar: ≥ 0.95 over the last 1,000 of 5,000 rounds, never over ε = 0.2."""
    result = simulate(NewsScenario(), Options(rounds=5000, seed=0))
    assert result.mean(NEXTBEST, last=1000) >= 0.95
    assert result.mean(NEXTBEST) > result.mean(RULE) + 0.3
    assert_within_bounds(result)
    assert result.stats.non_greedy_max > 0.1  # it did explore, up to the cap, while unsure
    assert result.stats.explore_rate < 0.05  # and SquareCB stopped once it knew


def test_support_beats_the_rule_baseline_and_the_best_fixed_action() -> None:
    result = simulate(SupportScenario(), Options(rounds=5000, seed=0))
    assert result.delay == 20  # rewards arrive 20 conversations after their decision
    for last in (None, 1000):
        ours = result.mean(NEXTBEST, last)
        assert ours > result.mean(RULE, last) + 0.02, last
        assert ours > result.mean(BEST_FIXED, last) + 0.1, last
    assert_within_bounds(result)
    assert result.stats.masked_by_rules > 500  # the mask was at work, and never breached


def test_a_run_is_reproduced_by_its_seed() -> None:
    first = simulate(SupportScenario(), Options(rounds=300, seed=11))
    again = simulate(SupportScenario(), Options(rounds=300, seed=11))
    other = simulate(SupportScenario(), Options(rounds=300, seed=12))
    assert first.rewards == again.rewards
    assert first.stats == again.stats
    assert first.rewards[NEXTBEST] != other.rewards[NEXTBEST]


def test_it_drives_a_running_service_given_as_target(
    start_server: Callable[[Config], RunningServer],
) -> None:
    scenario = NewsScenario()
    server = start_server(parse_config(scenario.config()))
    result = simulate(scenario, Options(rounds=200, seed=1, target=server.target))
    assert result.exploring is None  # the target's own policy decides
    assert result.stats.epsilon_max == pytest.approx(CAP)
    assert_within_bounds(result)
    # a second run against the same long-lived server uses fresh event ids
    again = simulate(scenario, Options(rounds=50, seed=1, target=server.target))
    assert again.stats.rewards_not_accepted == 0


def test_the_command_prints_the_table_and_writes_plot_and_csv(tmp_path: Path) -> None:
    plot, curve = tmp_path / "curve.png", tmp_path / "curve.csv"
    flags = ["--scenario", "news", "--rounds", "300", "--seed", "2", "--delay", "3"]
    flags += ["--no-progress", "--plot", str(plot), "--csv", str(curve), "--window", "30"]
    done = subprocess.run(
        [sys.executable, "-m", "nextbest", "simulate", *flags],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for text in ("nextbest", "oracle", "rule baseline", "best fixed", "masked-action violations"):
        assert text in done.stdout
    assert plot.read_bytes()[:8] == PNG_MAGIC
    rows = list(csv.reader(curve.open()))
    assert rows[0] == ["round", "nextbest", "random", "best_fixed", "rule", "oracle"]
    assert len(rows) == 301


def test_print_config_is_a_policy_file_the_server_accepts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["simulate", "--scenario", "support", "--print-config", "--epsilon", "0.1"]) == 0
    config = parse_config(yaml.safe_load(capsys.readouterr().out))
    exploration = config.policies[SupportScenario.policy].exploration
    assert exploration.epsilon == exploration.max_epsilon == 0.1


def test_exploration_flags_do_not_pretend_to_configure_a_target(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["simulate", "--target", "127.0.0.1:1", "--epsilon", "0.1"])
    assert code == 2
    assert "--print-config" in capsys.readouterr().err
