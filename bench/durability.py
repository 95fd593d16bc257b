"""Section 3, durability: the disk's own fsync latency, and what `fsync: always` costs.

The disk: append 200 B and fsync, up to 300 times before and 300 after the RPC phases
(other users of the disk come and go), pooled. The servers: Decide c=16 and Reward c=16
(`sum`) on nextbest-always, each against the same phase on nextbest (`fsync: interval`);
those phases are decide's and rewards' steps, run in the same rounds.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from lib.load import percentile
from lib.suite import Section, Step, Suite
from lib.tables import DURABILITY, Figure


def section() -> Section:
    """A disk probe before the rounds and one after; the figures from both and the phases."""
    disk = _Disk()
    return Section(steps=disk.before, after=disk.after, figures=_figures)


def fsync_latencies(directory: Path, budget: float = 1.0, limit: int = 300) -> list[float]:
    """Append a 200 B line and fsync it, repeatedly, in `directory`: what one group commit
    costs on this disk at best (seconds each; at most `limit` or `budget` seconds)."""
    path = directory / "fsync-probe"
    out: list[float] = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        end = time.perf_counter() + budget
        while len(out) < limit and time.perf_counter() < end:
            os.write(fd, b"x" * 199 + b"\n")
            t0 = time.perf_counter()
            os.fsync(fd)
            out.append(time.perf_counter() - t0)
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)
    return out


class _Disk:
    """The fsync samples of both probes, pooled into `Suite.data["fsync"]` after the second."""

    def __init__(self) -> None:
        self.fsyncs: list[float] = []

    async def before(self, suite: Suite) -> list[Step]:
        with suite.section("disk fsync latency"):
            self.fsyncs += fsync_latencies(suite.pool.root)
        return []  # its phases are decide's and rewards'

    async def after(self, suite: Suite) -> None:
        with suite.section("disk fsync latency"):
            self.fsyncs += fsync_latencies(suite.pool.root)
            fsyncs = sorted(self.fsyncs)
            suite.data["fsync"] = {
                "count": len(fsyncs),
                "p50_ms": percentile(fsyncs, 0.5) * 1e3,
                "p99_ms": percentile(fsyncs, 0.99) * 1e3,
            }


def _figures(suite: Suite) -> list[Figure]:
    out = []
    fsync = suite.data.get("fsync")
    if fsync is not None:
        out += [
            Figure(DURABILITY, "disk: append 200 B + fsync, p50", fsync["p50_ms"], "ms"),
            Figure(DURABILITY, "disk: append 200 B + fsync, p99", fsync["p99_ms"], "ms"),
        ]
    if "summary" not in suite.data:
        return out
    c = suite.args.reward_concurrency
    return [
        *out,
        Figure(
            DURABILITY,
            "Decide throughput c=16, fsync=always",
            suite.median("nextbest-always/Decide/c16", "calls_per_s"),
            "calls/s",
            suite.median("nextbest/Decide/c16", "calls_per_s"),
            "interval",
            note="a commit fsyncs the files written since the last sync: usually the journal",
        ),
        Figure(
            DURABILITY,
            f"Reward ingest c={c} (sum), fsync=always",
            suite.median(f"nextbest-always/Reward-sum/c{c}", "calls_per_s"),
            "calls/s",
            suite.median(f"nextbest/Reward-sum/c{c}", "calls_per_s"),
            "interval",
            note=suite.ran_out(f"nextbest-always/Reward-sum/c{c}"),
        ),
    ]


# Run alone, with run.py's flags: this section and the decide and rewards phases it reads.
if __name__ == "__main__":
    import run

    sys.exit(run.main(only=("decide", "rewards", "durability")))
