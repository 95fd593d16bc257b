"""`nextbest simulate` needs the `simulate` extra (matplotlib): the server's own dependencies
leave it out, and the command without it says so in one line."""

from __future__ import annotations

import sys
import tomllib

import pytest

from nextbest.cli import main
from nextbest.simulate.command import EXTRA_HINT, EXTRA_MODULES
from tests.conftest import ROOT


def _names(requirements: list[str]) -> set[str]:
    return {r.split(";")[0].split("==")[0].split("[")[0].strip() for r in requirements}


def test_matplotlib_is_the_simulate_extra_only() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "matplotlib" not in _names(project["dependencies"])
    assert "rich" in _names(project["dependencies"])  # nextbest evaluate reports with it
    assert set(EXTRA_MODULES) == _names(project["optional-dependencies"]["simulate"])
    assert "nextbest[simulate]" in project["optional-dependencies"]["dev"]


@pytest.mark.parametrize("missing", EXTRA_MODULES)
def test_without_the_extra_simulate_prints_one_line_and_exits_2(
    missing: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, missing, None)  # find_spec is None, an import fails
    assert main(["simulate", "--rounds", "10"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == EXTRA_HINT + "\n"
    assert EXTRA_HINT == (
        "nextbest simulate needs the simulate extra: pip install 'nextbest[simulate]'"
    )
