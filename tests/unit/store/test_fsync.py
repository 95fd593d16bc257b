"""An fsync that fails is never taken for a success, and a sync never touches a stale fd."""

from __future__ import annotations

import asyncio
import errno
import os
from pathlib import Path

import pytest

from nextbest.policy.errors import Unavailable
from nextbest.policy.ports import run_now
from nextbest.policy.requests import DecideInput
from nextbest.store import durable, files
from nextbest.store.durable import Durability
from tests.unit.store.test_durable import Clock, config, start


def failing_fsync(fd: int) -> None:
    raise OSError(errno.EIO, "Input/output error")


def test_a_failed_fsync_fails_the_commit_and_every_later_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    engine, store, _ = start(tmp_path, config(), clock, Durability(fsync="always"))
    run_now(engine.decide(DecideInput("p", "x", event_id="before")))
    asyncio.run(store.commit())
    run_now(engine.decide(DecideInput("p", "x", event_id="lost")))
    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(Unavailable, match="Input/output error"):
        asyncio.run(store.commit())
    monkeypatch.undo()  # the disk seems fine again: the pages that failed may still be lost
    with pytest.raises(Unavailable, match="Input/output error"):
        run_now(engine.decide(DecideInput("p", "x", event_id="after")))
    with pytest.raises(Unavailable):
        asyncio.run(store.commit())
    assert store.failure is not None


def test_an_interval_sync_failure_stops_acknowledging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    durability = Durability(fsync="interval", fsync_interval=0.001)
    engine, store, _ = start(tmp_path, config(), clock, durability)
    run_now(engine.decide(DecideInput("p", "x", event_id="written")))
    monkeypatch.setattr(os, "fsync", failing_fsync)
    asyncio.run(asyncio.wait_for(store.sync_periodically(), timeout=10))  # ends on the failure
    assert store.failure is not None
    with pytest.raises(Unavailable):
        run_now(engine.decide(DecideInput("p", "x", event_id="after")))


def test_the_sync_of_a_rotated_file_syncs_that_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sync takes its files, then rotation closes one and its fd number is reused by
    another file: the sync must still reach the file it took, not the newcomer."""
    clock = Clock()
    engine, store, _ = start(tmp_path, config(), clock, Durability(fsync="always"))
    run_now(engine.decide(DecideInput("p", "x", event_id="a")))
    synced: list[int] = []
    real_fsync = os.fsync

    def record(fd: int) -> None:
        synced.append(os.fstat(fd).st_ino)
        real_fsync(fd)

    journal_inode = os.fstat(store.journal.fileno()).st_ino
    taken = store._take_dirty()  # a sync is about to start with these
    store.journal.rotate()  # meanwhile: the old segment is closed ...
    other = os.open(tmp_path / "other", os.O_WRONLY | os.O_CREAT)  # ... its number reused
    try:
        monkeypatch.setattr(os, "fsync", record)
        durable._fsync_all(taken)
    finally:
        os.close(other)
    assert synced == [journal_inode]


def test_a_rotation_that_cannot_open_the_next_segment_keeps_the_log_usable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = files.SegmentedLog(tmp_path / "log", ".jsonl", segment_bytes=10)
    log.append([b"first line"])
    real_open = os.open

    def no_more_files(path: object, *args: object, **kw: object) -> int:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(os, "open", no_more_files)
    with pytest.raises(OSError, match="Too many open files"):
        log.append([b"second"])
    monkeypatch.setattr(os, "open", real_open)
    log.append([b"third"])  # the log still writes where it wrote before
    log.close()
    lines = b"".join(p.read_bytes() for p in sorted((tmp_path / "log").glob("*.jsonl")))
    assert lines == b"first line\nthird\n"


def test_syncs_leave_no_descriptor_open(tmp_path: Path) -> None:
    clock = Clock()
    engine, store, _ = start(tmp_path, config(), clock, Durability(fsync="always"))
    run_now(engine.decide(DecideInput("p", "x", event_id="warm")))
    asyncio.run(store.commit())
    store.checkpoint(engine.models())
    before = len(os.listdir("/proc/self/fd"))
    for i in range(20):
        run_now(engine.decide(DecideInput("p", "x", event_id=f"e{i}")))
        if i % 2:
            asyncio.run(store.commit())
        else:
            store.checkpoint(engine.models())
    assert len(os.listdir("/proc/self/fd")) == before
