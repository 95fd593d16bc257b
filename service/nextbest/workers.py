"""`nextbest serve --workers N`: N serving processes on one host, one gRPC port, one /metrics.

The parent serves no gRPC. It starts N children (`nextbest serve` with the same arguments,
`--workers 1`, and NEXTBEST_WORKER=<index>), which share the gRPC port (SO_REUSEPORT: the
kernel spreads connections over them) and Redis (Redis mode is required: embedded mode has
one data dir, owned by one process). Worker 0 keeps `--role` (`all`: it also learns and
publishes models); the others only serve (`--role server`).

/metrics: the parent points prometheus-client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR,
a fresh temporary directory) at the children and serves their merged values on
`--metrics-address`; the children serve none.

Signals: SIGTERM and SIGINT stop every child gracefully (each as a lone `serve` stops),
SIGHUP reloads in every child. A child holds them blocked until it is ready for them (see
`unblock_signals`), so none is lost or kills a child still starting. Nothing is restarted:
when a child exits on its own, the parent stops the others and exits non-zero, for a
supervisor to restart the whole set. The exit code is the worst child's.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import MutableMapping, Sequence
from types import FrameType
from typing import Any

import structlog

from nextbest.observability.logging import get_logger
from nextbest.settings import ServerSettings, env_var, split_address

WORKER_ENV = env_var("worker")  # a child's index, set by its parent (ServerSettings.worker)
PARENT_ENV = "NEXTBEST_WORKER_PARENT"  # the parent's pid: a child stops when it dies
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
STOPS = (signal.SIGTERM, signal.SIGINT)
FORWARDED = (*STOPS, signal.SIGHUP)
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class Workers:
    """The parent: `run()` starts the children, relays signals, and returns the exit code."""

    def __init__(self, settings: ServerSettings, argv: Sequence[str]) -> None:
        self.settings = settings
        self.argv = list(argv)
        self.log = get_logger("nextbest")
        self.children: dict[int, tuple[int, subprocess.Popen[bytes]]] = {}  # pid → (index, …)
        self.codes: dict[int, int] = {}  # index → exit code
        self.stop_signal: int | None = None  # the signal that asked the set to stop
        self.failed = False  # a child exited on its own (or one could not be started)
        self.unstarted = False  # a child could not be started: exit 2, as `cannot_start` does
        self.metrics_dir = ""  # PROMETHEUS_MULTIPROC_DIR of the children

    def command(self, index: int) -> list[str]:
        """The child's command line: the parent's, then what the child must run as (argparse
        keeps the last value of a flag)."""
        extra = ["--workers", "1"]
        if index > 0 and self.settings.role == "all":
            extra += ["--role", "server"]  # one learner (worker 0); the others serve
        return [sys.executable, "-m", "nextbest", *self.argv, *extra]

    def run(self) -> int:
        from prometheus_client import CollectorRegistry, multiprocess

        from nextbest.observability.http import serve_metrics

        self.metrics_dir = tempfile.mkdtemp(prefix="nextbest-metrics-")
        try:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=self.metrics_dir)  # type: ignore[no-untyped-call]
            host, port = split_address(self.settings.metrics_address)
            try:
                http = serve_metrics(registry, host, port)
            except OSError as exc:
                reason = exc.strerror or str(exc)
                self.log.error(
                    "cannot_start",
                    reason=f"cannot serve /metrics on {self.settings.metrics_address} ({reason})",
                )
                return 2
            try:
                return self._supervise(f"{host}:{http.server_port}")
            finally:
                http.shutdown()
        finally:
            shutil.rmtree(self.metrics_dir, ignore_errors=True)

    def _supervise(self, metrics_address: str) -> int:
        previous = {sig: signal.signal(sig, self._signalled) for sig in FORWARDED}
        try:
            try:
                self._start()
            except OSError as exc:
                self.log.error("cannot_start", reason=f"cannot start a worker: {exc}")
                self.failed = self.unstarted = True
                self._forward(signal.SIGTERM)
            else:
                self.log.info(
                    "workers_started",
                    workers=self.settings.workers,
                    pids=[proc.pid for _, proc in sorted(self.children.values())],
                    grpc_address=self.settings.address,
                    metrics_address=metrics_address,
                )
                if self.stop_signal is not None:  # it came while the children were started
                    self._forward(self.stop_signal)
            self._reap()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return self._exit_code()

    def _start(self) -> None:
        env = {
            **os.environ,
            MULTIPROC_ENV: self.metrics_dir,
            PARENT_ENV: str(os.getpid()),
            env_var("workers"): "1",
        }
        env.pop("prometheus_multiproc_dir", None)  # prometheus-client's old name
        for index in range(self.settings.workers):
            # Blocked while the child starts (the mask survives exec): a signal then waits
            # until the child can handle it, instead of killing it half-started.
            blocked = signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
            try:
                proc = subprocess.Popen(self.command(index), env={**env, WORKER_ENV: str(index)})
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            self.children[proc.pid] = (index, proc)

    def _signalled(self, signum: int, frame: FrameType | None) -> None:
        """Record and relay, nothing more: a log line written here could cut into one being
        written (each child logs its own `stopping`)."""
        if signum in STOPS and self.stop_signal is None:
            self.stop_signal = signum
        self._forward(signum)

    def _forward(self, signum: int) -> None:
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def _reap(self) -> None:
        """Wait for every child; when one exits while no stop was asked, stop the others."""
        from prometheus_client import multiprocess

        while self.children:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            found = self.children.pop(pid, None)
            if found is None:
                continue
            index, proc = found
            code = os.waitstatus_to_exitcode(status)
            proc.returncode = code  # reaped here: Popen must not wait for it again
            self.codes[index] = code
            with contextlib.suppress(OSError):  # its live gauges go with it
                multiprocess.mark_process_dead(pid, self.metrics_dir)  # type: ignore[no-untyped-call]
            if self.stop_signal is None and not self.failed:
                self.failed = True
                self.log.error(
                    "worker_exited",
                    worker=index,
                    pid=pid,
                    code=code,
                    reason="a worker exited on its own: stopping the others",
                )
                self._forward(signal.SIGTERM)
            else:
                self.log.info("worker_stopped", worker=index, pid=pid, code=code)

    def _exit_code(self) -> int:
        codes = [_shell_code(code, self.stop_signal) for code in self.codes.values()]
        worst = max(codes, default=0)
        if self.failed:
            worst = max(worst, 2 if self.unstarted else 1)
        self.log.info(
            "stopped",
            signal=signal.Signals(self.stop_signal).name if self.stop_signal else None,
            codes=[self.codes[i] for i in sorted(self.codes)],
            exit=worst,
        )
        return worst


def _shell_code(code: int, stop_signal: int | None) -> int:
    """A child's exit code as a shell shows it (killed by signal N: 128 + N). A child killed
    by the very signal that stopped the set stopped as asked."""
    if code >= 0:
        return code
    if stop_signal is not None and -code in STOPS:
        return 0
    return 128 - code


def run(settings: ServerSettings, argv: Sequence[str]) -> int:
    """Run the workers parent for `nextbest serve ARGV` with `settings.workers` > 1."""
    return Workers(settings, argv).run()


def become_worker(worker: int) -> bool:
    """In a child, before it serves: tag every log line with the worker's index and pid
    (the children share the parent's stdout), and stop (SIGTERM) when the parent dies,
    even by SIGKILL. False if the parent is already gone."""
    pid = os.getpid()

    def tag(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        event["worker"] = worker
        event["pid"] = pid
        return event

    processors = list(structlog.get_config()["processors"])
    structlog.configure(processors=[tag, *processors])
    parent = os.environ.get(PARENT_ENV)
    if parent is not None and sys.platform == "linux":
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if str(os.getppid()) != parent:  # it died before prctl
            return False
    return True


def unblock_signals(*signals: int) -> None:
    """In a child: take the signals its parent held blocked while it started (see `_start`);
    any that came meanwhile are handled now."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)
