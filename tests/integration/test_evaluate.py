"""`nextbest evaluate` on the decision log a real server wrote while `simulate` drove it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from nextbest.cli import main
from nextbest.policy.config import Config, parse_config
from nextbest.simulate.news import VW_ARGS, NewsScenario
from nextbest.simulate.simulation import NEXTBEST, Options, simulate
from tests.integration.conftest import RunningServer

ROUNDS = 300


def test_the_command_reads_a_servers_data_dir(
    start_server: Callable[[Config], RunningServer],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    scenario = NewsScenario()
    server = start_server(parse_config(scenario.config()))
    result = simulate(scenario, Options(rounds=ROUNDS, seed=5, target=server.target))
    data_dir = tmp_path / "data0"  # where start_server put this server's data
    assert (data_dir / "policies" / scenario.policy / "decisions").is_dir()
    out, plot = tmp_path / "estimates.json", tmp_path / "estimates.png"
    candidate = f"vw:{VW_ARGS}"
    reward_spec = tmp_path / "reward.yaml"
    reward_spec.write_text("default: 0.0\nclip: [0, 1]\n")
    flags = ["--policy", "logged", "--policy", "uniform", "--policy", "constant:politics"]
    flags += ["--policy", candidate, "--features", "3", "--policy-name", scenario.policy]
    flags += ["--reward-spec", str(reward_spec), "--json", str(out), "--plot", str(plot)]
    code = main(["evaluate", str(data_dir), *flags])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    data = orjson.loads(out.read_bytes())
    assert data["events"] == ROUNDS
    assert data["skipped"] == 0
    by = {p["policy"]: p["estimates"] for p in data["policies"]}
    # the logged policy's value is what the simulator saw nextbest earn
    assert by["logged"]["ips"]["value"] == pytest.approx(result.mean(NEXTBEST), abs=1e-9)
    # news pays 1 for the liked article only: the learner beats random
    assert by[candidate]["dr"]["value"] > by["uniform"]["dr"]["value"]
    # the news policy's rewards are values without signals: counted, kept as logged
    assert f"{ROUNDS:,} without raw signals kept their logged reward" in printed.out
    assert "top 3 weights" in printed.out
    assert "a^id=" in printed.out  # VW's own names: the article crossed with the context
    assert plot.stat().st_size > 0
