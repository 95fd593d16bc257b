"""Shared by the deploy/ tests: paths, the tools they run, free ports."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent  # the venv's console scripts (hadolint, check-jsonschema, …)


def venv_tool(name: str) -> str:
    path = BIN / name
    found = str(path) if path.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing: pip install -e '.[dev]' (scripts/test.sh does)")
    return found


def prometheus_tool(name: str) -> str:
    """promtool or prometheus (Debian's `prometheus` package; scripts/test.sh installs it
    when it can). Skipped when missing, except in CI, where it must run."""
    found = shutil.which(name)
    if found is None:
        reason = (
            f"{name} is missing: install Debian's prometheus package "
            "(scripts/test.sh does as root or with sudo)"
        )
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
