"""The Dockerfile, without a Docker engine: hadolint, then what the image does. The build
stage's COPY lines lay out a source tree, its RUN (scripts/build-wheels.sh) builds the wheels,
the final stage's RUN installs them into a fresh virtualenv with --no-index, and the image's
ENV, ENTRYPOINT and CMD run there until its HEALTHCHECK says SERVING."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.deploy.conftest import ROOT, free_port, venv_tool

DOCKERFILE = ROOT / "Dockerfile"
SCRIPT = "build-wheels.sh"


@dataclass
class Stage:
    base: str
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    copies: list[tuple[str, str]] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    mounts: dict[str, tuple[str, str]] = field(default_factory=dict)  # target → (stage, source)
    instructions: dict[str, str] = field(default_factory=dict)  # the last of each other kind


def parse(text: str) -> list[Stage]:
    """The instructions this Dockerfile uses (continuations joined, comments dropped)."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        if raw.lstrip().startswith("#") or not raw.strip():
            continue
        pending += raw.rstrip("\\").strip() + " " if raw.endswith("\\") else raw.strip()
        if not raw.endswith("\\"):
            lines.append(pending)
            pending = ""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in lines:
        op, _, rest = line.partition(" ")
        op = op.upper()
        if op == "ARG":
            name, _, default = rest.partition("=")
            args[name] = default
        elif op == "FROM":
            base = rest.split(" AS ")[0]
            for name, value in args.items():
                base = base.replace(f"${{{name}}}", value)
            stages.append(Stage(base))
        elif op == "ENV":
            for pair in shlex.split(rest):
                name, _, value = pair.partition("=")
                stages[-1].env[name] = value
        elif op == "WORKDIR":
            stages[-1].workdir = rest
        elif op == "COPY":
            *sources, dest = shlex.split(rest)
            assert not any(s.startswith("--") for s in sources), "COPY --from: mount it instead"
            stages[-1].copies += [(s, dest) for s in sources]
        elif op == "RUN":
            words = rest.split(" ")
            while words[0].startswith("--mount="):
                spec = dict(p.split("=", 1) for p in words.pop(0)[len("--mount=") :].split(","))
                stages[-1].mounts[spec["target"]] = (spec["from"], spec["source"])
            stages[-1].runs.append(" ".join(words))
        else:
            stages[-1].instructions[op] = rest
    return stages


class Root:
    """A stage's file system, under a directory."""

    def __init__(self, path: Path, workdir: str) -> None:
        self.path = path
        self.workdir = workdir

    def __call__(self, inside: str) -> Path:
        absolute = inside if inside.startswith("/") else f"{self.workdir}/{inside}"
        return self.path / absolute.lstrip("/")

    def copy(self, source: str, dest: str) -> None:
        src = ROOT / source
        target = self(dest)
        if dest.endswith("/") or (src.is_file() and target.is_dir()):
            target = target / src.name if src.is_file() else target
        if src.is_dir():
            shutil.copytree(
                src,
                target,
                dirs_exist_ok=True,
                ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "node_modules"),
            )
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)


def run_script(command: str, root: Root, mounts: dict[str, Path]) -> None:
    """A RUN line of this Dockerfile: `bash <path to build-wheels.sh> <mode> <paths…>`,
    absolute paths mapped into the stage's directory (or its mounts)."""
    words = shlex.split(command)
    assert words[0] == "bash", f"RUN {command}: only bash {SCRIPT}"
    assert words[1].endswith(SCRIPT), f"RUN {command}: only bash {SCRIPT}"

    def mapped(word: str) -> str:
        for target, source in mounts.items():
            if word == target or word.startswith(target + "/"):
                return str(source) + word[len(target) :]
        return str(root(word)) if word.startswith("/") or "/" in word else word

    env = {**os.environ, "PYTHON": sys.executable}
    cwd = root(root.workdir)
    cwd.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["bash", *[mapped(w) for w in words[1:]]],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"RUN {command}\n{done.stdout}\n{done.stderr}"


def test_hadolint_is_clean() -> None:
    done = subprocess.run(
        [venv_tool("hadolint"), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_image_is_slim_pinned_and_not_root() -> None:
    build, final = parse(DOCKERFILE.read_text())
    assert build.base == final.base
    name, _, tag = final.base.partition(":")
    assert name == "python"
    assert tag.split("-")[0].count(".") == 2  # pinned to a patch release
    assert "slim" in tag
    assert final.instructions["USER"].split(":")[0] not in ("", "0", "root")
    assert final.instructions["EXPOSE"].split() == ["50051", "9464"]
    assert json.loads(final.instructions["ENTRYPOINT"]) == ["nextbest"]
    assert json.loads(final.instructions["CMD"])[0] == "serve"
    assert json.loads(final.instructions["VOLUME"]) == [final.env["NEXTBEST_DATA_DIR"]]
    # No build tool reaches the final stage: it installs only from the build stage's wheels.
    assert [r.split()[:3] for r in final.runs] == [
        ["bash", f"/build/{SCRIPT}", "install"],
        ["useradd", "--system", "--user-group"],
    ]
    assert not any(word in " ".join(final.runs) for word in ("apt-get", "gcc", "pip install"))
    assert all(stage == "build" for stage, _ in final.mounts.values())


def test_the_image_serves_from_its_wheels(tmp_path: Path) -> None:
    build, final = parse(DOCKERFILE.read_text())
    # Build stage: the source tree its COPY lines make, then its RUN.
    build_root = Root(tmp_path / "build", build.workdir)
    for source, dest in build.copies:
        build_root.copy(source, dest)
    (build_command,) = build.runs
    run_script(build_command, build_root, {})
    # Final stage: its RUN lines with the build stage mounted, its COPY lines.
    root = Root(tmp_path / "image", final.workdir)
    mounts = {target: build_root(source) for target, (_, source) in final.mounts.items()}
    run_script(final.runs[0], root, mounts)
    for source, dest in final.copies:
        root.copy(source, dest)
    # The container's environment: ENV with paths inside the image mapped; the ports stay
    # as the image has them but free ones (tests run in parallel).
    grpc_port, metrics_port = free_port(), free_port()
    env = {**os.environ}
    for name, value in final.env.items():
        if name == "PATH":
            value = ":".join(
                str(root(p)) if p.startswith("/") else os.environ["PATH"] for p in value.split(":")
            ).replace("$PATH", os.environ["PATH"])
        elif value.startswith("/"):
            value = str(root(value))
        env[name] = value
    assert env["NEXTBEST_ADDRESS"] == "0.0.0.0:50051"
    env["NEXTBEST_ADDRESS"] = f"0.0.0.0:{grpc_port}"
    env["NEXTBEST_METRICS_ADDRESS"] = f"0.0.0.0:{metrics_port}"
    root(final.env["NEXTBEST_DATA_DIR"]).mkdir(parents=True, exist_ok=True)
    command = json.loads(final.instructions["ENTRYPOINT"]) + json.loads(final.instructions["CMD"])
    healthcheck = json.loads(final.instructions["HEALTHCHECK"].split(" CMD ", 1)[1])
    executable = shutil.which(command[0], path=env["PATH"])
    assert executable is not None
    assert executable.startswith(str(tmp_path / "image"))

    def health() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [shutil.which(healthcheck[0], path=env["PATH"]) or "", *healthcheck[1:]],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )

    assert health().returncode == 2  # nothing listening yet: unreachable
    # On 0.0.0.0 and without credentials configured, the image refuses to start ...
    refused = subprocess.run(
        [executable, *command[1:]], env=env, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 2
    assert "--auth-file" in refused.stdout
    # ... so run it as `docker run -e NEXTBEST_AUTH_FILE=… -v auth.yaml:…` would.
    made = subprocess.run(
        [executable, "token", "new", "--name", "agents", "--scopes", "decide,reward"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    auth_file = root("/etc/nextbest/auth/tokens.yaml")
    auth_file.parent.mkdir(parents=True)
    entry = made.stdout.split("`tokens:`, then send the server SIGHUP\n")[1]
    auth_file.write_text("tokens:\n" + "".join(f"  {line}\n" for line in entry.splitlines()))
    env["NEXTBEST_AUTH_FILE"] = str(auth_file)
    server = subprocess.Popen(
        [executable, *command[1:]],
        env=env,
        cwd=root(final.workdir),
        stdout=(tmp_path / "server.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while (checked := health()).returncode != 0:
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            assert time.monotonic() < deadline, checked.stderr
            time.sleep(0.2)
        assert checked.stdout.strip() == f"127.0.0.1:{grpc_port}: SERVING"
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics") as reply:
            assert b"nextbest_model_version" in reply.read()
        assert (root(final.env["NEXTBEST_DATA_DIR"]) / "journal").is_dir()
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
