"""Helpers shared by the client tests: contexts, and what the server's /metrics counts."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from nextbest_client import ContextValue
from tests.integration.conftest import RunningServer

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
DRIVERS = Path(__file__).resolve().parent / "drivers"
POLICY = "support.next_step"
# offer_refund is masked for a new account (refund_limits); every action is open for an old one.
NEW_ACCOUNT: dict[str, ContextValue] = {"account_age_days": 3, "amount": 50, "plan": "gold"}
OLD_ACCOUNT: dict[str, ContextValue] = {"account_age_days": 400, "amount": 50, "plan": "gold"}


def decisions_total(server: RunningServer, policy: str = POLICY) -> float:
    """Events the server created for a policy: a retried Decide must not add one."""
    with urllib.request.urlopen(server.metrics_url, timeout=5) as response:
        text = response.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "nextbest_decisions"
        for sample in family.samples
        if sample.name == "nextbest_decisions_total" and sample.labels["policy"] == policy
    )


def adapter_python(framework: str) -> Path:
    """The python of a framework's own venv, built by scripts/test-adapters.sh (which sets
    NEXTBEST_ADAPTER_VENVS); a plain pytest run skips the tests that need one."""
    venvs = os.environ.get("NEXTBEST_ADAPTER_VENVS")
    if not venvs:
        pytest.skip(f"{framework} runs in its own venv: bash scripts/test-adapters.sh")
    python = Path(venvs) / framework / "bin" / "python"
    assert python.exists(), f"{python} missing: scripts/test-adapters.sh builds it"
    return python


def run_script(python: Path | str, script: Path, target: str, home: Path, *args: str) -> str:
    """Run ``script`` with NEXTBEST_TARGET=target; return its stdout. ``home`` keeps what a
    framework writes to $HOME (CrewAI does) inside the test's tmp dir."""
    env = {
        **os.environ,
        "NEXTBEST_TARGET": target,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "CREWAI_DISABLE_TELEMETRY": "true",
        "CREWAI_TRACING_ENABLED": "false",
        "OTEL_SDK_DISABLED": "true",
    }
    done = subprocess.run(
        [str(python), str(script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=home,
        check=False,
    )
    assert done.returncode == 0, f"{script.name} failed:\n{done.stderr}"
    return done.stdout


def run_driver(framework: str, target: str, home: Path) -> dict[str, Any]:
    """drivers/<framework>_loop.py, in the framework's venv; its JSON report."""
    script = DRIVERS / f"{framework}_loop.py"
    out = run_script(adapter_python(framework), script, target, home, target, POLICY)
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result
