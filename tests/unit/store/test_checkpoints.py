"""Checkpoints follow each policy's model: removed policies, new vw_args, full disks."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from nextbest.api.server import Server
from nextbest.policy.model import Model
from nextbest.policy.ports import run_now
from nextbest.policy.requests import DecideInput
from nextbest.policy.vw_args import DEFAULT_VW_ARGS
from nextbest.settings import ServerSettings
from nextbest.store.checkpoints import Checkpoints
from tests.conftest import EXAMPLE, make_config, support_policy
from tests.unit.store.test_durable import Clock, start


def policies(*names: str, vw_args: str | None = None) -> Any:
    reward = {**support_policy()["reward"], "wait": "1m", "aggregation": "sum"}
    extra = {"vw_args": vw_args} if vw_args else {}
    return make_config(**{n: support_policy(reward=reward, safety=[], **extra) for n in names})


def learn(engine: Any, clock: Clock, policy: str, n: int, tag: str) -> None:
    for i in range(n):
        run_now(engine.decide(DecideInput(policy, "x", event_id=f"{tag}-{i}")))
    clock.now += 3600
    run_now(engine.settle_due(limit=100_000))


def test_a_removed_policy_does_not_stop_checkpoints(tmp_path: Path) -> None:
    clock = Clock()
    engine, store, _ = start(tmp_path, policies("a", "b"), clock)
    learn(engine, clock, "a", 50, "a")
    learn(engine, clock, "b", 50, "b")
    store.checkpoint(engine.models())
    engine.reload(policies("b"))  # SIGHUP without a
    learn(engine, clock, "b", 30, "b2")
    assert store.unsaved(engine.models()) == 30
    assert store.checkpoint(engine.models()) == {"b": 80}
    _, _, recovery = start(tmp_path, policies("b"), clock)
    assert recovery.replayed == {"b": 0}


def test_a_checkpoint_with_new_vw_args_is_kept_though_it_learned_less(tmp_path: Path) -> None:
    clock = Clock()
    engine, store, _ = start(tmp_path, policies("a"), clock)
    learn(engine, clock, "a", 60, "old")
    store.checkpoint(engine.models())
    changed = policies("a", vw_args="--cb_explore_adf -q ia --power_t 0")
    engine.reload(changed)
    learn(engine, clock, "a", 20, "new")
    assert store.checkpoint(engine.models()) == {"a": 20}
    again, _, recovery = start(tmp_path, changed, clock)
    assert recovery.checkpoints["a"].endswith(".vw")
    assert recovery.replayed == {"a": 0}
    assert again.policies["a"].model.learned == 20


def test_old_named_checkpoints_are_still_read(tmp_path: Path) -> None:
    clock = Clock()
    cfg = policies("a")
    engine, store, _ = start(tmp_path, cfg, clock)
    learn(engine, clock, "a", 10, "e")
    models = tmp_path / "policies" / "a" / "models"
    store.checkpoint(engine.models())
    for path in list(models.iterdir()):  # as an older nextbest named them
        path.rename(models / (f"{10:012d}-{10:012d}" + path.suffix))
    _, _, recovery = start(tmp_path, cfg, clock)
    assert recovery.checkpoints["a"] == f"{10:012d}-{10:012d}.vw"
    assert recovery.replayed == {"a": 0}


def test_a_model_vw_cannot_save_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = Model(DEFAULT_VW_ARGS)

    def full_disk(path: Path) -> None:
        Path(f"{path}.writing").write_bytes(b"half a model")
        raise RuntimeError("vw_exception: failed to write model: No space left on device")

    monkeypatch.setattr(model, "save", full_disk)
    checkpoints = Checkpoints(tmp_path)
    with pytest.raises(OSError, match="No space left"):
        checkpoints.save("p", model, 0)
    assert list(tmp_path.iterdir()) == []
    model.close()


def make_server(tmp_path: Path, **settings: Any) -> Server:
    async def make() -> Server:
        return Server(
            ServerSettings(config=EXAMPLE, data_dir=tmp_path / "data", **settings), policies("a")
        )

    return asyncio.run(make())


def test_a_failing_checkpoint_backs_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = make_server(tmp_path, checkpoint_every=1)
    attempts: list[int] = []

    def full_disk(models: Any) -> dict[str, int]:
        attempts.append(1)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(server.store, "checkpoint", full_disk)
    clock = server.engine.clock = Clock()
    learn(server.engine, clock, "a", 5, "e")
    for _ in range(100):  # join ticks
        server._maybe_checkpoint()
    assert len(attempts) == 1
    server._checkpoint_retry_at = 0.0  # the back-off ended
    server._maybe_checkpoint()
    assert len(attempts) == 2
    assert server._checkpoint_backoff == 2.0
    monkeypatch.undo()
    asyncio.run(server.stop())


def test_a_full_disk_at_shutdown_still_stops_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = make_server(tmp_path)
    clock = server.engine.clock = Clock()
    learn(server.engine, clock, "a", 5, "e")
    model = server.engine.policies["a"].model

    def full_disk(path: Path) -> None:
        Path(f"{path}.writing").write_bytes(b"half a model")
        raise RuntimeError("vw_exception: No space left on device")

    monkeypatch.setattr(model, "save", full_disk)
    asyncio.run(server.stop())
    models = tmp_path / "data" / "policies" / "a" / "models"
    assert [p for p in models.iterdir() if "tmp" in p.name or "writing" in p.name] == []
    _, _, recovery = start(tmp_path / "data", policies("a"), Clock())  # the lock was released
    assert recovery.replayed == {"a": 5}
