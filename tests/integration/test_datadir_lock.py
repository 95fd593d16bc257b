"""One owner per data dir: a second server or a model command is refused while it runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.integration.test_durability import POLICY, serve, write_config


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nextbest", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_a_second_owner_of_the_data_dir_is_refused(tmp_path: Path) -> None:
    config, data = write_config(tmp_path), tmp_path / "data"
    first, _ = serve(config, data)
    pid = first.proc.pid
    second = run(
        "serve", "--config", str(config), "--data-dir", str(data),
        "--address", "127.0.0.1:0", "--metrics-address", "127.0.0.1:0",
    )  # fmt: skip
    assert second.returncode != 0
    assert f"data dir {data} is in use by pid {pid}" in second.stdout + second.stderr
    model = run(
        "model", "export", POLICY, str(tmp_path / "model.vw"),
        "--config", str(config), "--data-dir", str(data),
    )  # fmt: skip
    assert model.returncode == 1
    assert f"data dir {data} is in use by pid {pid}" in model.stderr
    assert first.stop() == 0

    exported = run(
        "model", "export", POLICY, str(tmp_path / "model.vw"),
        "--config", str(config), "--data-dir", str(data),
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    third, _ = serve(config, data)  # the lock went with the process that held it
    imported = run(
        "model", "import", POLICY, str(tmp_path / "model.vw"),
        "--config", str(config), "--data-dir", str(data),
    )  # fmt: skip
    assert imported.returncode == 1
    assert f"is in use by pid {third.proc.pid}" in imported.stderr
    assert third.stop() == 0


def test_a_data_dir_that_is_a_file_is_named_so(tmp_path: Path) -> None:
    config, data = write_config(tmp_path), tmp_path / "data"
    data.write_text("not a directory")
    started = run(
        "serve", "--config", str(config), "--data-dir", str(data),
        "--address", "127.0.0.1:0", "--metrics-address", "127.0.0.1:0",
    )  # fmt: skip
    assert started.returncode != 0
    output = started.stdout + started.stderr
    assert f"data dir {data} is not a directory" in output
    assert "File exists" not in output
