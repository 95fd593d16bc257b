"""The examples a user copies run as they are against a real server (the framework examples
that need their own venv run in test_crewai.py and test_autogen.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.clients.support import EXAMPLES, run_script
from tests.integration.conftest import RunningServer


@pytest.mark.parametrize("example", ["python_client", "langgraph_router", "langchain_tools"])
def test_example_runs_and_closes_the_loop(
    server: RunningServer, tmp_path: Path, example: str
) -> None:
    out = run_script(sys.executable, EXAMPLES / f"{example}.py", server.target, tmp_path)
    if example == "langchain_tools":
        assert '"status": "accepted"' in out
        assert "error NOT_FOUND" in out
    else:
        assert "join: learned" in out
