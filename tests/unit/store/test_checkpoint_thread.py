"""Checkpoints off the event loop: the models' bytes are taken on it, a thread writes the
files; what it writes recovers like a checkpoint written in place, one runs at a time, and
a failed one leaves nothing behind and backs off."""

from __future__ import annotations

import asyncio
import errno
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from nextbest.api.server import Server
from nextbest.policy.model import Model
from nextbest.policy.ports import run_now
from nextbest.policy.requests import DecideInput
from nextbest.policy.vw_args import DEFAULT_VW_ARGS
from nextbest.settings import ServerSettings
from nextbest.store import checkpoints
from nextbest.store.durable import DurableStore
from nextbest.store.files import write_atomic
from nextbest.store.ids import IdFile, digest
from tests.conftest import EXAMPLE
from tests.unit.policy.test_model import train
from tests.unit.store.test_checkpoints import learn, policies
from tests.unit.store.test_durable import PROBES, Clock, config, start, workload

WAIT = 30.0  # seconds before a test gives up on a condition


class Gate:
    """Stands in for the checkpoint's file writer: each write waits until `opened`, and
    the writes in progress are counted."""

    def __init__(self) -> None:
        self.real: Callable[[Path, bytes], None] = write_atomic
        self.entered = threading.Event()
        self.opened = threading.Event()
        self.lock = threading.Lock()
        self.active = 0
        self.most = 0  # the most writes in progress at once
        self.paths: list[str] = []

    def __call__(self, path: Path, data: bytes) -> None:
        with self.lock:
            self.active += 1
            self.most = max(self.most, self.active)
            self.paths.append(path.name)
        self.entered.set()
        try:
            assert self.opened.wait(WAIT)
            self.real(path, data)
        finally:
            with self.lock:
                self.active -= 1


def model_files(data: Path, policy: str) -> list[Path]:
    return sorted((data / "policies" / policy / "models").iterdir())


def close_all(engine: Any, clock: Clock) -> None:
    clock.now += 3600
    run_now(engine.settle_due(limit=100_000))


def test_a_checkpoint_written_by_a_thread_recovers_as_it_was_taken(tmp_path: Path) -> None:
    cfg = config()
    clock = Clock()
    engine, store, _ = start(tmp_path / "data", cfg, clock)
    workload(engine, clock, 300)
    close_all(engine, clock)
    model = engine.policies["p"].model
    model.save(tmp_path / "reference.vw")  # what VW writes at the moment the bytes are taken
    taken = model.learned
    job = store.begin_checkpoint(engine.models())
    writer = threading.Thread(target=store.write_checkpoint, args=(job,))
    writer.start()
    workload(engine, clock, 200, start_at=300)  # the loop learns on while the thread writes
    close_all(engine, clock)
    writer.join(WAIT)
    assert store.end_checkpoint(job) == {"p": taken}
    assert store.unsaved(engine.models()) == model.learned - taken > 0
    [written] = [p for p in model_files(tmp_path / "data", "p") if p.suffix == ".vw"]
    assert written.read_bytes() == (tmp_path / "reference.vw").read_bytes()
    probes = [run_now(engine.decide(probe)).vw_lines() for probe in PROBES]
    expected = [model.costs(lines) for lines in probes]

    again, _, recovery = start(tmp_path / "data", cfg, clock)  # after a crash
    assert recovery.checkpoints["p"] == written.name
    assert recovery.replayed == {"p": model.learned - taken}  # what came after the bytes
    restarted = again.policies["p"].model
    assert restarted.learned == model.learned
    for lines, costs in zip(probes, expected, strict=True):
        assert restarted.costs(lines) == pytest.approx(costs, abs=1e-5)
    snapshot = Model(cfg.policies["p"].vw_args, initial=written, learned=taken)
    reference = Model(cfg.policies["p"].vw_args, initial=tmp_path / "reference.vw")
    assert [snapshot.costs(lines) for lines in probes] == [reference.costs(x) for x in probes]


@pytest.mark.parametrize("links", [True, False])
def test_a_snapshot_is_what_save_writes_and_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, links: bool
) -> None:
    model = Model(DEFAULT_VW_ARGS)
    train(model)
    model.save(tmp_path / "saved.vw")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    if not links:  # a file system without symlinks: VW writes the file in scratch

        def refused(*args: Any) -> None:
            raise OSError(errno.EPERM, "Operation not permitted")

        monkeypatch.setattr(os, "symlink", refused)
    assert model.snapshot(scratch) == (tmp_path / "saved.vw").read_bytes()
    assert list(scratch.iterdir()) == []
    model.close()


def test_a_rollback_waits_for_the_checkpoint_being_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rollback's checkpoint is the newest even when an older model's is being written:
    otherwise a restart would serve the model rolled back from."""
    clock = Clock()
    engine, store, _ = start(tmp_path, config(), clock)
    workload(engine, clock, 100)
    close_all(engine, clock)
    taken = engine.policies["p"].model.learned
    gate = Gate()
    monkeypatch.setattr(checkpoints, "write_atomic", gate)
    job = store.begin_checkpoint(engine.models())
    writer = threading.Thread(target=store.write_checkpoint, args=(job,))
    writer.start()
    assert gate.entered.wait(WAIT)
    waiting = threading.Event()

    class Observed(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            waiting.set()
            return super().wait(timeout)

    job.done = Observed()  # set by the writer when it ends: it is held by the gate till then
    rolled = Model(config().policies["p"].vw_args, learned=7)
    keeper = threading.Thread(target=store.keep_model, args=("p", rolled))
    keeper.start()
    assert waiting.wait(WAIT)  # keep_model waits for the checkpoint in flight
    gate.opened.set()
    writer.join(WAIT)
    keeper.join(WAIT)
    assert gate.most == 1
    names = [p for p in gate.paths if p.endswith(".vw")]
    assert [name.split("-")[1] for name in names] == [f"{taken:012d}", f"{7:012d}"]
    _, _, recovery = start(tmp_path, config(), clock)
    assert recovery.checkpoints["p"] == names[-1]


def make_server(data: Path, **settings: Any) -> Server:
    return Server(ServerSettings(config=EXAMPLE, data_dir=data, **settings), policies("a"))


def test_a_failed_write_leaves_nothing_backs_off_and_the_next_one_succeeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(path: Path, data: bytes) -> None:
        Path(f"{path}.tmp").write_bytes(data[:10])  # as a full disk leaves it
        raise OSError(errno.ENOSPC, "No space left on device")

    async def run() -> None:
        server = make_server(tmp_path / "data", checkpoint_every=1)
        clock = server.engine.clock = Clock()
        learn(server.engine, clock, "a", 20, "e")
        monkeypatch.setattr(checkpoints, "write_atomic", full_disk)
        with capture_logs() as logs:
            task = server._maybe_checkpoint()
            assert task is not None
            await task
        [failed] = [e for e in logs if e["event"] == "checkpoint_failed"]
        assert (failed["reason"], failed["retry_in"]) == ("No space left on device", 1.0)
        assert model_files(tmp_path / "data", "a") == []
        assert server._maybe_checkpoint() is None  # backing off
        monkeypatch.undo()
        server._checkpoint_retry_at = 0.0  # the back-off ended
        with capture_logs() as logs:
            task = server._maybe_checkpoint()
            assert task is not None
            await task
        assert [e["learned"] for e in logs if e["event"] == "checkpoint"] == [{"a": 20}]
        assert server._checkpoint_backoff == 0.0
        assert len(model_files(tmp_path / "data", "a")) == 2  # the model and its manifest
        await server.stop()

    asyncio.run(run())


def test_ids_that_could_not_be_kept_are_kept_by_the_next_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(self: IdFile, digests: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    async def run() -> None:
        server = make_server(tmp_path / "data")
        clock = server.engine.clock = Clock()
        learn(server.engine, clock, "a", 20, "e")
        monkeypatch.setattr(IdFile, "append", full_disk)
        task = server.start_checkpoint()
        assert task is not None
        await task
        assert server._checkpoint_backoff == 1.0
        monkeypatch.undo()
        run_now(server.engine.decide(DecideInput("a", "x", event_id="later")))
        task = server.start_checkpoint()
        assert task is not None
        await task
        assert server._checkpoint_backoff == 0.0
        kept = set(IdFile(tmp_path / "data" / "event-ids.bin").read())
        assert {digest(f"e-{i}") for i in range(20)} | {digest("later")} <= kept
        await server.stop()

    asyncio.run(run())


def test_a_checkpoint_due_while_one_is_written_waits_for_the_next_tick(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = Gate()
    monkeypatch.setattr(checkpoints, "write_atomic", gate)

    async def run() -> None:
        server = make_server(tmp_path / "data", checkpoint_every=1)
        clock = server.engine.clock = Clock()
        begun: list[int] = []
        assert server.store is not None  # embedded mode
        begin = server.store.begin_checkpoint

        def counted(models: Any) -> Any:
            begun.append(1)
            return begin(models)

        monkeypatch.setattr(server.store, "begin_checkpoint", counted)
        learn(server.engine, clock, "a", 10, "first")
        first = server._maybe_checkpoint()
        assert first is not None
        assert await asyncio.to_thread(gate.entered.wait, WAIT)
        learn(server.engine, clock, "a", 5, "second")  # due again (checkpoint_every=1)
        for _ in range(20):  # join ticks while the first is written
            assert server._maybe_checkpoint() is None
        assert server.start_checkpoint() is None
        assert begun == [1]
        gate.opened.set()
        await first
        second = server._maybe_checkpoint()  # the next tick
        assert second is not None
        await second
        assert gate.most == 1
        learned = [m.learned for _, m in server.store.checkpoints("a").manifests() if m]
        assert learned == [15, 10]
        await server.stop()

    asyncio.run(run())


def test_stop_waits_for_the_checkpoint_being_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = Gate()
    monkeypatch.setattr(checkpoints, "write_atomic", gate)

    async def run() -> None:
        server = make_server(tmp_path / "data")
        clock = server.engine.clock = Clock()
        learn(server.engine, clock, "a", 10, "first")
        assert server.start_checkpoint() is not None
        assert await asyncio.to_thread(gate.entered.wait, WAIT)
        learn(server.engine, clock, "a", 5, "second")
        stopping = asyncio.create_task(server.stop())  # waits for the file work (else hangs)
        gate.opened.set()
        await stopping

    asyncio.run(run())
    store: DurableStore
    _, store, recovery = start(tmp_path / "data", policies("a"), Clock())
    assert recovery.replayed == {"a": 0}
    learned = [m.learned for _, m in store.checkpoints("a").manifests() if m]
    assert learned == [15, 10]


def test_the_loop_part_is_the_bytes_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No fsync on the loop's thread, for the logs, the model files or the ids."""
    loop_thread = threading.get_ident()
    synced_on: list[int] = []
    fsync = os.fsync

    def watched(fd: int) -> None:
        synced_on.append(threading.get_ident())
        fsync(fd)

    async def run() -> None:
        server = make_server(tmp_path / "data")
        clock = server.engine.clock = Clock()
        learn(server.engine, clock, "a", 10, "e")
        monkeypatch.setattr(os, "fsync", watched)
        task = server.start_checkpoint()
        assert task is not None
        await task
        monkeypatch.undo()
        assert synced_on
        assert loop_thread not in synced_on
        await server.stop()

    asyncio.run(run())
